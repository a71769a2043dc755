//! `Idempotency-Key` on `POST /groups`, and what survives a restart (sled store).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::sync::Arc;
use std::time::Duration;

use gateway_support::{FakeDevices, WAIT, start_default, start_with, status_json};
use serde_json::json;
use wuts::client::api::Error;
use wuts::http::GatewayConfig;
use wuts_store::SledStore;
use wuts_store::gateway::GatewayStore;

#[tokio::test]
async fn a_retry_with_the_same_key_replays_and_creates_nothing() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let body = json!({"name": "Once", "participants": ["5511999990001"]});
    let first = gw
        .groups(&user.token)
        .header("Idempotency-Key", "order-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.bytes().await.unwrap();

    // Same meaning, different spelling: still the same request.
    let respelled = json!({"participants": ["+55 11 99999-0001"], "name": "Once"});
    let second = gw
        .groups(&user.token)
        .header("Idempotency-Key", "order-42")
        .json(&respelled)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.bytes().await.unwrap(), first);
    assert_eq!(gw.devices.group_calls().len(), 1, "no second group");

    let (status, body) = status_json(
        gw.groups(&user.token)
            .header("Idempotency-Key", "order-42")
            .json(&json!({"name": "Other"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error_code"], "IDEMPOTENCY_KEY_REUSED");

    let other_key = gw
        .groups(&user.token)
        .header("Idempotency-Key", "order-43")
        .json(&json!({"name": "Once", "participants": ["5511999990001"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_key.status(), 201);
    assert_eq!(gw.devices.group_calls().len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn keys_belong_to_one_user() {
    let gw = start_default().await;
    let a = gw.connected_user().await;
    let b = gw.connected_user().await;
    for user in [&a, &b] {
        let response = gw
            .groups(&user.token)
            .header("Idempotency-Key", "shared")
            .json(&json!({"name": "Mine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(response.headers().get("idempotent-replayed").is_none());
    }
    let devices: Vec<_> = gw
        .devices
        .group_calls()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(devices, [a.device, b.device]);
    gw.stop().await;
}

#[tokio::test]
async fn a_concurrent_retry_waits_for_the_first_attempt() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    gw.devices.hold_groups();
    let send = || {
        gw.groups(&user.token)
            .header("Idempotency-Key", "slow")
            .json(&json!({"name": "Slow"}))
            .send()
    };
    // The first reaches the device and is held there; the second waits on the key; only then
    // does the device answer.
    let first = tokio::spawn(send());
    gw.devices.group_call_arrived().await;
    let second = tokio::spawn(send());
    tokio::time::timeout(WAIT, async {
        while gw.state.requests_on_idempotency_keys() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the retry waits on the key");
    gw.devices.release_groups();
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (201, 201)
    );
    let replayed = [&first, &second]
        .iter()
        .filter(|r| r.headers().get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 1);
    assert_eq!(first.bytes().await.unwrap(), second.bytes().await.unwrap());
    assert_eq!(gw.devices.group_calls().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn failures_are_not_stored_so_a_retry_runs_again() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    gw.devices.push_group_result(Err(Error::NotConnected));
    let send = || {
        gw.groups(&user.token)
            .header("Idempotency-Key", "retry-me")
            .json(&json!({"name": "Later"}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 503);
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), 201);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    assert_eq!(gw.devices.group_calls().len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn expired_records_are_not_replayed() {
    let config = GatewayConfig {
        idempotency_ttl: Duration::ZERO,
        ..GatewayConfig::default()
    };
    let gw = gateway_support::start(config).await;
    let user = gw.connected_user().await;
    for _ in 0..2 {
        let response = gw
            .groups(&user.token)
            .header("Idempotency-Key", "short-lived")
            .json(&json!({"name": "Again"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    assert_eq!(gw.devices.group_calls().len(), 2);
    gw.stop().await;
}

/// Users, tokens and idempotency records survive a restart on the same data directory; the
/// registry (here the same fake, standing in for one that restores paired devices) keeps the
/// device, so a group can be created again without pairing.
#[tokio::test]
async fn restart_keeps_users_tokens_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let devices = FakeDevices::new();
    let store: Arc<dyn GatewayStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let gw = start_with(devices.clone(), store, GatewayConfig::default()).await;
    let user = gw.connected_user().await;
    let first = gw
        .groups(&user.token)
        .header("Idempotency-Key", "before-restart")
        .json(&json!({"name": "Before"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first = first.bytes().await.unwrap();
    let state = gw.state.clone();
    gw.stop().await;
    drop(state); // the last handle on the store: sled closes, the directory lock is released

    let store: Arc<dyn GatewayStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let gw = start_with(devices.clone(), store, GatewayConfig::default()).await;
    let replay = gw
        .groups(&user.token)
        .header("Idempotency-Key", "before-restart")
        .json(&json!({"name": "Before"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.bytes().await.unwrap(), first);
    let again = gw
        .groups(&user.token)
        .json(&json!({"name": "After"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(devices.group_calls().len(), 2);
    gw.stop().await;
}
