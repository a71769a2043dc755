//! `wuts serve --database-url`: one node on PostgreSQL (N = 1) is the whole gateway. Pair a
//! device, create a group with an `Idempotency-Key`, stop the node and start it again (a new
//! incarnation): the device logs in again without a QR, the key replays the stored answer,
//! and users, tokens, keys and pairings live in PostgreSQL (no sled store is opened). A second
//! process under a node id that a live process holds refuses to start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

const ADMIN: &str = "cluster-admin-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn command(data: &Path, db: &str, node: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wuts"));
    c.args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--database-url", db, "--node-id", node, "--rpc-listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("WUTS_ADMIN_TOKEN", ADMIN)
        .env_remove("WUTS_CONFIG");
    c
}

/// Starts a node and returns it with its base URL.
#[allow(clippy::zombie_processes)]
fn serve(data: &Path, db: &str, node: &str) -> (Child, String) {
    let mut child = command(data, db, node)
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

async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn state_becomes(http: &reqwest::Client, base: &str, user: &str, want: &str) {
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

fn sigterm(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.wait().unwrap().success(),
        "a node stops cleanly on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_on_postgresql_pairs_creates_restarts_and_replays() {
    let Some(pg) = pg_support::TempPostgres::start(
        "one_node_on_postgresql_pairs_creates_restarts_and_replays",
    ) else {
        return;
    };
    let db = pg.database("serve_one");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let (mut node, base) = serve(&data, &db, "n1");

    // A second process under the same node id, while the first is live: refused at once.
    let twin = command(&data, &db, "n1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!twin.status.success());
    let said = String::from_utf8_lossy(&twin.stderr);
    assert!(said.contains("n1"), "the refusal names the node id: {said}");

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
    let user_id = user["id"].as_str().unwrap().to_owned();
    let token = user["token"].as_str().unwrap().to_owned();

    let (status, body) = call(
        http.post(format!("{base}/admin/users/{user_id}/pair"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    let qr = loop {
        let (status, body) = call(
            http.get(format!("{base}/admin/users/{user_id}/qr"))
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
            .json(&json!({"qr": qr, "phone": "5511999990901"})),
    )
    .await;
    assert!(status < 300, "{status} {scanned}");
    state_becomes(&http, &base, &user_id, "connected").await;

    let create = |key: &'static str| {
        http.post(format!("{base}/groups"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Cluster one", "participants": ["5511988887777"]}))
    };
    let (status, created) = call(create("k-1")).await;
    assert_eq!(status, 201, "{created}");

    // Everything lives in PostgreSQL; no sled store was opened under --data.
    let mut conn = PgConnection::connect(&db).await.unwrap();
    let count = |table: &'static str| format!("SELECT count(*) FROM {table}");
    for (table, want) in [
        ("wuts_user", 1),
        ("wuts_idempotency", 1),
        ("wuts_device_owner", 1),
    ] {
        let (n,): (i64,) = sqlx::query_as(&count(table))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, want, "{table}");
    }
    let (paired,): (i64,) = sqlx::query_as("SELECT count(*) FROM wuts_kv WHERE tree = 2")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(paired, 1, "the pairing is stored in PostgreSQL");
    assert!(!data.join("sled").exists(), "no sled store in cluster mode");

    // A clean stop leaves the cluster; the next incarnation claims the device at once.
    sigterm(&mut node);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM wuts_node")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0, "a stopped node leaves");
    let (mut node, base) = serve(&data, &db, "n1");
    state_becomes(&http, &base, &user_id, "connected").await;
    let (epoch,): (i64,) = sqlx::query_as("SELECT epoch FROM wuts_device_owner")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        epoch, 2,
        "the new incarnation claimed the device (epoch bumped)"
    );

    let create = |key: &'static str| {
        http.post(format!("{base}/groups"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Cluster one", "participants": ["5511988887777"]}))
    };
    let (status, replayed) = call(create("k-1")).await;
    assert_eq!(status, 201, "{replayed}");
    assert_eq!(
        replayed, created,
        "the key replays the stored answer across restarts"
    );
    let (status, ready) = call(http.get(format!("{base}/readyz"))).await;
    assert_eq!(status, 200, "a node holding its lease is ready: {ready}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("wuts_cluster_serving 1"), "{metrics}");
    assert!(
        metrics.contains("wuts_cluster_self_fences_total 0"),
        "{metrics}"
    );
    let (status, again) = call(create("k-2")).await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["group"]["jid"], created["group"]["jid"]);
    sigterm(&mut node);
}
