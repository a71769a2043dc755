//! WUTS: a self-hosted WhatsApp gateway engine.
//!
//! Layers, lowest first (an arrow means "may use"; nothing uses a layer above it):
//!
//! ```text
//! types (Jid, UserJid, GroupJid, DeviceId)          wuts-store (store/: traits, sled, records)
//!   ^                                                  ^
//! binary (stanza codec)   proto <- noise (secure channel)
//!   ^                                 ^
//! ops (one spec per WhatsApp operation: build the request, parse the reply, validate)
//!   ^
//! engine (sans-IO: Connection for one connection, lifecycle::Lifecycle across connections)
//!   ^
//! client (tokio edge: driver task per device, Client handle, Registry; store jobs)
//!   ^
//! http (axum edge) <- cli / main
//!
//! sim (the sandbox) uses types, binary, noise and proto only: never ops, engine or client.
//! ```
//!
//! The protocol core ([`types`], [`binary`], [`noise`], [`ops`], [`engine`], [`cluster`]) is sans-IO: no
//! sockets, no clocks, no OS randomness; `tests/layering.rs` and clippy's `disallowed_methods`
//! keep it so. Time, randomness and bytes are inputs; bytes, events, deadlines and store jobs
//! are outputs.
//!
//! Where coming work lives:
//! - a new WhatsApp operation: one file (or spec) in [`ops`], run by `Client::run`;
//! - device lifecycle rules: [`engine::lifecycle`]; the driver only carries out its actions;
//! - HTTP, one file per resource over the shared `http::error` and `http::auth`: groups,
//!   communities, devices and sessions, webhooks, admin, the console;
//! - events: [`events`] (the outbox and delivery; no HTTP handlers inside, `http` serves them);
//! - device ownership and cluster mode: the pure rules (lease keeper, placement) in [`cluster`],
//!   the database statements beside the store (`store/`), never inside the engine.

#![forbid(unsafe_code)]

pub mod binary;
pub mod client;
pub mod cluster;
pub mod engine;
pub mod events;
pub mod http;
pub mod node;
pub mod noise;
pub mod ops;
pub mod proto;
pub mod sim;
pub mod types;
