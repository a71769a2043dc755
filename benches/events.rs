//! Events through the pipeline to a webhook receiver on loopback: device events handed to the
//! gateway's event sink, written to the sled outbox (one fsync per batch), signed and POSTed to
//! an axum receiver. Two runs:
//! 1. Burst: `--events` events over `--devices` devices (one delivery lane each) as fast as
//!    they can be emitted; events/s from the first emit to the last arrival, and the latency of
//!    each event from its emit to its arrival (queueing included), p50/p99.
//! 2. One at a time: emit, wait for the arrival, repeat; the latency of an event alone.
//!
//! Run: `cargo bench --bench events [-- --events 5000 --devices 8 --single 300]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use tokio::sync::mpsc;
use wuts::client::api::{DeviceEvent, DeviceId, Devices, Reason};
use wuts::client::{ClientConfig, Registry};
use wuts::events::EventSink;
use wuts::events::webhook::WebhookConfig;
use wuts::events::{EventName, WebhookSettings};
use wuts::http::{AppState, GatewayConfig, hash_token};
use wuts_store::SledStore;
use wuts_store::gateway::outbox::WebhookScope;
use wuts_store::gateway::{
    GatewayDevice, GatewayDeviceId, GatewayStore, Tenant, TenantId, TokenHash, User, UserId,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// The receiver: the `message` of each delivered event (`n<index>`), as it arrives.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(usize, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    async fn hook(
        State(tx): State<mpsc::UnboundedSender<(usize, Instant)>>,
        body: Bytes,
    ) -> &'static str {
        let at = Instant::now();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let n = json["data"]["message"].as_str().unwrap()[1..]
            .parse()
            .unwrap();
        let _ = tx.send((n, at));
        "ok"
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(tx);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn event(n: usize) -> DeviceEvent {
    DeviceEvent::Disconnected {
        reason: Reason {
            code: "connection_lost",
            message: format!("n{n}"),
        },
    }
}

#[tokio::main]
async fn main() {
    let smoke = mode::smoke("events");
    let total = if smoke { 50 } else { arg("--events", 5000) };
    let lanes = arg("--devices", 8).max(1);
    let single = if smoke { 10 } else { arg("--single", 300) };

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let gateway: Arc<dyn GatewayStore> = store.clone();
    let devices: Arc<dyn Devices> = Arc::new(Registry::new(store.clone(), ClientConfig::default()));
    let (url, mut arrivals) = receiver().await;

    let tenant = TenantId::new("t").unwrap();
    gateway
        .create_tenant(&Tenant {
            id: tenant.clone(),
            name: "T".into(),
            created_at: 0,
        })
        .unwrap();
    let user = UserId::new("u").unwrap();
    gateway
        .create_user(&User {
            id: user.clone(),
            tenant,
            name: "U".into(),
            device: DeviceId::new(1),
            token_hash: TokenHash::from_bytes([1; 32]),
            created_at: 0,
        })
        .unwrap();
    let config = WebhookConfig {
        id: "wh_bench".into(),
        webhook_url: url,
        enabled_events: vec![EventName::DeviceDisconnected],
        enabled: true,
        retry_attempts: 3,
        timeout: 10,
        secret: wuts::events::webhook::generate_secret([7; 32]),
        headers: Default::default(),
        created_at: 0,
        updated_at: 0,
    };
    for lane in 1..=lanes as u64 {
        gateway
            .add_gateway_device(&GatewayDevice {
                id: GatewayDeviceId::new(format!("d{lane}")).unwrap(),
                user: user.clone(),
                name: format!("d{lane}"),
                device: DeviceId::new(lane),
                created_at: lane,
            })
            .unwrap();
        gateway
            .outbox()
            .save_webhook(
                &user,
                WebhookScope::Device(DeviceId::new(lane)),
                Some(&config.encode()),
            )
            .unwrap();
    }
    let settings = GatewayConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            ..WebhookSettings::default()
        },
        ..GatewayConfig::default()
    };
    let state = AppState::new(devices, gateway, settings, hash_token("admin"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wuts::http::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    let hub = state.events.clone();

    // 1. Burst.
    let emitted = Arc::new(Mutex::new(HashMap::new()));
    let started = Instant::now();
    for n in 0..total {
        emitted.lock().unwrap().insert(n, Instant::now());
        hub.device_event(DeviceId::new((n % lanes) as u64 + 1), &event(n));
    }
    let mut latencies = Vec::with_capacity(total);
    while latencies.len() < total {
        let (n, at) = arrivals.recv().await.unwrap();
        latencies.push(at - emitted.lock().unwrap()[&n]);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "burst: {total} events over {lanes} devices in {:.2} s = {:.0} events/s; emit-to-arrival p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );

    // 2. One at a time.
    let mut alone = Vec::with_capacity(single);
    for i in 0..single {
        let n = total + i;
        let at = Instant::now();
        hub.device_event(DeviceId::new(1), &event(n));
        let (got, arrived) = arrivals.recv().await.unwrap();
        assert_eq!(got, n);
        alone.push(arrived - at);
    }
    alone.sort();
    println!(
        "one at a time: {single} events; emit-to-arrival p50 {:.2} ms, p99 {:.2} ms",
        percentile(&alone, 0.5).as_secs_f64() * 1e3,
        percentile(&alone, 0.99).as_secs_f64() * 1e3,
    );
    let _ = stop.send(());
    let _ = server.await;
}
