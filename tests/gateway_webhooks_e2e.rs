//! The real registry over the sandbox: pairing and connection events come out of the device
//! tasks, through the outbox, to a webhook receiver on loopback, signed and in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod webhook_receiver;

use std::time::Duration;

use gateway_e2e_support::{Options, sandbox, start, status_json};
use serde_json::json;
use webhook_receiver::{Receiver, verify_body, verify_standard};
use wuts::http::WebhookSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_and_connection_events_arrive_as_signed_webhooks_in_order() {
    let sim = sandbox(1201).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        webhooks: Some(WebhookSettings {
            allow_private: true,
            retry_base: Duration::from_millis(20),
            ..WebhookSettings::default()
        }),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("Padaria").await;
    let user = gw.user_in(&tenant, "Ana").await;
    let mut receiver = Receiver::start().await;
    let (status, hook) = status_json(
        gw.http
            .post(format!("{}/webhook", gw.url))
            .bearer_auth(&user.token)
            .json(&json!({
                "webhook_url": receiver.url,
                "enabled_events": ["qr.generated", "pair.success", "device.connected", "device.disconnected"],
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    let secret = hook["webhook"]["secret"].as_str().unwrap().to_owned();
    let device_id = hook["webhook"]["device_id"].as_str().unwrap().to_owned();

    let jid = gw.pair(&sim, &user, "5511999991201").await;
    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("device.connected") {
        let got = receiver.next_accepted().await;
        verify_standard(&secret, &got).unwrap();
        verify_body(&secret, &got).unwrap();
        let envelope = got.json();
        assert_eq!(envelope["device_id"], device_id.as_str());
        assert_eq!(envelope["user_id"], user.id.as_str());
        if envelope["event"] == "pair.success" {
            assert_eq!(envelope["data"]["jid"], jid.as_str());
        }
        names.push(envelope["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        names.first().map(String::as_str),
        Some("qr.generated"),
        "{names:?}"
    );
    let paired_at = names
        .iter()
        .position(|n| n == "pair.success")
        .expect("pair.success");
    assert!(
        names[..paired_at].iter().all(|n| n == "qr.generated"),
        "{names:?}"
    );

    let response = gw
        .admin(
            reqwest::Method::POST,
            &format!("/admin/users/{}/disconnect", user.id),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let got = receiver.next_accepted().await;
    assert_eq!(got.json()["event"], "device.disconnected");
    assert_eq!(got.json()["data"]["reason"], "closed_locally");
    gw.stop().await;
}

/// A simulated member acting in the sandbox (the control API) reaches the operator as a signed
/// `group.*` webhook: the `w:gp2` notification is parsed, written to the outbox, acknowledged,
/// and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_members_actions_arrive_as_group_webhooks() {
    let sim = sandbox(1202).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        webhooks: Some(WebhookSettings {
            allow_private: true,
            retry_base: Duration::from_millis(20),
            ..WebhookSettings::default()
        }),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("Padaria").await;
    let user = gw.user_in(&tenant, "Ana").await;
    gw.pair(&sim, &user, "5511999991202").await;
    let mut receiver = Receiver::start().await;
    let (status, hook) = status_json(
        gw.http
            .post(format!("{}/webhook", gw.url))
            .bearer_auth(&user.token)
            .json(&json!({
                "webhook_url": receiver.url,
                "enabled_events": ["group.participants", "group.info"],
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    let secret = hook["webhook"]["secret"].as_str().unwrap().to_owned();

    let carla = "5511777771202";
    let (status, group) = gw
        .create(
            &user.token,
            json!({"name": "Turma", "participants": [carla]}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let jid = group["group"]["jid"]
        .as_str()
        .or_else(|| group["data"]["jid"].as_str())
        .or_else(|| group["jid"].as_str())
        .unwrap_or_else(|| panic!("no jid in {group}"))
        .to_owned();

    let control = |body: serde_json::Value| {
        reqwest::Client::new()
            .post(format!("{}/group-action", sim.control_url()))
            .json(&body)
            .send()
    };
    let response = control(
        json!({"group": jid, "actor_phone": carla, "action": "subject", "value": "Turma da Carla"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let got = receiver.next_accepted().await;
    verify_standard(&secret, &got).unwrap();
    verify_body(&secret, &got).unwrap();
    let envelope = got.json();
    assert_eq!(envelope["event"], "group.info", "{envelope}");
    assert_eq!(envelope["data"]["group_jid"], jid.as_str());
    assert_eq!(envelope["data"]["subject"], "Turma da Carla");
    assert!(
        envelope["data"]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with(carla)),
        "{envelope}"
    );

    let response = control(json!({"group": jid, "actor_phone": carla, "action": "leave"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let envelope = receiver.next_accepted().await.json();
    assert_eq!(envelope["event"], "group.participants", "{envelope}");
    assert_eq!(envelope["data"]["action"], "leave");
    let left = envelope["data"]["participants"][0].as_str().unwrap();
    assert!(left.starts_with(carla), "{envelope}");
    gw.stop().await;
}

/// Events written before the user ever called a device route (the admin paired the device)
/// already name the device by the id it is listed under later, never `null`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_any_device_route_name_the_default_device() {
    let sim = sandbox(1203).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Padaria").await;
    let user = gw.user_in(&tenant, "Ana").await;
    gw.pair(&sim, &user, "5511999991203").await;

    let mut stream = gw
        .admin(
            reqwest::Method::GET,
            &format!(
                "/admin/users/{}/events?format=envelope&last_event_id=0",
                user.id
            ),
        )
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let first = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(line) = text.lines().find(|l| l.starts_with("data:")) {
                let json: serde_json::Value =
                    serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
                return json;
            }
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap();
    assert_eq!(first["user_id"], user.id.as_str(), "{first}");
    assert_eq!(first["device_id"], user.id.as_str(), "{first}");

    // The id is the one the device routes list.
    let (status, listed) = status_json(
        gw.http
            .get(format!("{}/devices", gw.url))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["devices"][0]["id"], user.id.as_str(), "{listed}");
    drop(stream);
    gw.stop().await;
}
