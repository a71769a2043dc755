//! The device lifecycle end to end, over real HTTP against the in-process sandbox: pairing again
//! from every state (unlinked by the phone, logged out, timed out, never paired) with the user's
//! token surviving; a restart with a logged-out device; a wrong root key shown as an error; a
//! device held offline, or replaced by another login, waiting for the operator's connect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use std::time::Duration;

use gateway_e2e_support::{Options, WAIT, sandbox, start, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::noise::KeyPair;
use wuts::sim::{Fault, SimEvent, StreamError};
use wuts_store::{PairedIdentity, PublicKey, SledStore};

/// `POST /admin/users/{id}/pair` answers 202.
async fn start_pairing(gw: &gateway_e2e_support::E2eGateway, user: &gateway_e2e_support::User) {
    let (status, body) = gw
        .admin_call(Method::POST, &format!("/admin/users/{}/pair", user.id))
        .await;
    assert_eq!(status, 202, "{body}");
}

fn reason(data: &Value) -> (&str, &str) {
    (
        data["reason"].as_str().unwrap_or_default(),
        data["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_again_works_from_every_state_and_the_token_survives() {
    let sim = sandbox(31).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Padaria").await;
    let ana = gw.user_in(&tenant, "Ana").await;

    // Never paired -> paired.
    let first = gw.pair(&sim, &ana, "5511999990100").await;
    let (status, body) = gw.create(&ana.token, json!({"name": "one"})).await;
    assert_eq!(status, 201, "{body}");

    // The phone unlinks the device: a stable code and a sentence, then pairing again works.
    let mut events = gw.events(&ana).await;
    sim.remove_device(&first).await.unwrap();
    let data = events.wait_for("logged_out").await;
    assert_eq!(
        reason(&data),
        ("device_removed", "the phone unlinked this device"),
        "{data}"
    );
    let shown = gw.show_user(&ana).await;
    assert_eq!(shown["state"], "logged_out", "{shown}");
    assert_eq!(shown["reason"]["code"], "device_removed", "{shown}");
    let (status, body) = gw.create(&ana.token, json!({"name": "gone"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_NOT_PAIRED"))
    );
    let second = gw.pair(&sim, &ana, "5511999990100").await;
    assert_ne!(second, first, "a new companion, with new keys");
    let (status, body) = gw.create(&ana.token, json!({"name": "two"})).await;
    assert_eq!(
        status, 201,
        "the same token works after pairing again: {body}"
    );

    // Logged out through the API: WhatsApp is told, the keys go, the user and token stay.
    let mut sim_events = sim.subscribe();
    let (status, body) = gw
        .admin_call(Method::POST, &format!("/admin/users/{}/logout", ana.id))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "logged_out", "{body}");
    assert_eq!(body["reason"]["code"], "logout_requested", "{body}");
    // The sandbox reads the connection in order: once it closed, the logout was read.
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(SimEvent::Closed { jid: Some(j) }) = sim_events.recv().await {
                if j == second {
                    return;
                }
            }
        }
    })
    .await
    .expect("the connection closes");
    let removed = sim.devices().into_iter().find(|d| d.jid == second).unwrap();
    assert!(removed.removed, "{removed:?}");
    let third = gw.pair(&sim, &ana, "5511999990100").await;
    let (status, body) = gw.create(&ana.token, json!({"name": "three"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(sim.groups().last().unwrap().created_by, third);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_pairing_can_be_started_again() {
    let sim = sandbox(32).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        qr_ttl: Some((Duration::from_millis(300), Duration::from_millis(100))),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("T").await;
    let bia = gw.user_in(&tenant, "Bia").await;
    let mut events = gw.events(&bia).await;
    events.next().await;
    start_pairing(&gw, &bia).await;
    events.wait_for("pairing_timed_out").await;
    let shown = gw.show_user(&bia).await;
    assert_eq!(shown["state"], "unpaired", "{shown}");
    assert_eq!(shown["reason"]["code"], "pairing_timed_out", "{shown}");
    let (status, body) = gw
        .admin_call(Method::GET, &format!("/admin/users/{}/qr", bia.id))
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_NOT_PAIRING"))
    );
    drop(events);
    gw.stop().await;

    // Again, with codes shown long enough to scan.
    let gw = start(&sim, dir.path(), Options::default()).await;
    gw.pair(&sim, &bia, "5511999990101").await;
    let (status, body) = gw.create(&bia.token, json!({"name": "late"})).await;
    assert_eq!(status, 201, "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_logged_out_device_lists_every_user() {
    let sim = sandbox(33).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("T").await;
    let out = gw.user_in(&tenant, "Out").await;
    let never = gw.user_in(&tenant, "Never").await;
    let jid = gw.pair(&sim, &out, "5511999990102").await;
    let mut events = gw.events(&out).await;
    sim.remove_device(&jid).await.unwrap();
    events.wait_for("logged_out").await;
    drop(events);
    gw.stop().await;

    let gw = start(&sim, dir.path(), Options::default()).await;
    let (status, body) = gw.admin_call(Method::GET, "/admin/users").await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<(&str, &str)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(out.id.as_str(), "unpaired")), "{body}");
    assert!(states.contains(&(never.id.as_str(), "unpaired")), "{body}");
    // And it pairs again after the restart.
    gw.pair(&sim, &out, "5511999990102").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_root_key_is_a_visible_error_not_an_endless_pairing() {
    let sim = sandbox(34).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::OsRng;
    let options = Options {
        trusted_root: Some(*KeyPair::generate(&mut rng).public()),
        fault_retries: Some(1),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "Caio").await;
    let mut events = gw.events(&user).await;
    events.next().await;
    start_pairing(&gw, &user).await;
    let data = events.wait_for("error").await;
    assert_eq!(reason(&data).0, "certificate_invalid", "{data}");
    let shown = gw.show_user(&user).await;
    assert_eq!(shown["state"], "error", "{shown}");
    assert_eq!(shown["error_code"], "CERTIFICATE_INVALID", "{shown}");
    let (status, body) = gw
        .admin_call(Method::GET, &format!("/admin/users/{}/qr", user.id))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], "DEVICE_NOT_PAIRING", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("certificate_invalid"),
        "{body}"
    );
    let (status, _) = status_json(
        gw.groups(&user.token)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    gw.stop().await;
}

/// Waits until the user's device is in `state` (the stream opens with the current one).
async fn wait_state(
    gw: &gateway_e2e_support::E2eGateway,
    user: &gateway_e2e_support::User,
    state: &str,
) {
    let mut events = gw.events(user).await;
    let (_, now) = events.next().await;
    if now["state"] != state {
        events.wait_for(state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_cut_short_by_a_crash_is_not_reported_as_a_remote_logout() {
    let sim = sandbox(35).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("T").await;
    let cut = gw.user_in(&tenant, "Cut").await;
    let real = gw.user_in(&tenant, "Real").await;
    let jid = gw.pair(&sim, &real, "5511999990104").await;
    gw.stop().await;

    // What the driver writes before anybody hears of a pairing (the mark, then the identity),
    // for a pairing WhatsApp never accepted: the process died right after.
    {
        let store = SledStore::open(dir.path()).unwrap();
        let identity = PairedIdentity {
            jid: "5511999990777:3@s.whatsapp.net".parse().unwrap(),
            lid: None,
            platform: "android".to_owned(),
            business_name: None,
            signed_device_identity: vec![1, 2, 3],
            account_signature_key: PublicKey::from_bytes([9; 32]),
            key_index: 3,
        };
        wuts::client::jobs::save_pairing(&store, cut.device, &identity).unwrap();
    }
    // Meanwhile the phone unlinks the confirmed device.
    sim.remove_device(&jid).await.unwrap();

    let gw = start(&sim, dir.path(), Options::default()).await;
    wait_state(&gw, &cut, "logged_out").await;
    let shown = gw.show_user(&cut).await;
    assert_eq!(shown["reason"]["code"], "pairing_interrupted", "{shown}");
    wait_state(&gw, &real, "logged_out").await;
    let shown = gw.show_user(&real).await;
    assert_eq!(shown["reason"]["code"], "credentials_refused", "{shown}");
    // Either way, pairing again works.
    gw.pair(&sim, &cut, "5511999990105").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_device_stays_offline_across_a_restart_until_connect() {
    let sim = sandbox(36).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "Off").await;
    gw.pair(&sim, &user, "5511999990106").await;
    let (status, body) = gw
        .admin_call(
            Method::POST,
            &format!("/admin/users/{}/disconnect", user.id),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_state(&gw, &user, "disconnected").await;
    let (status, body) = gw.create(&user.token, json!({"name": "offline"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (503, Some("DEVICE_OFFLINE"))
    );
    gw.stop().await;

    // After a restart it is still offline: WhatsApp sees no login.
    let mut logins = sim.subscribe();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let shown = gw.show_user(&user).await;
    assert_eq!(shown["state"], "disconnected", "{shown}");
    assert_eq!(shown["reason"]["code"], "closed_locally", "{shown}");
    assert!(
        !std::iter::from_fn(|| logins.try_recv().ok())
            .any(|e| matches!(e, SimEvent::LoggedIn { .. })),
        "no login while held offline"
    );
    let (status, body) = gw
        .admin_call(Method::POST, &format!("/admin/users/{}/connect", user.id))
        .await;
    assert_eq!(status, 202, "{body}");
    wait_state(&gw, &user, "connected").await;
    let (status, body) = gw.create(&user.token, json!({"name": "back"})).await;
    assert_eq!(status, 201, "{body}");
    gw.stop().await;
}

/// `conflict type="replaced"`: another login took the device. It does not fight back: it stays
/// offline and says why until the operator connects it again (`POST /connect`, user token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_device_stays_offline_until_the_operator_connects_it() {
    let sim = sandbox(37).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "Taken").await;
    let jid = gw.pair(&sim, &user, "5511999990107").await;
    let mut sim_events = sim.subscribe();
    sim.inject(Fault::StreamError {
        device: jid,
        error: StreamError::Replaced,
    })
    .await
    .unwrap();
    wait_state(&gw, &user, "disconnected").await;
    let shown = gw.show_user(&user).await;
    assert_eq!(shown["reason"]["code"], "replaced", "{shown}");
    let user_call = |method: Method, path: &str| {
        gw.http
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(&user.token)
            .send()
    };
    let (status, body) = status_json(user_call(Method::GET, "/status").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "disconnected", "{body}");
    assert_eq!(body["data"]["connected"], false, "{body}");
    // The lifecycle chose to wait (not a backoff): nothing logged in since.
    assert!(
        !std::iter::from_fn(|| sim_events.try_recv().ok())
            .any(|e| matches!(e, SimEvent::LoggedIn { .. })),
        "no login of its own"
    );
    let (status, body) = status_json(user_call(Method::POST, "/connect").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["needs_qr"], false, "{body}");
    wait_state(&gw, &user, "connected").await;
    let (status, body) = gw.create(&user.token, json!({"name": "mine again"})).await;
    assert_eq!(status, 201, "{body}");
    gw.stop().await;
}
