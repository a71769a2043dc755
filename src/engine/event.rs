//! What comes out of a connection.

use std::time::Duration;

use wuts_store as store;

use super::CloseReason;
use super::iq::{IqError, IqId};
use crate::binary::Node;
use crate::types::Jid;

/// What the connection reports. Store jobs ([`Event::SavePairing`], [`Event::NeedPreKeys`]) are
/// the driver's to run off the async workers; it answers each with the matching call.
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
    /// WhatsApp accepted our `companion_hello`: show this code; the user types it on the phone.
    PairCode {
        /// `ABCD-EFGH`.
        code: String,
        /// When it stops being accepted, unix seconds.
        expires_at: u64,
    },
    /// A pairing code's key to derive (PBKDF2, slow on purpose): run
    /// [`CodeKeyJob::run`](super::paircode::CodeKeyJob::run) off the async workers and answer
    /// with [`Connection::code_key_derived`](super::Connection::code_key_derived).
    DeriveCodeKey(Box<super::paircode::CodeKeyJob>),
    /// A pairing code could not be issued: WhatsApp refused or did not answer the hello.
    PairCodeFailed(IqError),
    /// A verified pairing to persist durably; answer with
    /// [`Connection::pairing_saved`](super::Connection::pairing_saved). Nobody, the phone
    /// included, hears of it before.
    SavePairing(Box<store::PairedIdentity>),
    /// Paired; the identity is saved and flushed.
    Paired {
        /// Our device JID.
        jid: Jid,
        /// The phone's platform.
        platform: String,
        /// The business name, if any.
        business_name: Option<String>,
    },
    /// The server wants this many one-time pre-keys: take the stored ones not yet uploaded,
    /// generate and durably add the rest, then call
    /// [`Connection::pre_keys_ready`](super::Connection::pre_keys_ready).
    NeedPreKeys(usize),
    /// The server's pre-key digest: load the one-time keys it lists (in its order, skipping
    /// any not held), then call
    /// [`Connection::digest_keys_loaded`](super::Connection::digest_keys_loaded).
    CheckDigest(Box<crate::ops::prekeys::KeyDigest>),
    /// A new signed pre-key to store durably (replacing the current one) before the server
    /// hears of it; answer with
    /// [`Connection::signed_pre_key_saved`](super::Connection::signed_pre_key_saved).
    SaveSignedPreKey(Box<store::SignedPreKey>),
    /// The server holds the signed pre-key as of this time (unix seconds): a rotation it
    /// accepted, or the first schedule of a device that never rotated. Keep it, so the next
    /// connection ([`Resume`](super::Resume)) keeps the schedule.
    SignedPreKeyRotated {
        /// Unix seconds.
        at: u64,
    },
    /// The server handed over what it kept while the device was away
    /// (`<ib><offline count=N/>`): the connection is caught up.
    OfflineSynced {
        /// Stanzas the server says it delivered.
        count: u32,
    },
    /// Logged in.
    LoggedIn {
        /// Our LID, from `success`.
        lid: Option<Jid>,
    },
    /// The server's edge routing info: present it on the next connect
    /// ([`Connection::resume`](super::Connection::resume)).
    RoutingInfo(Vec<u8>),
    /// A group changed (a `w:gp2` notification): one event per change. The notification is
    /// not acknowledged yet: the driver records the events durably first, then sends `ack`
    /// through [`Connection::acknowledge`](super::Connection::acknowledge), so a crash in
    /// between makes WhatsApp deliver it again instead of losing it.
    Group {
        /// What changed.
        events: Vec<crate::ops::groups::GroupEvent>,
        /// The acknowledgement to send once they are safe.
        ack: Option<Node>,
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
