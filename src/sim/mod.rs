//! The sandbox: a simulated WhatsApp server, strict like the real one, with a simulated phone
//! and fault injection. Every engine test, and every operator working offline, talks to it.
//!
//! It speaks the real protocol from the server side over a real websocket: the Noise responder
//! with the sandbox's own certificate chain, then binary stanzas. It never uses the engine; it
//! only shares the codec, Noise and protobuf layers with it.
//!
//! ```text
//! server.rs   axum router: /ws/chat and /control/… on one listener
//! conn.rs     one task per connection: handshake, register or log in, stanzas, commands
//! shared.rs   operations across state and connections: scan, login, faults
//! state.rs    accounts, devices, groups, live connections (and their commands), armed faults
//! persist.rs  the data directory: one sled record per account, device, phone, group
//! records.rs  how each record is encoded, and the errors reading one can give
//! legacy.rs   the whole-directory sandbox.json of earlier builds, read once to migrate
//! codes.rs    pairing by code: a companion's hello, the typed code, the finish
//! pairing.rs  the phone: QR parsing, pair-success, pair-device-sign checks   (pure)
//! paircode.rs the phone's side of pairing by code: key derivation, bundle    (pure)
//! pairing_error.rs  why a pairing failed                                  (pure)
//! group_ops.rs  group requests after create on the live state; notifications out
//! groups/     w:g2 create, administration rules, w:gp2 notifications      (pure)
//! payload.rs  ClientPayload: registration or login                          (pure)
//! session.rs  IQs of a logged-in device
//! stanzas.rs  the stanzas the server sends
//! control.rs  the JSON control API
//! model.rs    public types shared by the Rust and JSON APIs
//! error.rs    the error type
//! ```
//!
//! The modules import each other in one direction only (no cycles; `tests/sim_layering.rs`
//! checks it): this file on top, then server, conn, control, codes, session, shared, error,
//! legacy, persist, records, state, and last the pure modules (groups, pairing, paircode,
//! payload, stanzas, keys, model).
//!
//! Start one with [`Sandbox::start`]; drive it with the [`SandboxHandle`] or over HTTP.

mod audit;
mod bundle;
mod codes;
mod community_ops;
mod conn;
mod control;
mod deliver;
mod error;
mod group_ops;
pub mod groups;
mod keys;
mod legacy;
pub mod model;
mod offline;
pub mod paircode;
pub mod pairing;
mod pairing_error;
pub mod payload;
mod persist;
mod picture_ops;
pub mod prekeys;
mod records;
mod server;
mod session;
mod shared;
pub mod stanzas;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use error::Error;
pub use model::{
    AddRequest, AddRule, DeviceInfo, EdgeRouting, FailedParticipant, Fault, GroupRecord,
    JoinRequest, Member, PairedDevice, PhoneBehaviour, SentStanza, SimEvent, StoreWrites,
    StreamError, Timing,
};
pub use pairing::PairingError;
pub use records::{Damage, PersistError, RecordKind};
pub use server::{CONTROL_PATH, WS_PATH};

use crate::noise::PublicKey;
use shared::Shared;
use state::State;

/// How to start a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free port. Use a loopback address.
    pub listen: SocketAddr,
    /// Keep the root key, accounts, devices, phone behaviours and groups in `DIR` (a sled
    /// store, one record per change; a crash loses at most the last 500 ms). One sandbox at a
    /// time: a second one on the same directory fails with [`PersistError::Locked`]. A
    /// `DIR/sandbox.json` from an earlier build is moved into the store on first start.
    pub data_dir: Option<PathBuf>,
    /// Derive every key from this seed (same seed, same root key and phone identities).
    pub seed: Option<u64>,
    /// Schedules (ref lifetimes, timeouts).
    pub timing: Timing,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            seed: None,
            timing: Timing::default(),
        }
    }
}

/// Starts sandboxes.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Binds the listener, loads or creates the keys, and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, Error> {
        let mut rng = keys::new_rng(config.seed);
        let (store, loaded) = match &config.data_dir {
            Some(dir) => {
                let (store, loaded) = legacy::open(dir)?;
                (Some(store), loaded)
            }
            None => (None, None),
        };
        // The seed decides the root if there is one; otherwise a kept root is reused, so
        // clients configured with it keep working across restarts.
        let root = match (config.seed, &loaded) {
            (Some(seed), _) => keys::key_pair(Some(seed), "root", &mut rng),
            (None, Some(l)) => l.root.clone(),
            (None, None) => keys::key_pair(None, "root", &mut rng),
        };
        if let Some(store) = &store {
            // Kept from the first start on, and on disk before any client is told it.
            store.put_root(&root)?;
            store.flush()?;
        }
        let identity = keys::server_identity(&root, config.seed, &mut rng);
        let mut state = State::new(rng, config.seed, root);
        if let Some(l) = loaded {
            persist::restore(&mut state, l);
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared::new(state, identity, config.timing, store));
        let (stop_tx, stop) = watch::channel(false);
        let coordinates = Arc::new(info(addr, &shared.root_public));
        let (task, finished) = server::spawn(listener, shared.clone(), stop, coordinates);
        tracing::info!(%addr, "sandbox listening");
        Ok(SandboxHandle {
            shared,
            addr,
            stop: stop_tx,
            task: Some(task),
            finished,
        })
    }
}

/// The sandbox's coordinates as one JSON object: `ws_url`, `control_url`, `root_public_key`
/// (64 hex digits). `wuts sim` prints it; `GET /control/info` returns it.
fn info(addr: SocketAddr, root: &PublicKey) -> serde_json::Value {
    serde_json::json!({
        "ws_url": format!("ws://{addr}{WS_PATH}"),
        "control_url": format!("http://{addr}{CONTROL_PATH}"),
        "root_public_key": keys::hex(root.as_bytes()),
    })
}

/// A running sandbox. Dropping it stops the server (prefer [`shutdown`](Self::shutdown) to
/// wait for it).
pub struct SandboxHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Ends (`recv` gives `None`) once the server and every connection task are gone.
    finished: mpsc::Receiver<()>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws/chat`: where clients connect.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{WS_PATH}", self.addr)
    }

    /// `http://ADDR/control`: the base of the control API.
    pub fn control_url(&self) -> String {
        format!("http://{}{CONTROL_PATH}", self.addr)
    }

    /// `{"ws_url", "control_url", "root_public_key"}`: what `wuts sim` prints on start.
    pub fn info(&self) -> serde_json::Value {
        info(self.addr, &self.shared.root_public)
    }

    /// The root key clients must trust instead of WhatsApp's.
    pub fn root_public_key(&self) -> PublicKey {
        self.shared.root_public
    }

    /// The phone `phone` scans the QR code `qr`: the device showing it is linked to that
    /// phone's account. Returns once the device's `pair-device-sign` verified (the device is
    /// then told to restart with `stream:error` 515), or with the check that failed.
    pub async fn scan(&self, qr: &str, phone: &str) -> Result<PairedDevice, Error> {
        Ok(self.shared.scan(qr, phone).await?)
    }

    /// The phone `phone` types the pairing code `code` (`ABCD-EFGH`) shown by a companion that
    /// asked for a code for this number: returns once the companion's `pair-device-sign`
    /// verified, or why not ([`PairingError::WrongCode`] leaves the code valid for another
    /// try; [`PairingError::CodeExpired`]; [`PairingError::NoPairingCode`]).
    pub async fn type_code(&self, phone: &str, code: &str) -> Result<PairedDevice, Error> {
        Ok(self.shared.type_code(phone, code).await?)
    }

    /// The edge routing info given to the device `jid` and what its latest login presented;
    /// `None` before its first login in this sandbox.
    pub fn edge_routing(&self, jid: &str) -> Option<EdgeRouting> {
        self.shared.edge_routing_of(jid)
    }

    /// The dirty bit the device `jid` has not cleaned yet (`account_sync` for a new device
    /// until its first active session answers clean), if any.
    pub fn dirty(&self, jid: &str) -> Option<String> {
        self.shared
            .lock()
            .dirty
            .get(jid)
            .map(|(kind, _)| kind.clone())
    }

    /// The login counter (`lc`) each login of the device `jid` sent, in order (`None` where a
    /// login sent none).
    pub fn login_counts(&self, jid: &str) -> Vec<Option<i32>> {
        let st = self.shared.lock();
        st.login_counts.get(jid).cloned().unwrap_or_default()
    }

    /// The notifications sent to the device `jid`, oldest first (the last 256;
    /// `GET /control/notifications`).
    pub fn notifications(&self, jid: &str) -> Vec<SentStanza> {
        self.shared.notifications(jid)
    }

    /// The key bundle the server holds for the device `jid` (`GET /control/prekeys`).
    pub fn key_bundle(&self, jid: &str) -> Result<prekeys::KeyBundleInfo, Error> {
        prekeys::bundle_info(&self.shared, jid).ok_or_else(|| Error::UnknownDevice(jid.into()))
    }

    /// Corrupts, drops or consumes the server's copy of a device's keys
    /// (`POST /control/prekeys`); returns what the server holds afterwards.
    pub fn inject_key_fault(
        &self,
        jid: &str,
        fault: prekeys::KeyFault,
    ) -> Result<prekeys::KeyBundleInfo, Error> {
        prekeys::inject(&self.shared, jid, fault).ok_or_else(|| Error::UnknownDevice(jid.into()))
    }

    /// How many of the server's pings the device `jid` answered (`Timing::server_ping`).
    pub fn server_pings_answered(&self, jid: &str) -> u32 {
        self.shared.lock().pongs.get(jid).copied().unwrap_or(0)
    }

    /// Every device ever linked, removed ones included.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.shared.devices()
    }

    /// Every group created, in creation order.
    pub fn groups(&self) -> Vec<GroupRecord> {
        self.shared.groups()
    }

    /// Configures how `phone` behaves as a scanning phone and as a group participant.
    pub fn set_phone_behaviour(&self, phone: &str, behaviour: PhoneBehaviour) -> Result<(), Error> {
        self.shared.set_phone_behaviour(phone, behaviour)
    }

    /// Unlinks a device as its phone would (see [`StreamError::DeviceRemoved`]).
    pub async fn remove_device(&self, jid: &str) -> Result<(), Error> {
        self.shared.remove_device(jid).await
    }

    /// Injects a fault. Connection faults need the device to be online
    /// ([`Error::NotConnected`] otherwise); IQ and login faults wait for their moment.
    pub async fn inject(&self, fault: Fault) -> Result<(), Error> {
        self.shared.inject(fault).await
    }

    /// Injects `fault_for(jid)` for every device connected now (what the control API does when
    /// a fault names no device); returns how many devices it reached, or
    /// [`Error::NothingConnected`].
    pub async fn inject_connected(
        &self,
        fault_for: impl Fn(String) -> Fault,
    ) -> Result<usize, Error> {
        self.shared.inject_connected(fault_for).await
    }

    /// What has been written to the data directory since the start (zero without one).
    pub fn store_writes(&self) -> StoreWrites {
        self.shared.store_writes()
    }

    /// Events from now on, for tests that wait rather than sleep.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Stops accepting, closes every connection, waits for the server and the connections to
    /// finish, and flushes the data directory. When it returns the directory is closed, and
    /// another sandbox may open it.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        let served = match self.task.take() {
            Some(task) => match task.await {
                Ok(r) => r.map_err(Error::Server),
                Err(e) => Err(Error::Server(std::io::Error::other(e))),
            },
            None => Ok(()),
        };
        // Connection tasks end on the same signal but are not the server's to wait for; each
        // holds the state (and so the store) until it is gone.
        let _ = self.finished.recv().await;
        self.shared.flush()?;
        served
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
