//! `wuts serve` as a child process, for the cluster tests: start, call, pair, stop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN: &str = "cluster-admin-token";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wuts serve --sandbox` on `data`, in cluster mode when `cluster` names a database and a
/// node id.
pub fn command(data: &Path, cluster: Option<(&str, &str)>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wuts"));
    c.args([
        "serve",
        "--sandbox",
        "--listen",
        "127.0.0.1:0",
        "--webhook-allow-private",
    ])
    .arg("--data")
    .arg(data)
    .env("WUTS_ADMIN_TOKEN", ADMIN)
    .env_remove("WUTS_CONFIG");
    if let Some((db, node)) = cluster {
        c.args(["--database-url", db, "--node-id", node, "--rpc-listen"])
            .arg(format!("127.0.0.1:{}", free_port()));
    }
    c
}

/// Starts `command` and returns the child with its base URL.
#[allow(clippy::zombie_processes)] // a child that exits before listening has ended already
pub fn serve(mut command: Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            return (child, url.to_owned());
        }
    }
    panic!("wuts serve exited before listening");
}

pub async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn state_becomes(http: &reqwest::Client, base: &str, user: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = call(
            http.get(format!("{base}/admin/users/{user}"))
                .bearer_auth(ADMIN),
        )
        .await;
        if body["state"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "never {want}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tenant and a user; returns the user's id and token.
pub async fn user(http: &reqwest::Client, base: &str) -> (String, String) {
    let (_, tenant) = call(
        http.post(format!("{base}/admin/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "T"})),
    )
    .await;
    let (status, user) = call(
        http.post(format!("{base}/admin/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"tenant_id": tenant["id"], "name": "Ana"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    (
        user["id"].as_str().unwrap().to_owned(),
        user["token"].as_str().unwrap().to_owned(),
    )
}

/// Pairs the user's device with the in-process sandbox's phone and waits until connected.
pub async fn pair(http: &reqwest::Client, base: &str, user: &str, phone: &str) {
    let (status, body) = call(
        http.post(format!("{base}/admin/users/{user}/pair"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    let qr = loop {
        let (status, body) = call(
            http.get(format!("{base}/admin/users/{user}/qr"))
                .bearer_auth(ADMIN),
        )
        .await;
        if status == 200 {
            break body["code"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, sandbox) = call(http.get(format!("{base}/admin/sandbox")).bearer_auth(ADMIN)).await;
    let control = sandbox["control_url"].as_str().unwrap().to_owned();
    let (status, scanned) = call(
        http.post(format!("{control}/scan"))
            .json(&json!({"qr": qr, "phone": phone})),
    )
    .await;
    assert!(status < 300, "{status} {scanned}");
    state_becomes(http, base, user, "connected").await;
}

/// SIGTERM, and a clean exit.
pub fn sigterm(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "stops cleanly on SIGTERM");
}
