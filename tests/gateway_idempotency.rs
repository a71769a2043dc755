//! `Idempotency-Key` on `POST /groups`, and what survives a restart (sled store).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_support::{FakeDevices, WAIT, start_default, start_with, status_json};
use serde_json::json;
use wuts::client::api::Error;
use wuts::http::GatewayConfig;
use wuts_store::gateway::{
    GatewayDevice, GatewayDeviceId, GatewayStore, IdempotencyKey, MemGatewayStore, Outcome,
    StoredResponse, Tenant, TenantId, TokenHash, User, UserId,
};
use wuts_store::{Error as StoreError, SledStore};

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

/// The real in-memory store, with a log of the writes and flushes the gateway makes.
struct Logged {
    inner: MemGatewayStore,
    log: Mutex<Vec<&'static str>>,
}

impl Logged {
    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }
}

impl GatewayStore for Logged {
    fn admin_token(&self) -> Result<Option<TokenHash>, StoreError> {
        self.inner.admin_token()
    }
    fn set_admin_token(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.inner.set_admin_token(hash)
    }
    fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.inner.create_tenant(tenant)
    }
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant(id)
    }
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.tenants()
    }
    fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.inner.create_user(user)
    }
    fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.inner.user(id)
    }
    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.inner.users()
    }
    fn user_by_token(&self, hash: &TokenHash) -> Result<Option<User>, StoreError> {
        self.inner.user_by_token(hash)
    }
    fn set_user_token(&self, id: &UserId, hash: &TokenHash) -> Result<User, StoreError> {
        self.inner.set_user_token(id, hash)
    }
    fn remove_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.inner.remove_user(id)
    }
    fn add_gateway_device(&self, device: &GatewayDevice) -> Result<(), StoreError> {
        self.inner.add_gateway_device(device)
    }
    fn gateway_devices(&self, user: &UserId) -> Result<Vec<GatewayDevice>, StoreError> {
        self.inner.gateway_devices(user)
    }
    fn remove_gateway_device(
        &self,
        user: &UserId,
        id: &GatewayDeviceId,
    ) -> Result<Option<GatewayDevice>, StoreError> {
        self.inner.remove_gateway_device(user, id)
    }
    fn stored_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.stored_response(user, key)
    }
    fn save_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let what = match response.outcome {
            Outcome::Pending => "save pending",
            Outcome::Completed { .. } => "save response",
        };
        self.log.lock().unwrap().push(what);
        self.inner.save_response(user, key, response)
    }
    fn count_responses(&self, user: &UserId) -> Result<usize, StoreError> {
        self.inner.count_responses(user)
    }
    fn remove_response(&self, user: &UserId, key: &IdempotencyKey) -> Result<bool, StoreError> {
        self.log.lock().unwrap().push("remove");
        self.inner.remove_response(user, key)
    }
    fn sweep_responses(&self, created_before: u64) -> Result<usize, StoreError> {
        self.inner.sweep_responses(created_before)
    }
    fn flush_gateway(&self) -> Result<(), StoreError> {
        self.log.lock().unwrap().push("flush");
        self.inner.flush_gateway()
    }
    fn outbox(&self) -> &dyn wuts_store::gateway::outbox::EventStore {
        self.inner.outbox()
    }
}

#[tokio::test]
async fn a_keyed_request_is_durable_before_whatsapp_and_before_the_answer() {
    let store = Arc::new(Logged {
        inner: MemGatewayStore::new(),
        log: Mutex::new(Vec::new()),
    });
    let gw = start_with(FakeDevices::new(), store.clone(), GatewayConfig::default()).await;
    let user = gw.connected_user().await;
    gw.devices.hold_groups();
    let request = gw
        .groups(&user.token)
        .header("Idempotency-Key", "durable")
        .json(&json!({"name": "Durable"}))
        .send();
    let in_flight = tokio::spawn(request);
    gw.devices.group_call_arrived().await;
    // At the moment WhatsApp is asked, the attempt is on disk: a crash now cannot lead to a
    // second create on retry.
    assert_eq!(store.log(), ["save pending", "flush"]);
    gw.devices.release_groups();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 201);
    // And the response was on disk before it was sent.
    assert_eq!(
        store.log(),
        ["save pending", "flush", "save response", "flush"]
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_unknown_outcome_is_never_sent_again() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let send = |key: &'static str| {
        gw.groups(&user.token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Slow"}))
            .send()
    };
    for (error, status) in [
        (Error::Timeout(Duration::from_secs(75)), 504),
        (Error::Interrupted, 409),
    ] {
        gw.devices.push_group_result(Err(error));
        let key = if status == 504 { "slow" } else { "dropped" };
        let (got, body) = status_json(send(key).await.unwrap()).await;
        assert_eq!(got, status, "{body}");
        let calls = gw.devices.group_calls().len();
        for _ in 0..3 {
            let (got, body) = status_json(send(key).await.unwrap()).await;
            assert_eq!(got, 409, "{body}");
            assert_eq!(body["error_code"], "OUTCOME_UNKNOWN", "{body}");
        }
        assert_eq!(gw.devices.group_calls().len(), calls, "never sent twice");
    }

    // A refusal by WhatsApp created nothing: the retry runs.
    gw.devices.push_group_result(Err(Error::Rejected {
        code: 406,
        text: "not-acceptable".into(),
    }));
    assert_eq!(send("refused").await.unwrap().status(), 502);
    assert_eq!(send("refused").await.unwrap().status(), 201);
    gw.stop().await;
}

#[tokio::test]
async fn a_waiter_answers_within_its_own_deadline() {
    let config = GatewayConfig {
        idempotency_wait: Duration::from_millis(50),
        ..GatewayConfig::default()
    };
    let gw = gateway_support::start(config).await;
    let user = gw.connected_user().await;
    gw.devices.hold_groups();
    let send = || {
        gw.groups(&user.token)
            .header("Idempotency-Key", "held")
            .json(&json!({"name": "Held"}))
            .send()
    };
    let first = tokio::spawn(send());
    gw.devices.group_call_arrived().await;
    // The first attempt is still held at the device: the second gives up on its own.
    let (status, body) = status_json(send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], "IDEMPOTENCY_KEY_IN_USE", "{body}");
    gw.devices.release_groups();
    assert_eq!(first.await.unwrap().unwrap().status(), 201);
    assert_eq!(gw.devices.group_calls().len(), 1);
    gw.stop().await;
}
