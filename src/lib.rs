//! WUTS: a self-hosted WhatsApp gateway engine.
//!
//! Layers, lowest first (an arrow means "may use"):
//!
//! ```text
//! binary (stanza codec) <- engine <- client <- registry <- http <- main
//! proto  <- noise (secure channel) <- engine
//! sim (sandbox server) uses binary, noise and proto only
//! ```
//!
//! The protocol layers ([`binary`], [`noise`]) are sans-IO: no sockets, no clocks, no OS
//! randomness. Time, randomness and bytes are their inputs; bytes and events are their outputs.

#![forbid(unsafe_code)]

pub mod binary;
pub mod client;
pub mod engine;
pub mod http;
pub mod noise;
pub mod ops;
pub mod proto;
pub mod sim;
pub mod types;
