//! `wuts store migrate`: a sled deployment moves into an empty cluster database, offline,
//! losing nothing. After the move a node on PostgreSQL logs the device in without a QR, the
//! user's token works, an `Idempotency-Key` replays its stored answer, the webhook and the
//! events are there with their numbers; migrating into a database that holds data is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;
#[path = "cluster_support/serve.rs"]
mod serve;

use std::process::Command;

use serde_json::json;
use serve::{ADMIN, call, command, pair, sigterm, state_becomes, user};

fn migrate(from: &std::path::Path, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(["store", "migrate", "--from"])
        .arg(from)
        .args(["--to", to])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_deployment_moves_into_postgresql_losing_nothing() {
    let Some(pg) =
        pg_support::TempPostgres::start("a_sled_deployment_moves_into_postgresql_losing_nothing")
    else {
        return;
    };
    let db = pg.database("migrated");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();

    // One process on sled: a paired device, a keyed group create, a webhook, events.
    let (mut gateway, base) = serve::serve(command(&data, None));
    let (id, token) = user(&http, &base).await;
    let hook_url = format!("http://127.0.0.1:{}/hook", serve::free_port());
    let (status, hook) = call(
        http.post(format!("{base}/webhook"))
            .bearer_auth(&token)
            .json(&json!({
                // Loopback, and nothing listens: deliveries stay owed across the move.
                "webhook_url": hook_url,
                "enabled_events": ["qr.generated", "pair.success", "device.connected"],
            })),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    pair(&http, &base, &id, "5511999990903").await;
    let create = |base: &str, key: &str| {
        http.post(format!("{base}/groups"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Before the move", "participants": ["5511988887777"]}))
    };
    let (status, created) = call(create(&base, "k-1")).await;
    assert_eq!(status, 201, "{created}");
    let (_, events_before) = call(
        http.get(format!("{base}/webhook/deliveries"))
            .bearer_auth(&token),
    )
    .await;
    sigterm(&mut gateway);

    let out = migrate(&data, &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("migrated 1 devices"), "{said}");

    // The same data directory (for the sandbox's own state) as a cluster node.
    let (mut node, base) = serve::serve(command(&data, Some((&db, "n1"))));
    state_becomes(&http, &base, &id, "connected").await;
    let (status, replayed) = call(create(&base, "k-1")).await;
    assert_eq!(
        (status, &replayed),
        (201, &created),
        "the key replays after the move"
    );
    let (status, shown) = call(http.get(format!("{base}/webhook")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["webhook"]["webhook_url"], hook_url.as_str());
    let (_, events_after) = call(
        http.get(format!("{base}/webhook/deliveries"))
            .bearer_auth(&token),
    )
    .await;
    let ids = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["deliveries"]
            .as_array()
            .map(|d| d.iter().map(|e| e["id"].clone()).collect())
            .unwrap_or_default()
    };
    assert!(!ids(&events_before).is_empty(), "{events_before}");
    for id in ids(&events_before) {
        assert!(
            ids(&events_after).contains(&id),
            "{id} kept: {events_after}"
        );
    }
    let (status, _) = call(http.get(format!("{base}/admin/users")).bearer_auth(ADMIN)).await;
    assert_eq!(status, 200);
    sigterm(&mut node);

    // A database that holds a deployment already is never merged into.
    let again = migrate(&data, &db);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
