//! The sandbox's error type, apart from `mod.rs` so the modules that return it (`shared`,
//! `control`) need not import the facade that imports them.

use std::net::SocketAddr;

use thiserror::Error;

use super::pairing::PairingError;
use super::records::PersistError;

/// Why a sandbox operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory could not be read.
    #[error("data directory: {0}")]
    Persist(#[from] PersistError),
    /// A scan failed; the variant says which check.
    #[error("pairing failed: {0}")]
    Pairing(#[from] PairingError),
    /// No device with this JID was ever paired.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// The device has no live connection to act on.
    #[error("device {0} is not connected")]
    NotConnected(String),
    /// A fault for every connected device found none connected.
    #[error("no device is connected")]
    NothingConnected,
    /// The server task failed.
    #[error("server: {0}")]
    Server(std::io::Error),
}
