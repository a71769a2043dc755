//! Shared by the HTTP-level `gateway_*` tests: a recording fake of `Devices` behind the shared
//! harness (`gateway_harness`). Every call the gateway makes is recorded, so a test can assert
//! that nothing was sent for a bad request; end-to-end twins run against the sandbox
//! (`gateway_e2e_support`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

#[path = "../gateway_harness/mod.rs"]
mod harness;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use harness::*;
use tokio::sync::broadcast;
use wuts::binary::Jid;
use wuts::client::api::{
    BoxFuture, DeviceEvent, DeviceId, DeviceState, DeviceStats, DeviceStatus, Devices, Error,
    PairCodeInfo, QrCode, Reason,
};
use wuts::http::GatewayConfig;
use wuts::ops::groups::{CreateGroup, GroupInfo, GroupParticipant, ParticipantOutcome};
use wuts::types::UserJid;
use wuts_store::gateway::{GatewayStore, MemGatewayStore};

/// One call the gateway made.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Create,
    Pair(DeviceId),
    CreateGroup(DeviceId, CreateGroup),
    Remove(DeviceId),
    Connect(DeviceId),
    Disconnect(DeviceId),
    Logout(DeviceId),
    Shutdown,
}

struct FakeDevice {
    status: DeviceStatus,
    events: broadcast::Sender<DeviceEvent>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    devices: HashMap<DeviceId, FakeDevice>,
    calls: Vec<Call>,
    /// Scripted results for the next `create_group` calls, in order.
    group_results: VecDeque<Result<GroupInfo, Error>>,
    /// Outcomes for particular participants in the default result.
    outcomes: HashMap<Jid, ParticipantOutcome>,
    reconnects: u64,
}

/// A `Devices` that records calls and answers like a registry would.
pub struct FakeDevices {
    state: Mutex<State>,
    /// Signalled (one permit) each time a `create_group` call arrives.
    group_started: tokio::sync::Notify,
    /// While `false`, `create_group` calls wait (a gate, so tests never sleep to overlap).
    groups_open: tokio::sync::watch::Sender<bool>,
    /// The gateway's event pipeline, as a registry would hold it.
    sink: Mutex<Option<Arc<dyn wuts::events::EventSink>>>,
}

impl Default for FakeDevices {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            group_started: tokio::sync::Notify::new(),
            groups_open: tokio::sync::watch::channel(true).0,
            sink: Mutex::new(None),
        }
    }
}

pub const GROUP_CREATED_AT: u64 = 1_781_517_600; // 2026-06-15T10:00:00Z

impl FakeDevices {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// The `create_group` calls, with the device each went to.
    pub fn group_calls(&self) -> Vec<(DeviceId, CreateGroup)> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::CreateGroup(device, request) => Some((device, request)),
                _ => None,
            })
            .collect()
    }

    /// Puts a device in `state` (with a JID once paired).
    pub fn set_state(&self, device: DeviceId, state: DeviceState) {
        self.with(|s| {
            let d = s.devices.get_mut(&device).expect("device exists");
            d.status.state = state;
            if !matches!(state, DeviceState::Unpaired | DeviceState::Pairing) {
                d.status.jid = Some(own_jid(device));
                d.status.qr = None;
            }
        });
    }

    /// Pairs and connects a device at once.
    pub fn connect(&self, device: DeviceId) {
        self.set_state(device, DeviceState::Connected);
    }

    /// The event pipeline the gateway handed over (for group events).
    pub fn sink(&self) -> Arc<dyn wuts::events::EventSink> {
        self.sink
            .lock()
            .unwrap()
            .clone()
            .expect("the gateway set a sink")
    }

    /// Sends an event to the device's subscribers and the event pipeline, as a device task does.
    pub fn emit(&self, device: DeviceId, event: DeviceEvent) {
        let sink = self.sink.lock().unwrap().clone();
        if let Some(sink) = sink {
            sink.device_event(device, &event);
        }
        self.with(|s| {
            let d = s.devices.get_mut(&device).expect("device exists");
            let _ = d.events.send(event);
        });
    }

    /// The next `create_group` returns this.
    pub fn push_group_result(&self, result: Result<GroupInfo, Error>) {
        self.with(|s| s.group_results.push_back(result));
    }

    /// In the default result, this participant gets this outcome.
    pub fn set_outcome(&self, jid: &str, outcome: ParticipantOutcome) {
        self.with(|s| s.outcomes.insert(jid.parse().unwrap(), outcome));
    }

    /// `create_group` calls wait until [`FakeDevices::release_groups`].
    pub fn hold_groups(&self) {
        self.groups_open.send_replace(false);
    }

    /// Lets held and later `create_group` calls answer.
    pub fn release_groups(&self) {
        self.groups_open.send_replace(true);
    }

    pub fn set_reconnects(&self, count: u64) {
        self.with(|s| s.reconnects = count);
    }

    /// Waits until a `create_group` call has arrived (since the last wait).
    pub async fn group_call_arrived(&self) {
        self.group_started.notified().await;
    }

    pub fn exists(&self, device: DeviceId) -> bool {
        self.with(|s| s.devices.contains_key(&device))
    }
}

/// Why a fake device was logged out through the API.
pub fn logout_reason() -> Reason {
    Reason {
        code: "logout_requested",
        message: "logged out through the API".to_owned(),
    }
}

/// The JID a fake device gets once paired: its id as a phone number.
pub fn own_jid(device: DeviceId) -> Jid {
    Jid::new(format!("55119000{:05}", device.get()), "s.whatsapp.net")
}

pub fn sample_qr(n: u64) -> QrCode {
    QrCode {
        code: format!("2@ref{n},noisekey,identitykey,advsecret"),
        expires_at: 1_781_517_660 + n,
        ttl: Duration::from_secs(if n == 0 { 60 } else { 20 }),
    }
}

/// What a registry would answer: the creator as super admin, every participant added unless
/// an outcome says otherwise.
fn default_group(device: DeviceId, request: &CreateGroup, state: &State) -> GroupInfo {
    let owner = own_jid(device);
    let mut participants = vec![GroupParticipant {
        jid: owner.clone(),
        phone_number: None,
        is_admin: true,
        is_super_admin: true,
        outcome: ParticipantOutcome::Added,
    }];
    participants.extend(request.participants.iter().map(|jid| {
        GroupParticipant {
            jid: jid.clone(),
            phone_number: None,
            is_admin: false,
            is_super_admin: false,
            outcome: state
                .outcomes
                .get(jid)
                .cloned()
                .unwrap_or(ParticipantOutcome::Added),
        }
    }));
    GroupInfo {
        jid: Jid::new("120363039000000000", "g.us"),
        subject: request.subject.clone(),
        owner: Some(owner),
        created_at: GROUP_CREATED_AT,
        description: request.description.clone(),
        description_id: None,
        ephemeral: 0,
        member_add_mode: None,
        announcement: request.announcement,
        locked: request.locked,
        join_approval: request.join_approval,
        is_community: request.community,
        parent: request.parent.clone(),
        addressing_mode: Some("pn".to_owned()),
        participants,
    }
}

impl Devices for FakeDevices {
    fn create(&self) -> BoxFuture<'_, Result<DeviceId, Error>> {
        Box::pin(async move {
            Ok(self.with(|s| {
                s.calls.push(Call::Create);
                s.next_id += 1;
                let id = DeviceId::new(s.next_id);
                s.devices.insert(
                    id,
                    FakeDevice {
                        status: DeviceStatus {
                            state: DeviceState::Unpaired,
                            jid: None,
                            qr: None,
                            pair_code: None,
                            last_seen: None,
                            reason: None,
                        },
                        events: broadcast::channel(64).0,
                    },
                );
                id
            }))
        })
    }

    fn pair(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.with(|s| {
                s.calls.push(Call::Pair(id));
                let d = s.devices.get_mut(&id).ok_or(Error::UnknownDevice(id))?;
                if d.status.jid.is_some() {
                    return Err(Error::AlreadyPaired);
                }
                if d.status.state == DeviceState::Pairing {
                    return Err(Error::Pairing);
                }
                d.status.state = DeviceState::Pairing;
                d.status.qr = Some(sample_qr(0));
                let _ = d.events.send(DeviceEvent::Qr(sample_qr(0)));
                Ok(())
            })
        })
    }

    fn pair_code(
        &self,
        id: DeviceId,
        phone: UserJid,
    ) -> BoxFuture<'_, Result<PairCodeInfo, Error>> {
        Box::pin(async move {
            self.with(|s| {
                let d = s.devices.get_mut(&id).ok_or(Error::UnknownDevice(id))?;
                if d.status.jid.is_some() {
                    return Err(Error::AlreadyPaired);
                }
                d.status.state = DeviceState::Pairing;
                let info = PairCodeInfo {
                    code: "ABCD-EFGH".to_owned(),
                    phone: phone.as_jid().user.to_string(),
                    expires_at: 1_700_000_180,
                };
                d.status.pair_code = Some(info.clone());
                let _ = d.events.send(DeviceEvent::PairCode(info.clone()));
                Ok(info)
            })
        })
    }

    fn status(&self, id: DeviceId) -> Result<DeviceStatus, Error> {
        self.with(|s| {
            s.devices
                .get(&id)
                .map(|d| d.status.clone())
                .ok_or(Error::UnknownDevice(id))
        })
    }

    fn set_event_sink(&self, sink: Arc<dyn wuts::events::EventSink>) {
        *self.sink.lock().unwrap() = Some(sink);
    }

    fn subscribe(&self, id: DeviceId) -> Result<broadcast::Receiver<DeviceEvent>, Error> {
        self.with(|s| {
            s.devices
                .get(&id)
                .map(|d| d.events.subscribe())
                .ok_or(Error::UnknownDevice(id))
        })
    }

    /// Group administration is proven against the sandbox (`gateway_group_admin.rs`);
    /// this fake never reaches WhatsApp.
    fn group(
        &self,
        _: DeviceId,
        _: wuts::ops::groups::GroupCall,
    ) -> BoxFuture<'_, Result<wuts::ops::groups::GroupAnswer, Error>> {
        Box::pin(async { Err(Error::NotConnected) })
    }

    fn create_group(
        &self,
        id: DeviceId,
        req: CreateGroup,
    ) -> BoxFuture<'_, Result<GroupInfo, Error>> {
        Box::pin(async move {
            self.with(|s| s.calls.push(Call::CreateGroup(id, req.clone())));
            let mut open = self.groups_open.subscribe();
            self.group_started.notify_one();
            let _ = open.wait_for(|open| *open).await;
            self.with(|s| {
                if let Some(result) = s.group_results.pop_front() {
                    return result;
                }
                let d = s.devices.get(&id).ok_or(Error::UnknownDevice(id))?;
                match d.status.state {
                    DeviceState::Connected => Ok(default_group(id, &req, s)),
                    DeviceState::Connecting | DeviceState::Disconnected => Err(Error::NotConnected),
                    _ => Err(Error::NotPaired),
                }
            })
        })
    }

    fn remove(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.with(|s| {
                s.calls.push(Call::Remove(id));
                let d = s.devices.remove(&id).ok_or(Error::UnknownDevice(id))?;
                let _ = d.events.send(DeviceEvent::LoggedOut {
                    reason: logout_reason(),
                });
                Ok(())
            })
        })
    }

    fn connect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.with(|s| {
                s.calls.push(Call::Connect(id));
                let d = s.devices.get_mut(&id).ok_or(Error::UnknownDevice(id))?;
                if d.status.jid.is_none() {
                    return Err(Error::NotPaired);
                }
                d.status.state = DeviceState::Connected;
                Ok(())
            })
        })
    }

    fn disconnect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.with(|s| {
                s.calls.push(Call::Disconnect(id));
                let d = s.devices.get_mut(&id).ok_or(Error::UnknownDevice(id))?;
                if d.status.jid.is_some() {
                    d.status.state = DeviceState::Disconnected;
                }
                Ok(())
            })
        })
    }

    fn logout(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.with(|s| {
                s.calls.push(Call::Logout(id));
                let d = s.devices.get_mut(&id).ok_or(Error::UnknownDevice(id))?;
                d.status = DeviceStatus {
                    state: DeviceState::LoggedOut,
                    jid: None,
                    qr: None,
                    pair_code: None,
                    last_seen: None,
                    reason: Some(logout_reason()),
                };
                let _ = d.events.send(DeviceEvent::LoggedOut {
                    reason: logout_reason(),
                });
                Ok(())
            })
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.with(|s| s.calls.push(Call::Shutdown)) })
    }

    fn stats(&self) -> DeviceStats {
        let mut stats = DeviceStats::default();
        stats.reconnects = self.with(|s| s.reconnects);
        stats
    }
}

/// The fake's gateway.
pub type FakeGateway = Gateway<FakeDevices>;

pub async fn start(config: GatewayConfig) -> FakeGateway {
    start_with(FakeDevices::new(), Arc::new(MemGatewayStore::new()), config).await
}

pub async fn start_default() -> FakeGateway {
    start(GatewayConfig::default()).await
}

pub async fn start_with(
    devices: Arc<FakeDevices>,
    store: Arc<dyn GatewayStore>,
    config: GatewayConfig,
) -> FakeGateway {
    serve(devices, store, config).await
}

impl FakeGateway {
    /// A new tenant with one user whose device is paired and connected.
    pub async fn connected_user(&self) -> User {
        let tenant = self.tenant("Padaria").await;
        let user = self.user_in(&tenant, "Ana").await;
        self.devices.connect(user.device);
        user
    }
}
