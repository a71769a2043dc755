//! kill -9 between an event and its delivery: the real `wuts serve --sandbox` binary pairs a
//! device (a `qr.generated` event) while its webhook receiver is down; once the delivery has
//! failed the process is killed with SIGKILL, the receiver comes up, and after a restart on the
//! same data directory the event arrives, with the same id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod webhook_receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use webhook_receiver::{Receiver, WAIT, free_port, verify_standard};

const ADMIN: &str = "kill-test-admin-token";

/// `wuts serve` on a data directory; returns the child and its base URL (the caller kills and
/// waits for it; a child that exits early has ended already).
#[allow(clippy::zombie_processes)]
fn serve(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args([
            "serve",
            "--sandbox",
            "--listen",
            "127.0.0.1:0",
            "--webhook-allow-private",
        ])
        .args(["--webhook-retry-base-ms", "50", "--data"])
        .arg(data)
        .env("WUTS_ADMIN_TOKEN", ADMIN)
        .env_remove("WUTS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wuts serve starts");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if let Some(url) = line.strip_prefix("listening on ") {
            return (child, url.to_owned());
        }
    }
    panic!("wuts serve exited before listening");
}

async fn send(http: &reqwest::Client, req: reqwest::RequestBuilder) -> (u16, Value) {
    let _ = http;
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_event_survives_sigkill_before_its_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let (mut first, base) = serve(&data);

    let (status, tenant) = send(
        &http,
        http.post(format!("{base}/admin/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "T"})),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let (status, user) = send(
        &http,
        http.post(format!("{base}/admin/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"tenant_id": tenant["id"], "name": "Ana"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (user_id, token) = (
        user["id"].as_str().unwrap().to_owned(),
        user["token"].as_str().unwrap().to_owned(),
    );

    let port = free_port();
    let (status, hook) = send(
        &http,
        http.post(format!("{base}/webhook"))
            .bearer_auth(&token)
            .json(&json!({
                "webhook_url": format!("http://127.0.0.1:{port}/hook"),
                "enabled_events": ["qr.generated"],
                "retry_attempts": 20,
            })),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    let secret = hook["webhook"]["secret"].as_str().unwrap().to_owned();

    let (status, body) = send(
        &http,
        http.post(format!("{base}/admin/users/{user_id}/pair"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(status < 300, "{status} {body}");

    // Wait until the first QR's delivery has failed at least once: it is in the outbox.
    let deadline = tokio::time::Instant::now() + WAIT;
    let id = loop {
        let (_, log) = send(
            &http,
            http.get(format!("{base}/webhook/deliveries"))
                .bearer_auth(&token),
        )
        .await;
        let failed = log["deliveries"].as_array().and_then(|d| {
            d.iter()
                .rev()
                .find(|d| d["attempts"].as_u64() >= Some(1))
                .cloned()
        });
        if let Some(record) = failed {
            break record["id"].as_str().unwrap().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    first.kill().expect("SIGKILL");
    first.wait().unwrap();

    let mut receiver = Receiver::start_on(port).await;
    let (mut second, _) = serve(&data);
    // Every QR owed arrives, in order; the one seen failing before the kill is among them.
    let mut ids = Vec::new();
    while !ids.contains(&id) {
        let got = receiver.next_accepted().await;
        verify_standard(&secret, &got).unwrap();
        assert_eq!(got.json()["event"], "qr.generated");
        ids.push(got.header("webhook-id").to_owned());
    }
    second.kill().unwrap();
    second.wait().unwrap();
}
