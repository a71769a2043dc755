//! `wuts serve --database-url`: one node on PostgreSQL (N = 1) is the whole gateway. Pair a
//! device, create a group with an `Idempotency-Key`, stop the node and start it again (a new
//! incarnation): the device logs in again without a QR, the key replays the stored answer,
//! and users, tokens, keys and pairings live in PostgreSQL (no sled store is opened). A second
//! process under a node id that a live process holds refuses to start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;

#[path = "cluster_support/serve.rs"]
mod serve;

use std::process::Stdio;

use serde_json::json;
use serve::{call, command, pair, sigterm, user};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

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
    let (mut node, base) = serve::serve(command(&data, Some((&db, "n1"))));

    // A second process under the same node id, while the first is live: refused at once.
    let twin = command(&data, Some((&db, "n1")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!twin.status.success());
    let said = String::from_utf8_lossy(&twin.stderr);
    assert!(said.contains("n1"), "the refusal names the node id: {said}");

    let (user_id, token) = user(&http, &base).await;
    pair(&http, &base, &user_id, "5511999990901").await;

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

    // A node stopping alone keeps its devices for a restart in place; the next incarnation
    // takes them back at once, under a new epoch.
    sigterm(&mut node);
    let (state,): (String,) = sqlx::query_as("SELECT state FROM wuts_node")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        state, "restarting",
        "a node stopping alone waits for its restart"
    );
    let (mut node, base) = serve::serve(command(&data, Some((&db, "n1"))));
    serve::state_becomes(&http, &base, &user_id, "connected").await;
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
