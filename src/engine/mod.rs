//! The per-device protocol engine (sans-IO): handshake, registration or login, pairing, IQs,
//! keepalive, stream errors. Bytes, time and randomness go in; bytes, events and deadlines come
//! out. The driver in [`crate::client`] owns the socket and the clock.

pub mod keys;
pub mod pair;
pub mod payload;

mod config;
mod conn;
mod event;
mod iq;
mod prekeys;

pub use config::EngineConfig;
pub use conn::Connection;
pub use event::{Event, IqRequest};
pub use iq::{IqError, IqId};
pub use pair::PairError;

/// Why a connection ended, and so what the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// `stream:error 515`: reconnect at once (the normal end of pairing).
    RestartRequired,
    /// Another `stream:error` (503, ...): reconnect with backoff.
    StreamError(Option<u16>),
    /// Logged out or removed (401, `device_removed`, failure 401/403/406): wipe, never
    /// reconnect.
    LoggedOut(String),
    /// Another connection took the session over: stop, do not fight for it.
    Replaced,
    /// `failure` with this reason: 500 and 503 are retried with backoff, 401/403/406 mean
    /// logged out, anything else stops.
    LoginFailed(u16),
    /// No phone scanned any QR code in time.
    PairingTimedOut,
    /// The `pair-success` failed a check.
    PairingFailed(PairError),
    /// A keepalive ping went unanswered.
    KeepaliveTimeout,
    /// No `success` or `pair-device` in time.
    SetupTimeout,
    /// The Noise handshake failed (bad certificate chain, ...).
    Handshake(String),
    /// The server sent something malformed, or a frame failed to decrypt.
    Protocol(String),
    /// Storage failed.
    Store(String),
    /// The server closed the stream or the socket.
    ServerClosed,
    /// We closed it (shutdown or logout).
    Local,
}

impl CloseReason {
    /// What the driver should do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            CloseReason::RestartRequired => NextStep::ReconnectNow,
            CloseReason::LoggedOut(_) => NextStep::LoggedOut,
            CloseReason::LoginFailed(401 | 403 | 406) => NextStep::LoggedOut,
            CloseReason::LoginFailed(500 | 503) => NextStep::Backoff,
            CloseReason::LoginFailed(_) | CloseReason::Replaced | CloseReason::Local => {
                NextStep::Stop
            }
            CloseReason::PairingTimedOut | CloseReason::PairingFailed(_) => NextStep::Stop,
            CloseReason::StreamError(_)
            | CloseReason::KeepaliveTimeout
            | CloseReason::SetupTimeout
            | CloseReason::Handshake(_)
            | CloseReason::Protocol(_)
            | CloseReason::Store(_)
            | CloseReason::ServerClosed => NextStep::Backoff,
        }
    }
}

/// The driver's next move after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Reconnect immediately.
    ReconnectNow,
    /// Reconnect after a backoff delay.
    Backoff,
    /// The device is logged out: wipe keys, stop.
    LoggedOut,
    /// Stop and report.
    Stop,
}

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
