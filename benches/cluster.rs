//! Cluster mode's costs, on loopback with a throw-away PostgreSQL (fsync off, as the tests run
//! it; a production server with fsync on adds its commit flush):
//! 1. A durable device-store write: `set_meta` then `flush` on sled, against a fenced
//!    `set_meta` on PostgreSQL (one transaction: `FOR SHARE` on the owner row, the upsert).
//! 2. The forwarding hop a non-owner adds to a request: finding the owner (`locate`, one
//!    query) and the signed exchange with it (connect, HMAC, the owner's signature check, a
//!    small JSON answer), against the same exchange unsigned.
//!
//! Run: `cargo bench --bench cluster [-- --writes 2000 --forwards 2000]`. Without PostgreSQL
//! it says SKIPPED and measures nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;
#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::post;
use wuts::cluster::forward::{ClusterSecret, ForwardMeta};
use wuts::node::forward::{Outgoing, check_forwarded, forward, unix_ms};
use wuts_store::pg::{self, Bridge, DEFAULT_CALL_TIMEOUT, Fences, Incarnation, NodeId, PgStore};
use wuts_store::{Devices, MetaKey, SledStore, Store};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn keys() -> wuts_store::DeviceKeys {
    let mut rng = rand::rngs::OsRng;
    wuts::engine::keys::generate(&mut rng)
}

fn summary(name: &str, mut took: Vec<Duration>) -> Duration {
    took.sort();
    let at = |q: f64| took[((took.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name:<44} p50 {:>8.1} µs   p99 {:>8.1} µs   ({} runs)",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        took.len()
    );
    at(0.5)
}

fn writes(store: &dyn Store, flush: bool, n: usize) -> Vec<Duration> {
    let device = store.create_device(&keys()).unwrap();
    let key = MetaKey::new("bench").unwrap();
    (0..n)
        .map(|i| {
            let t = Instant::now();
            store.set_meta(device, &key, &i.to_be_bytes()).unwrap();
            if flush {
                store.flush().unwrap();
            }
            t.elapsed()
        })
        .collect()
}

async fn owner(
    secret: Arc<ClusterSecret>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if headers.contains_key(wuts::cluster::forward::SIGNATURE_HEADER) {
        check_forwarded(&secret, &method, &path, &headers, &body, unix_ms())
            .expect("a valid forward");
    }
    r#"{"success":true}"#
}

fn main() {
    let smoke = mode::smoke("cluster");
    let writes_n = if smoke { 10 } else { arg("--writes", 2000) };
    let forwards_n = if smoke { 10 } else { arg("--forwards", 2000) };
    let Some(pg) = pg_support::TempPostgres::start("cluster bench") else {
        return;
    };
    let url = pg.database("bench");

    println!("== durable device-store writes");
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path()).unwrap();
    let sled_p50 = summary("sled: set_meta + flush", writes(&sled, true, writes_n));
    let bridge = Arc::new(Bridge::connect(&url, 4, DEFAULT_CALL_TIMEOUT).unwrap());
    let pg_store = PgStore::new(
        bridge,
        NodeId::new("bench").unwrap(),
        Incarnation(uuid::Uuid::new_v4()),
        Arc::new(Fences::default()),
    );
    let pg_p50 = summary(
        "PostgreSQL: fenced set_meta (commit)",
        writes(&pg_store, false, writes_n),
    );
    println!(
        "PostgreSQL / sled at p50: {:.2}x",
        pg_p50.as_secs_f64() / sled_p50.as_secs_f64()
    );

    println!("== the forwarding hop");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secret = Arc::new(ClusterSecret::new(vec![7; 32]).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = secret.clone();
        let app = axum::Router::new().route(
            "/groups",
            post(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| owner(s.clone(), m, u, h, b)),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let device = pg_store.list_devices().unwrap()[0].as_ref().unwrap().id;
        let mut locate = Vec::with_capacity(forwards_n);
        for _ in 0..forwards_n {
            let t = Instant::now();
            pg::locate(&mut conn, device).await.unwrap();
            locate.push(t.elapsed());
        }
        let locate_p50 = summary("locate the owner (one query)", locate);
        let request = Outgoing {
            method: Method::POST,
            path: "/groups".to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"name":"bench","participants":["5511988887777"]}"#),
        };
        let exchange = |signed: bool| {
            let (secret, request) = (secret.clone(), request.clone());
            async move {
                let mut took = Vec::with_capacity(forwards_n);
                for _ in 0..forwards_n {
                    let meta = ForwardMeta {
                        device: device.get(),
                        epoch: 1,
                        deadline_ms: unix_ms() + 5_000,
                        hops: 1,
                    };
                    let t = Instant::now();
                    if signed {
                        forward(&secret, addr, &request, &meta).await.unwrap();
                    } else {
                        let client = reqwest::Client::builder()
                            .pool_max_idle_per_host(0)
                            .build()
                            .unwrap();
                        client
                            .post(format!("http://{addr}/groups"))
                            .body(request.body.clone())
                            .send()
                            .await
                            .unwrap()
                            .bytes()
                            .await
                            .unwrap();
                    }
                    took.push(t.elapsed());
                }
                took
            }
        };
        let plain = summary(
            "HTTP exchange, fresh connection (no hop)",
            exchange(false).await,
        );
        let signed = summary("signed forward exchange", exchange(true).await);
        let _ = plain;
        println!(
            "forwarding overhead per request at p50 (locate + signed exchange): {:.0} µs",
            (locate_p50 + signed).as_secs_f64() * 1e6
        );
    });
}
