//! Devices at scale: memory per connected idle device and the connect storm after a restart,
//! against a `wuts sim` in its own process (so only the engine's memory is counted here).
//!
//! Run: `cargo bench --bench devices` (1,000 devices) or
//! `WUTS_BENCH_DEVICES=10000 cargo bench --bench devices`. Prints its figures; no criterion
//! (one storm is one measurement, and the interesting number is the total time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;
#[path = "support/pairing.rs"]
mod pairing;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pairing::{client_config, pair_many};
use wuts::client::Registry;
use wuts::client::api::DeviceState;
use wuts::noise::PublicKey;
use wuts_store::{SledStore, Store};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("WUTS_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("WUTS_BENCH_RESTORE_DIR") {
        // Second phase, in a fresh process so nothing from pairing is on the heap. It gets no
        // arguments: the first phase hands it its `n`, smoke or not.
        Ok(dir) => rt.block_on(restore(n, dir.into())),
        Err(_) => rt.block_on(run(if mode::smoke("devices") { 5 } else { n })),
    }
}

async fn restore(n: usize, dir: std::path::PathBuf) {
    let ws_url = std::env::var("WUTS_BENCH_WS_URL").unwrap();
    let root = std::env::var("WUTS_BENCH_ROOT").unwrap();
    let root = PublicKey::from_slice(&wuts::binary::json::decode_hex(&root).unwrap()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
    let base = rss_kib();
    let reg = Registry::new(store, client_config(ws_url, root));
    let start = Instant::now();
    assert_eq!(reg.restore().unwrap(), n);
    loop {
        let up = reg
            .ids()
            .into_iter()
            .filter(|id| {
                reg.client(*id)
                    .is_ok_and(|c| c.status().state == DeviceState::Connected)
            })
            .count();
        if up == n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "only {up} of {n} connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let storm = start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib();
    println!(
        "connect storm: {n} devices connected in {:.2} s",
        storm.as_secs_f64()
    );
    println!(
        "memory: {} KiB RSS for {n} connected idle devices (store open: {base} KiB before), \
         {:.1} KiB per device",
        rss.saturating_sub(base),
        rss.saturating_sub(base) as f64 / n as f64
    );
    reg.shutdown_all().await;
}

async fn run(n: usize) {
    let mut sim = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(["sim", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wuts sim starts");
    let mut line = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let ws_url = info["ws_url"].as_str().unwrap().to_owned();
    let control = info["control_url"].as_str().unwrap().to_owned();
    let root = wuts::binary::json::decode_hex(info["root_public_key"].as_str().unwrap()).unwrap();
    let root = PublicKey::from_slice(&root).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let config = client_config(ws_url.clone(), root);
    let _http = reqwest::Client::new();

    let reg = Registry::new(store.clone(), config.clone());
    let start = Instant::now();
    pair_many(&reg, &control, n, "55").await;
    println!(
        "paired {n} devices in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    reg.shutdown_all().await;
    drop(reg);
    drop(store);

    // Restart in a fresh process over the same data directory.
    let status = Command::new(std::env::current_exe().unwrap())
        .env("WUTS_BENCH_RESTORE_DIR", dir.path())
        .env("WUTS_BENCH_DEVICES", n.to_string())
        .env("WUTS_BENCH_WS_URL", &ws_url)
        .env("WUTS_BENCH_ROOT", info["root_public_key"].as_str().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = sim.kill();
    let _ = sim.wait();
}
