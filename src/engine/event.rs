//! What goes into a connection from callers, and what comes out of it.

use std::time::Duration;

use super::CloseReason;
use super::iq::{IqError, IqId};
use crate::binary::{Jid, Node};

/// An IQ to send for a caller.
#[derive(Clone, Debug)]
pub struct IqRequest {
    /// `xmlns` (`w:g2`, ...).
    pub xmlns: &'static str,
    /// `get` or `set`.
    pub kind: &'static str,
    /// The addressee (`@g.us` for group IQs, `@s.whatsapp.net` otherwise).
    pub to: Jid,
    /// The children.
    pub children: Vec<Node>,
    /// Overrides the configured IQ timeout.
    pub timeout: Option<Duration>,
}

/// What the connection reports.
#[derive(Debug)]
pub enum Event {
    /// Show this QR code.
    Qr {
        /// The QR string.
        code: String,
        /// How long it is shown.
        ttl: Duration,
        /// When it expires, unix seconds.
        expires_at: u64,
    },
    /// Paired; the identity is already saved and flushed.
    Paired {
        /// Our device JID.
        jid: Jid,
        /// The phone's platform.
        platform: String,
        /// The business name, if any.
        business_name: Option<String>,
    },
    /// Logged in.
    LoggedIn {
        /// Our LID, from `success`.
        lid: Option<Jid>,
    },
    /// A caller's IQ ended.
    IqDone {
        /// Which.
        id: IqId,
        /// The reply, or why there is none.
        result: Result<Node, IqError>,
    },
    /// The connection is over; the driver closes the socket after sending what is queued.
    Closed(CloseReason),
}
