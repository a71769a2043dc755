//! Why a connection ended: typed reasons with a stable snake_case code and a sentence, and what
//! the device does next.

use std::sync::Arc;

use super::pair::PairError;
use crate::noise::FrameError;

/// Why a connection ended. [`CloseReason::code`] is what operators and clients branch on;
/// `Display` is the sentence they read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// `stream:error 515`: reconnect at once (the normal end of pairing).
    #[error("WhatsApp asked for a reconnect")]
    RestartRequired,
    /// Another `stream:error` (503, ...): reconnect with backoff.
    #[error("WhatsApp ended the stream (code {})", .0.map_or("none".to_owned(), |c| c.to_string()))]
    StreamError(Option<u16>),
    /// Logged out or removed: wipe, never reconnect by itself.
    #[error("{0}")]
    LoggedOut(LogoutReason),
    /// Another connection took the session over: stop, do not fight for it.
    #[error("another connection of this device replaced this one")]
    Replaced,
    /// `failure` with this reason: 500 and 503 are retried with backoff, 401/403/406 mean
    /// logged out (as [`CloseReason::LoggedOut`]), anything else stops.
    #[error("WhatsApp refused the login (reason {0})")]
    LoginFailed(u16),
    /// No phone scanned any QR code in time.
    #[error("no phone scanned the QR code in time")]
    PairingTimedOut,
    /// The `pair-success` failed a check.
    #[error("pairing failed: {0}")]
    PairingFailed(PairError),
    /// A keepalive ping went unanswered.
    #[error("the link went silent (keepalive unanswered)")]
    KeepaliveTimeout,
    /// No `success` or `pair-device` in time.
    #[error("WhatsApp did not finish the connection setup in time")]
    SetupTimeout,
    /// The Noise handshake failed (bad certificate chain, ...).
    #[error("secure handshake failed: {0}")]
    Handshake(Arc<crate::noise::Error>),
    /// The server sent something malformed, or a frame failed to decrypt.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(Arc<wuts_store::Error>),
    /// The websocket could not be opened (DNS, TCP, TLS, HTTP upgrade).
    #[error("could not connect to WhatsApp")]
    ConnectFailed,
    /// The server closed the stream or the socket.
    #[error("the connection was lost")]
    ServerClosed,
    /// We closed it (shutdown, disconnect or logout).
    #[error("closed by the gateway")]
    Local,
}

/// How a device came to be logged out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutReason {
    /// The phone unlinked the device (`conflict type="device_removed"`).
    #[error("the phone unlinked this device")]
    DeviceRemoved,
    /// Another `conflict` type (logged and otherwise treated as a logout).
    #[error("WhatsApp ended the session (conflict)")]
    Conflict,
    /// `stream:error 401`.
    #[error("WhatsApp logged this device out")]
    StreamError401,
    /// `failure` 401, 403 or 406 at login.
    #[error("WhatsApp refused the stored credentials (reason {0})")]
    LoginRefused(u16),
    /// Through the API (logout, delete).
    #[error("logged out through the API")]
    Requested,
    /// WhatsApp refused credentials whose pairing it never confirmed: the gateway stopped
    /// (a crash, a kill) between saving them and the server accepting them.
    #[error("pairing was interrupted before WhatsApp confirmed it; pair again")]
    PairingInterrupted,
}

impl LogoutReason {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LogoutReason::DeviceRemoved => "device_removed",
            LogoutReason::Conflict => "session_conflict",
            LogoutReason::StreamError401 => "logged_out_by_whatsapp",
            LogoutReason::LoginRefused(_) => "credentials_refused",
            LogoutReason::Requested => "logout_requested",
            LogoutReason::PairingInterrupted => "pairing_interrupted",
        }
    }
}

/// What went wrong on the wire.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Framing was invalid.
    #[error("framing: {0}")]
    Framing(FrameError),
    /// A transport frame failed to decrypt (fatal by design).
    #[error("transport: {0}")]
    Transport(Arc<crate::noise::Error>),
    /// A frame's body did not unpack or decode.
    #[error("stanza: {0}")]
    Stanza(Arc<crate::binary::Error>),
    /// One of our stanzas did not encode.
    #[error("encode: {0}")]
    Encode(Arc<crate::binary::Error>),
    /// The handshake state was lost (a second server hello).
    #[error("unexpected handshake message")]
    UnexpectedHandshake,
    /// The stored identity cannot be read back (its JID does not parse).
    #[error("the stored identity is malformed")]
    StoredIdentity,
}

impl CloseReason {
    /// The stable snake_case code (`device_removed`, `certificate_invalid`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            CloseReason::RestartRequired => "restart_required",
            CloseReason::StreamError(_) => "stream_error",
            CloseReason::LoggedOut(r) => r.code(),
            CloseReason::Replaced => "replaced",
            CloseReason::LoginFailed(_) => "login_failed",
            CloseReason::PairingTimedOut => "pairing_timed_out",
            CloseReason::PairingFailed(_) => "pairing_failed",
            CloseReason::KeepaliveTimeout => "keepalive_timeout",
            CloseReason::SetupTimeout => "setup_timeout",
            CloseReason::Handshake(e) if matches!(**e, crate::noise::Error::CertChain(_)) => {
                "certificate_invalid"
            }
            CloseReason::Handshake(_) => "handshake_failed",
            CloseReason::Protocol(_) => "protocol_error",
            CloseReason::Store(_) => "storage_error",
            CloseReason::ConnectFailed => "connect_failed",
            CloseReason::ServerClosed => "connection_lost",
            CloseReason::Local => "closed_locally",
        }
    }

    /// What the device should do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            CloseReason::RestartRequired => NextStep::ReconnectNow,
            CloseReason::LoggedOut(_) => NextStep::LoggedOut,
            CloseReason::LoginFailed(500 | 503) => NextStep::Backoff,
            CloseReason::LoginFailed(_) | CloseReason::Replaced | CloseReason::Local => {
                NextStep::Stop
            }
            CloseReason::PairingTimedOut | CloseReason::PairingFailed(_) => NextStep::Stop,
            // Wrong root key or a tampered chain does not heal by retrying at full speed: the
            // lifecycle retries a few times with backoff, then parks in `error`.
            CloseReason::Handshake(_) | CloseReason::Protocol(ProtocolError::StoredIdentity) => {
                NextStep::Fault
            }
            CloseReason::StreamError(_)
            | CloseReason::KeepaliveTimeout
            | CloseReason::SetupTimeout
            | CloseReason::Protocol(_)
            | CloseReason::Store(_)
            | CloseReason::ConnectFailed
            | CloseReason::ServerClosed => NextStep::Backoff,
        }
    }
}

/// The device's next move after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Reconnect immediately.
    ReconnectNow,
    /// Reconnect after a backoff delay.
    Backoff,
    /// A fault that needs the operator if it persists: back off a bounded number of times.
    Fault,
    /// The device is logged out: wipe keys, stop.
    LoggedOut,
    /// Stop and report.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_sentences_are_not_debug_text() {
        let reasons = [
            CloseReason::LoggedOut(LogoutReason::DeviceRemoved),
            CloseReason::StreamError(Some(503)),
            CloseReason::LoginFailed(405),
            CloseReason::Handshake(Arc::new(crate::noise::Error::CertChain(
                crate::noise::CertError::IntermediateSignature,
            ))),
            CloseReason::PairingFailed(PairError::HmacMismatch),
        ];
        for r in reasons {
            let code = r.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            let text = r.to_string();
            assert!(!text.contains('(') || text.contains("code") || text.contains("reason"));
            assert!(
                !text.contains("LoggedOut") && !text.contains("Some("),
                "{text}"
            );
        }
        assert_eq!(
            CloseReason::LoggedOut(LogoutReason::DeviceRemoved).to_string(),
            "the phone unlinked this device"
        );
    }
}
