//! The per-device protocol engine (sans-IO): one connection's handshake, registration or login,
//! pairing, IQs, keepalive and stream errors ([`Connection`]), and the device's life across
//! connections ([`lifecycle::Lifecycle`]). Bytes, time and randomness go in; bytes, events,
//! deadlines and store jobs come out. The driver in [`crate::client`] owns the socket, the clock
//! and the store.

#![deny(clippy::disallowed_methods)]

pub mod keys;
pub mod lifecycle;
pub mod pair;
pub mod paircode;
pub mod payload;

mod close;
mod config;
mod conn;
mod event;
mod iq;

pub use close::{CloseReason, LogoutReason, NextStep, ProtocolError};
pub use config::EngineConfig;
pub use conn::{Connection, Resume, Rotation, rotation};
pub use event::Event;
pub use iq::{IqError, IqId};
pub use pair::PairError;

/// Why a connection could not even start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Noise layer refused (only an over-long routing prefix can do this at start).
    #[error("noise: {0}")]
    Noise(#[from] crate::noise::Error),
    /// Storage failed.
    #[error("store: {0}")]
    Store(#[from] wuts_store::Error),
}

/// Exponential backoff with full jitter, capped (for 503s and lost links).
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
}

impl Backoff {
    /// From `base`, doubling, never above `cap`.
    pub fn new(base: std::time::Duration, cap: std::time::Duration) -> Self {
        Backoff {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The next delay, given a random number in `0.0..1.0` for the jitter.
    pub fn next_delay(&mut self, random: f64) -> std::time::Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        // Half fixed, half jitter: never zero, never in lockstep with other devices.
        exp / 2 + exp.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }

    /// Call after a successful login.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
