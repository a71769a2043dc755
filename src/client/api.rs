//! What the gateway sees of the devices: the [`Devices`] trait, device states and events, and
//! the one error type of the client layer.
//!
//! The registry implements [`Devices`]; the HTTP layer holds an `Arc<dyn Devices>` and never
//! touches the engine, sockets or stanzas.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::broadcast;
pub use wuts_store::DeviceId;

use crate::engine::CloseReason;
use crate::engine::lifecycle::Refusal;
use crate::ops::groups::{CreateGroup, GroupAnswer, GroupCall, GroupEvent, GroupInfo};
use crate::ops::{FieldError, ParseError};
use crate::types::{Jid, UserJid};

/// A boxed future, so [`Devices`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a device is in its life: the lifecycle's phase.
pub use crate::engine::lifecycle::Phase as DeviceState;

/// Why a device is where it is (disconnected, logged out, in error): a stable snake_case code
/// and a sentence, never internal debug text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// Stable code (`device_removed`, `certificate_invalid`, `connection_lost`, ...).
    pub code: &'static str,
    /// What happened, in words.
    pub message: String,
}

impl Reason {
    /// The reason a connection closed.
    pub fn of(close: &CloseReason) -> Self {
        Reason {
            code: close.code(),
            message: close.to_string(),
        }
    }
}

/// A QR code to show, and how long it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrCode {
    /// The string to encode in the QR image (`ref,noise_pub,identity_pub,adv_secret,platform`).
    pub code: String,
    /// Unix seconds after which the code is replaced or pairing times out.
    pub expires_at: u64,
    /// Validity from when it was issued (60 s for the first code, then 20 s).
    pub ttl: Duration,
}

/// A pairing code to type on the phone, and how long it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairCodeInfo {
    /// `ABCD-EFGH`.
    pub code: String,
    /// The phone number it is for (digits).
    pub phone: String,
    /// Unix seconds after which the phone's hello is no longer answered.
    pub expires_at: u64,
}

/// A snapshot of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Current state.
    pub state: DeviceState,
    /// The device JID once paired (`user:device@s.whatsapp.net`).
    pub jid: Option<Jid>,
    /// The QR code currently shown, while pairing.
    pub qr: Option<QrCode>,
    /// The pairing code currently valid, while pairing by code.
    pub pair_code: Option<PairCodeInfo>,
    /// When the device was last seen connected (logged in, or a stanza since), unix seconds;
    /// since this process started.
    pub last_seen: Option<u64>,
    /// Why the device is disconnected, logged out, in error, or back to unpaired.
    pub reason: Option<Reason>,
}

/// Something that happened to a device, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A new QR code to show.
    Qr(QrCode),
    /// A pairing code to type on the phone ("link with phone number instead").
    PairCode(PairCodeInfo),
    /// No phone scanned any code in time; pairing stopped (start it again to retry).
    PairingTimedOut,
    /// A scan was refused (a check of `pair-success` failed); pairing stopped.
    PairingFailed {
        /// Why.
        reason: Reason,
    },
    /// A phone scanned the code and the device is paired (credentials are on disk already).
    Paired {
        /// The device's JID.
        jid: Jid,
        /// The account's business name, if any.
        business_name: Option<String>,
        /// The platform of the phone (`android`, `smba`, ...).
        platform: String,
    },
    /// Logged in.
    Connected,
    /// The connection went down; a reconnect follows unless the state says otherwise.
    Disconnected {
        /// Why.
        reason: Reason,
    },
    /// Logged out by WhatsApp, the phone, or the API; credentials are wiped and the device can
    /// pair again.
    LoggedOut {
        /// Why.
        reason: Reason,
    },
    /// A fault that needs attention if it persists (certificate, handshake, stored data).
    Error {
        /// Why.
        reason: Reason,
    },
    /// A group the account is in changed (WhatsApp's `w:gp2` notification, acknowledged).
    Group(Box<GroupEvent>),
}

/// Process-wide counters of the registry, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceStats {
    /// Connections re-established after a drop, over all devices, since the process started.
    pub reconnects: u64,
}

/// Why a device operation failed. [`Error::code`] is stable; `Display` is the sentence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No device with this id.
    #[error("{0} does not exist")]
    UnknownDevice(DeviceId),
    /// The device has no credentials (never paired, logged out, or pairing).
    #[error("the device is not paired")]
    NotPaired,
    /// Pairing asked of a paired device.
    #[error("the device is already paired")]
    AlreadyPaired,
    /// Pairing asked of a device that is pairing already.
    #[error("the device is already pairing")]
    Pairing,
    /// The device is paired but not connected right now.
    #[error("the device is not connected")]
    NotConnected,
    /// WhatsApp did not answer in time (it may still have acted).
    #[error("WhatsApp did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The connection dropped after the request was sent: WhatsApp may have acted on it.
    #[error("the connection dropped after the request was sent; WhatsApp may have acted on it")]
    Interrupted,
    /// WhatsApp refused the request.
    #[error("WhatsApp refused the request ({code} {text})")]
    Rejected {
        /// WhatsApp's error code (`406`, `403`, ...).
        code: u16,
        /// WhatsApp's error text (`not-acceptable`, ...).
        text: String,
    },
    /// The request breaks WhatsApp's rules; nothing was sent.
    #[error("invalid request: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// WhatsApp's reply could not be read.
    #[error("WhatsApp's reply could not be understood: {0}")]
    Malformed(#[from] ParseError),
    /// The device's task has stopped (shutdown).
    #[error("the device has stopped")]
    Closed,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] wuts_store::Error),
    /// Cluster mode: the device runs on another node (or is between owners); nothing was sent.
    /// The HTTP layer forwards the request to the owner ([`Devices::locate`]).
    #[error("{0} runs on another node")]
    NotHere(DeviceId),
}

impl Error {
    /// The stable code (snake_case, as in events and logs).
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownDevice(_) => "unknown_device",
            Error::NotPaired => "not_paired",
            Error::AlreadyPaired => "already_paired",
            Error::Pairing => "pairing",
            Error::NotConnected => "not_connected",
            Error::Timeout(_) => "timeout",
            Error::Interrupted => "interrupted",
            Error::Rejected { .. } => "rejected",
            Error::Invalid(_) => "invalid",
            Error::Malformed(_) => "malformed_reply",
            Error::Closed => "closed",
            Error::Store(_) => "storage_error",
            Error::NotHere(_) => "not_here",
        }
    }

    /// Whether the request went out to WhatsApp (so it belongs in WhatsApp's metrics).
    pub fn reached_whatsapp(&self) -> bool {
        matches!(self, Error::Rejected { .. }) || self.outcome_unknown()
    }

    /// Whether WhatsApp may have acted although the caller got no result: never send the same
    /// request again blindly.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_) | Error::Interrupted | Error::Malformed(_)
        )
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::AlreadyPaired => Error::AlreadyPaired,
            Refusal::Pairing => Error::Pairing,
            Refusal::NotPaired => Error::NotPaired,
            Refusal::NotConnected => Error::NotConnected,
        }
    }
}

/// Where a device's calls run (cluster mode; one process answers [`Placement::Here`] always).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On this node (or the device does not exist: the call says so).
    Here,
    /// On the live node at `addr`, which owns it at `epoch`.
    Owner {
        /// The owner's forwarding address.
        addr: std::net::SocketAddr,
        /// The ownership epoch.
        epoch: u64,
    },
    /// No live node runs it right now (its owner died and it is being taken over).
    Failover {
        /// When to try again.
        retry_after: Duration,
    },
}

/// Cluster mode: where devices live, and what another node last published about them.
pub trait Locator: Send + Sync + 'static {
    /// Where `id` runs.
    fn locate(&self, id: DeviceId) -> BoxFuture<'_, Placement>;
    /// The device's state as its owner last published it, for listings on any node.
    fn status(&self, id: DeviceId) -> Result<DeviceStatus, Error>;
}

/// The devices of one process, as the HTTP gateway uses them.
pub trait Devices: Send + Sync + 'static {
    /// Creates a new, unpaired device with fresh keys.
    fn create(&self) -> BoxFuture<'_, Result<DeviceId, Error>>;
    /// Starts pairing a device without credentials (never paired, logged out, timed out): it
    /// connects and emits [`DeviceEvent::Qr`] events. [`Error::AlreadyPaired`] on a paired
    /// device, [`Error::Pairing`] while pairing.
    fn pair(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// Asks for a pairing code for `phone` (checked by `ops::paircode::phone`), starting
    /// pairing if needed; returns the code once WhatsApp accepted it (also emitted as
    /// [`DeviceEvent::PairCode`]). Asked again while pairing, it replaces the code.
    fn pair_code(&self, id: DeviceId, phone: UserJid)
    -> BoxFuture<'_, Result<PairCodeInfo, Error>>;
    /// Connects a paired device now (after it stopped: replaced, disconnected, in error).
    fn connect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// Drops the connection and keeps the credentials; the device stays offline until
    /// [`Devices::connect`].
    fn disconnect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// Logs the device out on WhatsApp (when connected) and wipes its credentials; it keeps
    /// its id and can pair again.
    fn logout(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// The device's current state, JID and QR code.
    fn status(&self, id: DeviceId) -> Result<DeviceStatus, Error>;
    /// A stream of the device's events from now on.
    fn subscribe(&self, id: DeviceId) -> Result<broadcast::Receiver<DeviceEvent>, Error>;
    /// Creates a group from the device's account.
    fn create_group(
        &self,
        id: DeviceId,
        req: CreateGroup,
    ) -> BoxFuture<'_, Result<GroupInfo, Error>>;
    /// Runs one group request after create (metadata, participants, settings, invite link,
    /// leave, join) from the device's account. Checked first: nothing invalid is sent.
    fn group(&self, id: DeviceId, call: GroupCall) -> BoxFuture<'_, Result<GroupAnswer, Error>>;
    /// Logs the device out, wipes its keys and forgets it.
    fn remove(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// Closes every device's connection cleanly and flushes the store.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Hands every device's events to `sink` from now on (the event pipeline). The default
    /// drops it, for registries that emit nothing.
    fn set_event_sink(&self, sink: std::sync::Arc<dyn crate::events::EventSink>) {
        let _ = sink;
    }
    /// Whether this node runs the device (cluster mode: its owner). One process: always.
    fn runs_here(&self, id: DeviceId) -> bool {
        let _ = id;
        true
    }
    /// Where a device's calls run. One process: always here.
    fn locate(&self, id: DeviceId) -> BoxFuture<'_, Placement> {
        let _ = id;
        Box::pin(async { Placement::Here })
    }
    /// Counters for `/metrics`. The default reports zeros, for registries that keep none.
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
}
