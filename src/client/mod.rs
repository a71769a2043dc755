//! The async side of a device: the driver task that owns one engine and its websocket, the
//! cheap-clone handle, and the registry of many devices.
//!
//! [`api`] is the surface the HTTP gateway programs against.

pub mod api;
