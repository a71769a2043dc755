//! `POST /groups` through the gateway over loopback HTTP, set beside calling the registry
//! directly in the same run: requests/s, p50 and p99, and the gateway's cost per request.
//!
//! Two parts:
//! 1. An instant in-process stand-in registry: the gateway's own cost alone (HTTP parsing, auth
//!    with a store lookup and SHA-256, validation, rendering, metrics, plus the load
//!    generator's own HTTP client on the same cores).
//! 2. The real registry with one device paired to the in-process sandbox (real websocket,
//!    Noise, codec, sled): `POST /groups` through the gateway to the sandbox and back, against
//!    `Devices::create_group` on the same registry and device, sequentially and with a few
//!    concurrent clients. The overhead is the gateway's share of a real round trip
//!    (goal: under 15%).
//!
//! Run: `cargo bench --bench gateway [-- --seconds 5 --concurrency 16 --sandbox-concurrency 1,4]`
//! (add `--sandbox-data` to give the sandbox a data directory, as `wuts serve --sandbox` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast;
use wuts::binary::Jid;
use wuts::client::api::{
    BoxFuture, DeviceEvent, DeviceId, DeviceState, DeviceStatus, Devices, Error,
};
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::http::{AppState, GatewayConfig};
use wuts::ops::groups::{CreateGroup, GroupInfo, GroupParticipant, ParticipantOutcome};
use wuts::sim::{Fault, Sandbox, SandboxConfig};
use wuts_store::SledStore;
use wuts_store::gateway::{GatewayStore, MemGatewayStore, UserId};

/// A registry that answers every group request at once, as the sandbox would (shape-wise).
struct Instant0;

fn group(request: &CreateGroup) -> GroupInfo {
    let owner = Jid::new("5511900000001", "s.whatsapp.net");
    let mut participants = vec![GroupParticipant {
        jid: owner.clone(),
        phone_number: None,
        is_admin: true,
        is_super_admin: true,
        outcome: ParticipantOutcome::Added,
    }];
    participants.extend(request.participants.iter().map(|jid| GroupParticipant {
        jid: jid.clone(),
        phone_number: None,
        is_admin: false,
        is_super_admin: false,
        outcome: ParticipantOutcome::Added,
    }));
    GroupInfo {
        jid: Jid::new("120363039000000000", "g.us"),
        subject: request.subject.clone(),
        owner: Some(owner),
        created_at: 1_781_517_600,
        description: None,
        description_id: None,
        ephemeral: 0,
        member_add_mode: None,
        announcement: request.announcement,
        locked: request.locked,
        join_approval: request.join_approval,
        is_community: false,
        parent: None,
        addressing_mode: None,
        participants,
    }
}

impl Devices for Instant0 {
    fn create(&self) -> BoxFuture<'_, Result<DeviceId, Error>> {
        Box::pin(async { Ok(DeviceId::new(1)) })
    }
    fn pair(&self, _: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn pair_code(
        &self,
        _: DeviceId,
        _: wuts::types::UserJid,
    ) -> BoxFuture<'_, Result<wuts::client::api::PairCodeInfo, Error>> {
        Box::pin(async { Err(Error::AlreadyPaired) })
    }
    fn connect(&self, _: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn disconnect(&self, _: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn logout(&self, _: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn status(&self, _: DeviceId) -> Result<DeviceStatus, Error> {
        Ok(DeviceStatus {
            state: DeviceState::Connected,
            jid: None,
            qr: None,
            pair_code: None,
            last_seen: None,
            reason: None,
        })
    }
    fn subscribe(&self, _: DeviceId) -> Result<broadcast::Receiver<DeviceEvent>, Error> {
        Ok(broadcast::channel(1).1)
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
        _: DeviceId,
        req: CreateGroup,
    ) -> BoxFuture<'_, Result<GroupInfo, Error>> {
        Box::pin(async move { Ok(group(&req)) })
    }
    fn remove(&self, _: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// How many alternating rounds of direct and HTTP calls make one sandbox measurement.
const ROUNDS: usize = 5;

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn add(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }

    fn report(&mut self, name: &str) -> Figures {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
            self.latencies[i]
        };
        let (p50, p99) = (at(0.50), at(0.99));
        println!(
            "{name:<22} {:>10.0} req/s   p50 {:>8.1} us   p99 {:>8.1} us   ({} requests)",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            self.latencies.len()
        );
        Figures {
            rps: self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            p50,
            p99,
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy)]
struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `concurrency` workers, each calling `call` in a loop for `seconds`.
async fn load<F, Fut>(concurrency: usize, seconds: f64, call: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    call().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    Run {
        latencies,
        elapsed: started.elapsed(),
    }
}

fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg(name: &str, default: f64) -> f64 {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let smoke = mode::smoke("gateway");
    let seconds = if smoke { 0.2 } else { arg("--seconds", 3.0) };
    let concurrency = arg("--concurrency", 16.0) as usize;
    instant_registry(seconds, concurrency).await;
    let list = |name: &str, default: &str| -> Vec<u64> {
        arg_text(name)
            .unwrap_or_else(|| default.to_owned())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let levels: Vec<usize> = list("--sandbox-concurrency", "1,4")
        .into_iter()
        .map(|v| v as usize)
        .collect();
    // WhatsApp answers from across the internet: a delay on the sandbox's group replies shows
    // the gateway's overhead where it matters. 0 is the loopback worst case.
    let delays = if smoke {
        vec![0]
    } else {
        list("--wa-delay-ms", "0,20")
    };
    let sandbox_data = std::env::args().any(|a| a == "--sandbox-data");
    against_the_sandbox(seconds, &levels, &delays, sandbox_data).await;
}

/// Part 1: the gateway in front of an instant stand-in registry.
async fn instant_registry(seconds: f64, concurrency: usize) {
    let devices: Arc<dyn Devices> = Arc::new(Instant0);
    let store = Arc::new(MemGatewayStore::new());
    let (admin, _) = wuts::http::resolve_admin_token(store.as_ref(), Some("bench")).unwrap();
    let state = AppState::new(devices.clone(), store, GatewayConfig::default(), admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wuts::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth("bench")
            .json(&body)
            .send()
    };
    let tenant: Value = admin("/admin/tenants", json!({"name": "bench"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user: Value = admin(
        "/admin/users",
        json!({"tenant_id": tenant["id"], "name": "bench"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = user["token"].as_str().unwrap().to_owned();
    let body = json!({
        "name": "Bench group",
        "participants": ["5511999990001", "5511999990002@s.whatsapp.net", "+55 11 99999-0003"],
        "options": {"join_approval": true}
    });
    let request: CreateGroup = CreateGroup {
        subject: "Bench group".into(),
        participants: (1..=3)
            .map(|i| Jid::new(format!("551199999000{i}"), "s.whatsapp.net"))
            .collect(),
        join_approval: true,
        ..CreateGroup::default()
    };

    println!("POST /groups, {concurrency} concurrent clients, {seconds} s each, instant registry");
    let direct = {
        let devices = devices.clone();
        load(concurrency, seconds, move || {
            let devices = devices.clone();
            let request = request.clone();
            async move {
                devices
                    .create_group(DeviceId::new(1), request)
                    .await
                    .unwrap();
            }
        })
        .await
        .report("registry, direct")
    };
    let through = {
        let (http, url, token, body) = (http.clone(), url.clone(), token.clone(), body.clone());
        load(concurrency, seconds, move || {
            let send = http
                .post(format!("{url}/groups"))
                .bearer_auth(&token)
                .json(&body)
                .send();
            async move {
                let response = send.await.unwrap();
                assert_eq!(response.status(), 201);
                response.bytes().await.unwrap();
            }
        })
        .await
        .report("through the gateway")
    };
    println!(
        "gateway cost per request at p50: {:.1} us",
        (through.p50.saturating_sub(direct.p50)).as_secs_f64() * 1e6
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// Part 2: the real registry, one device paired to the in-process sandbox, the gateway in front
/// of it; direct calls and HTTP calls alternate per concurrency level in the same run.
async fn against_the_sandbox(seconds: f64, levels: &[usize], delays: &[u64], sandbox_data: bool) {
    let sim_dir = tempfile::tempdir().unwrap();
    let sim = Sandbox::start(SandboxConfig {
        seed: Some(7),
        data_dir: sandbox_data.then(|| sim_dir.path().join("sandbox")),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    // As `wuts serve` builds it (`build_devices`), pointed at the sandbox.
    let registry = Registry::new(
        store.clone(),
        ClientConfig {
            ws_url: sim.ws_url(),
            engine: Arc::new(EngineConfig {
                trusted_root: sim.root_public_key(),
                // Pairing is not measured; a small first pre-key upload keeps `--test` quick.
                pre_key_batch: (50, 50),
                ..EngineConfig::default()
            }),
            ..ClientConfig::default()
        },
    );
    registry.restore().unwrap();
    let devices: Arc<dyn Devices> = Arc::new(registry.clone());
    let gateway_store: Arc<dyn GatewayStore> = store.clone();
    let (admin, _) =
        wuts::http::resolve_admin_token(gateway_store.as_ref(), Some("bench")).unwrap();
    let state = AppState::new(
        devices.clone(),
        gateway_store.clone(),
        GatewayConfig::default(),
        admin,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wuts::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    // A user through the admin API, its device paired by the sandbox's phone.
    let http = reqwest::Client::new();
    let admin = |path: String, body: Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth("bench")
            .json(&body)
            .send()
    };
    let tenant: Value = admin("/admin/tenants".into(), json!({"name": "bench"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user: Value = admin(
        "/admin/users".into(),
        json!({"tenant_id": tenant["id"], "name": "bench"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = user["token"].as_str().unwrap().to_owned();
    let user_id = UserId::new(user["id"].as_str().unwrap().to_owned()).unwrap();
    let device = gateway_store.user(&user_id).unwrap().unwrap().device;
    let mut events = registry.client(device).unwrap().subscribe();
    let paired = tokio::time::timeout(Duration::from_secs(60), async {
        let response = admin(format!("/admin/users/{user_id}/pair"), json!({}))
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        loop {
            match events.recv().await.unwrap() {
                DeviceEvent::Qr(qr) => {
                    sim.scan(&qr.code, "5511999990000").await.unwrap();
                }
                DeviceEvent::Connected => return,
                _ => {}
            }
        }
    })
    .await;
    paired.expect("paired and connected within 60 s");

    let body = json!({
        "name": "Bench group",
        "participants": ["5511999990001", "5511999990002@s.whatsapp.net", "+55 11 99999-0003"],
        "options": {"join_approval": true}
    });
    let request: CreateGroup = CreateGroup {
        subject: "Bench group".into(),
        participants: (1..=3)
            .map(|i| Jid::new(format!("551199999000{i}"), "s.whatsapp.net"))
            .collect(),
        join_approval: true,
        ..CreateGroup::default()
    };
    // The gateway's own store work per request: the token lookup in sled.
    let hash = wuts::http::hash_token(&token);
    let started = Instant::now();
    for _ in 0..10_000 {
        gateway_store.user_by_token(&hash).unwrap().unwrap();
    }
    println!(
        "\nsled user_by_token: {:.1} us per lookup",
        started.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
    // Warm up both paths (connection pool, first allocations).
    for _ in 0..20 {
        devices.create_group(device, request.clone()).await.unwrap();
    }

    let jid = registry
        .client(device)
        .unwrap()
        .status()
        .jid
        .unwrap()
        .to_string();
    for &delay in delays {
        let fault = if delay == 0 {
            Fault::ClearIqFaults {
                device: jid.clone(),
            }
        } else {
            Fault::DelayIq {
                device: jid.clone(),
                millis: delay,
                xmlns: Some("w:g2".into()),
                count: None,
            }
        };
        sim.inject(fault).await.unwrap();
        for &concurrency in levels {
            println!(
                "\nPOST /groups to the in-process sandbox (+{delay} ms per reply), \
             {concurrency} concurrent clients, {seconds} s each"
            );
            // Direct and HTTP runs alternate in short rounds, so drift (the sandbox's growing
            // group list, other load on the machine) weighs on both alike.
            let mut direct = Run::default();
            let mut through = Run::default();
            for _ in 0..ROUNDS {
                let (devices, request) = (devices.clone(), request.clone());
                direct.add(
                    load(concurrency, seconds / ROUNDS as f64, move || {
                        let (devices, request) = (devices.clone(), request.clone());
                        async move {
                            devices.create_group(device, request).await.unwrap();
                        }
                    })
                    .await,
                );
                let (http, url, token, body) =
                    (http.clone(), url.clone(), token.clone(), body.clone());
                through.add(
                    load(concurrency, seconds / ROUNDS as f64, move || {
                        let send = http
                            .post(format!("{url}/groups"))
                            .bearer_auth(&token)
                            .json(&body)
                            .send();
                        async move {
                            let response = send.await.unwrap();
                            assert_eq!(response.status(), 201);
                            response.bytes().await.unwrap();
                        }
                    })
                    .await,
                );
            }
            let direct = direct.report("Devices::create_group");
            let through = through.report("through the gateway");
            let pct = |direct: f64, through: f64| (through / direct - 1.0) * 100.0;
            println!(
                "gateway overhead: p50 {:+.1}%  p99 {:+.1}%  throughput {:+.1}%",
                pct(direct.p50.as_secs_f64(), through.p50.as_secs_f64()),
                pct(direct.p99.as_secs_f64(), through.p99.as_secs_f64()),
                pct(through.rps, direct.rps),
            );
        }
    }
    println!("groups the sandbox created: {}", sim.groups().len());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    sim.shutdown().await.unwrap();
}
