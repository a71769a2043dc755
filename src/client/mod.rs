//! The async side of a device: the driver task that owns one engine connection and its
//! websocket, the cheap-clone [`Client`] handle, and the [`Registry`] of many devices.
//!
//! [`api`] is the surface the HTTP gateway programs against.

pub mod api;
mod driver;
mod handle;
pub mod jobs;
mod registry;
mod transport;

pub use driver::ClientConfig;
pub use handle::Client;
pub use registry::{DEFAULT_CONNECT_CONCURRENCY, Registry};
