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

use crate::binary::Jid;
use crate::ops::groups::{CreateGroup, GroupInfo};

/// A boxed future, so [`Devices`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Created, never paired, not trying to pair.
    Unpaired,
    /// Showing QR codes, waiting for a phone to scan one.
    Pairing,
    /// Paired; connecting or logging in.
    Connecting,
    /// Logged in and usable.
    Connected,
    /// Paired, but the connection is down (a reconnect is scheduled).
    Disconnected,
    /// WhatsApp removed the device or it was logged out; its keys are wiped. Terminal.
    LoggedOut,
}

impl DeviceState {
    /// The name used by the HTTP API (`unpaired`, `pairing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Unpaired => "unpaired",
            DeviceState::Pairing => "pairing",
            DeviceState::Connecting => "connecting",
            DeviceState::Connected => "connected",
            DeviceState::Disconnected => "disconnected",
            DeviceState::LoggedOut => "logged_out",
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

/// A snapshot of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Current state.
    pub state: DeviceState,
    /// The device JID once paired (`user:device@s.whatsapp.net`).
    pub jid: Option<Jid>,
    /// The QR code currently shown, while pairing.
    pub qr: Option<QrCode>,
}

/// Something that happened to a device, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A new QR code to show.
    Qr(QrCode),
    /// No phone scanned any code in time; pairing stopped (start it again to retry).
    PairingTimedOut,
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
    /// The connection went down; a reconnect follows unless the device is logged out.
    Disconnected {
        /// Why, in words for logs and operators.
        reason: String,
    },
    /// Logged out or removed by WhatsApp (or deleted through the API); keys are wiped.
    LoggedOut {
        /// Why.
        reason: String,
    },
}

/// Process-wide counters of the registry, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceStats {
    /// Connections re-established after a drop, over all devices, since the process started.
    pub reconnects: u64,
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No device with this id.
    #[error("unknown device {0:?}")]
    UnknownDevice(DeviceId),
    /// The device has not been paired (or was logged out).
    #[error("device is not paired")]
    NotPaired,
    /// The device is paired but not connected right now.
    #[error("device is not connected")]
    NotConnected,
    /// WhatsApp did not answer in time.
    #[error("WhatsApp did not answer within {0:?}")]
    Timeout(Duration),
    /// WhatsApp refused the request.
    #[error("WhatsApp refused the request: {code} {text}")]
    Rejected {
        /// WhatsApp's error code (`406`, `403`, ...).
        code: u16,
        /// WhatsApp's error text (`not-acceptable`, ...).
        text: String,
    },
    /// The request is invalid before anything is sent (the text says what).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The device's task has stopped (shutdown).
    #[error("device task stopped")]
    Closed,
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] wuts_store::Error),
    /// The protocol went wrong (a malformed reply, a failed handshake).
    #[error("protocol: {0}")]
    Protocol(String),
}

/// The devices of one process, as the HTTP gateway uses them.
pub trait Devices: Send + Sync + 'static {
    /// Creates a new, unpaired device with fresh keys.
    fn create(&self) -> BoxFuture<'_, Result<DeviceId, Error>>;
    /// Starts pairing an unpaired device: it connects and emits [`DeviceEvent::Qr`] events.
    /// Starting again after a timeout restarts it; on a paired device it is an error.
    fn pair(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
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
    /// Logs the device out, wipes its keys and forgets it.
    fn remove(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>>;
    /// Closes every device's connection cleanly and flushes the store.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Counters for `/metrics`. The default reports zeros, for registries that keep none.
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
}
