//! Shared by the `gateway_*` tests: a recording fake of `Devices` and a gateway served over
//! real HTTP on 127.0.0.1:0.
//!
//! The fake stands in for the device registry until the engine lands; then the same tests
//! gain end-to-end twins against the in-process sandbox (pairing by the sandbox phone, groups
//! created by the simulated server). Every call the gateway makes is recorded, so a test can
//! assert that nothing was sent for a bad request.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use wuts::binary::Jid;
use wuts::client::api::{
    BoxFuture, DeviceEvent, DeviceId, DeviceState, DeviceStats, DeviceStatus, Devices, Error,
    QrCode,
};
use wuts::http::{AppState, GatewayConfig, hash_token};
use wuts::ops::groups::{CreateGroup, GroupInfo, GroupParticipant, ParticipantOutcome};
use wuts_store::gateway::{GatewayStore, MemGatewayStore, UserId};

/// One call the gateway made.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Create,
    Pair(DeviceId),
    CreateGroup(DeviceId, CreateGroup),
    Remove(DeviceId),
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
    group_delay: Option<Duration>,
    reconnects: u64,
}

/// A `Devices` that records calls and answers like a registry would.
#[derive(Default)]
pub struct FakeDevices {
    state: Mutex<State>,
    /// Signalled (one permit) each time a `create_group` call arrives.
    group_started: tokio::sync::Notify,
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

    /// Sends an event to the device's subscribers.
    pub fn emit(&self, device: DeviceId, event: DeviceEvent) {
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

    /// `create_group` waits this long before answering.
    pub fn set_group_delay(&self, delay: Duration) {
        self.with(|s| s.group_delay = Some(delay));
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
                    return Err(Error::Invalid("the device is already paired".into()));
                }
                d.status.state = DeviceState::Pairing;
                d.status.qr = Some(sample_qr(0));
                let _ = d.events.send(DeviceEvent::Qr(sample_qr(0)));
                Ok(())
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

    fn subscribe(&self, id: DeviceId) -> Result<broadcast::Receiver<DeviceEvent>, Error> {
        self.with(|s| {
            s.devices
                .get(&id)
                .map(|d| d.events.subscribe())
                .ok_or(Error::UnknownDevice(id))
        })
    }

    fn create_group(
        &self,
        id: DeviceId,
        req: CreateGroup,
    ) -> BoxFuture<'_, Result<GroupInfo, Error>> {
        Box::pin(async move {
            let delay = self.with(|s| {
                s.calls.push(Call::CreateGroup(id, req.clone()));
                s.group_delay
            });
            self.group_started.notify_one();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
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
                    reason: "removed through the API".into(),
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

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A gateway serving over HTTP.
pub struct Gateway {
    pub url: String,
    pub http: reqwest::Client,
    pub devices: Arc<FakeDevices>,
    pub store: Arc<dyn GatewayStore>,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A user created through the admin API.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub tenant_id: String,
    pub token: String,
    pub device: DeviceId,
}

pub async fn start(config: GatewayConfig) -> Gateway {
    start_with(FakeDevices::new(), Arc::new(MemGatewayStore::new()), config).await
}

pub async fn start_default() -> Gateway {
    start(GatewayConfig::default()).await
}

pub async fn start_with(
    devices: Arc<FakeDevices>,
    store: Arc<dyn GatewayStore>,
    config: GatewayConfig,
) -> Gateway {
    let (admin, _) = wuts::http::resolve_admin_token(store.as_ref(), Some(ADMIN_TOKEN)).unwrap();
    assert_eq!(admin, hash_token(ADMIN_TOKEN));
    let state = AppState::new(devices.clone(), store.clone(), config, admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(wuts::http::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Gateway {
        url,
        http: reqwest::Client::new(),
        devices,
        store,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Gateway {
    /// Triggers a graceful shutdown and waits for it.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.wait_stopped().await;
    }

    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn wait_stopped(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("gateway stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn admin_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self.admin(method, path).json(&body).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn tenant(&self, name: &str) -> String {
        let tenant = self
            .admin_json(
                reqwest::Method::POST,
                "/admin/tenants",
                json!({ "name": name }),
            )
            .await;
        tenant["id"].as_str().unwrap().to_owned()
    }

    /// Creates a user in `tenant_id` whose device is not paired.
    pub async fn user_in(&self, tenant_id: &str, name: &str) -> TestUser {
        let user = self
            .admin_json(
                reqwest::Method::POST,
                "/admin/users",
                json!({ "tenant_id": tenant_id, "name": name }),
            )
            .await;
        let id = user["id"].as_str().unwrap().to_owned();
        let device = self
            .store
            .user(&UserId::new(id.clone()).unwrap())
            .unwrap()
            .unwrap()
            .device;
        TestUser {
            id,
            tenant_id: tenant_id.to_owned(),
            token: user["token"].as_str().unwrap().to_owned(),
            device,
        }
    }

    /// A new tenant with one user whose device is paired and connected.
    pub async fn connected_user(&self) -> TestUser {
        let tenant = self.tenant("Padaria").await;
        let user = self.user_in(&tenant, "Ana").await;
        self.devices.connect(user.device);
        user
    }

    pub fn groups(&self, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/groups", self.url))
            .bearer_auth(token)
    }
}

/// A response's status and JSON body.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    (status, body)
}
