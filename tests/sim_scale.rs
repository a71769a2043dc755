//! Many devices at once: pairs and logs in `SIM_SCALE_DEVICES` devices (default 10,000) against
//! `wuts sim` in a child process (each process gets its own file-descriptor limit), keeps them
//! all connected, and reports the server's memory. Ignored by default; run it with
//! `cargo test --release --test sim_scale -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use sim_support::*;
use tokio::sync::Semaphore;
use wuts::noise::PublicKey;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "slow: run with --release -- --ignored"]
async fn ten_thousand_connected_devices() {
    let n: usize = std::env::var("SIM_SCALE_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let ws = info["ws_url"].as_str().unwrap().to_owned();
    let control = info["control_url"].as_str().unwrap().to_owned();
    let hex = info["root_public_key"].as_str().unwrap();
    let root_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let root = PublicKey::from_slice(&root_bytes).unwrap();
    let idle_rss = rss_kib(child.id());

    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let http = reqwest::Client::new();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (ws, control, http, gate) = (ws.clone(), control.clone(), http.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let phone = format!("{}", 5_500_000_000_000_u64 + i as u64);
            let c = Companion::new();
            let (mut reg, refs) = register_at(&ws, root, &c).await;
            let scan = http
                .post(format!("{control}/scan"))
                .json(&serde_json::json!({"qr": c.qr(&refs[0]), "phone": phone}))
                .send();
            let (resp, ()) = tokio::join!(scan, async {
                let success = reg.recv().await;
                reg.send(&c.answer_pair_success(&success)).await;
                reg.until_end().await;
            });
            let paired: serde_json::Value = resp.unwrap().json().await.unwrap();
            let jid = paired["jid"].as_str().unwrap().to_owned();
            let (client, success) = login_at(&ws, root, &c, &jid).await;
            assert_eq!(success.tag, "success");
            drop(permit);
            client
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let devices: serde_json::Value = reqwest::get(format!("{control}/devices"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connected = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["connected"] == serde_json::json!(true))
        .count();
    let rss = rss_kib(child.id());
    println!(
        "{n} devices paired and logged in in {elapsed:?}; {connected} connected; server RSS \
         {idle_rss} KiB idle, {rss} KiB loaded ({} bytes per device)",
        (rss.saturating_sub(idle_rss) * 1024) / n as u64
    );
    assert_eq!(connected, n);
    // Every connection still answers.
    let mut last = clients.pop().unwrap();
    let ping = last.iq("w:p", "get", vec![]);
    assert_eq!(
        attr(&last.request(ping).await, "type").as_deref(),
        Some("result")
    );
    let _ = child.kill();
    let _ = child.wait();
}
