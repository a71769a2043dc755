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
