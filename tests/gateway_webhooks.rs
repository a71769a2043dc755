//! Webhooks over real HTTP, with a real receiver on loopback: both signatures checked
//! independently, settings checked, retries, a receiver down then back, dead letters and replay,
//! a slow receiver that holds up nobody else, timeouts, group events through the sink, the
//! OpenAPI webhooks section. The event stream is in `gateway_events_stream.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;
mod webhook_receiver;

use std::sync::atomic::Ordering;
use std::time::Duration;

use gateway_support::{FakeGateway, User, start, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use webhook_receiver::{Receiver, WAIT, free_port, verify_body, verify_standard};
use wuts::client::api::{DeviceEvent, Reason};
use wuts::http::{GatewayConfig, WebhookSettings};

fn config() -> GatewayConfig {
    GatewayConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..WebhookSettings::default()
        },
        ..GatewayConfig::default()
    }
}

async fn call(
    gw: &FakeGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = gw
        .http
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.unwrap()).await
}

/// Sets the user's device webhook; returns the generated secret.
async fn hook(gw: &FakeGateway, user: &User, url: &str, events: &[&str], retries: u32) -> String {
    let (status, body) = call(
        gw,
        &user.token,
        Method::POST,
        "/webhook",
        Some(json!({"webhook_url": url, "enabled_events": events, "retry_attempts": retries, "timeout": 5})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["webhook"]["secret"]
        .as_str()
        .expect("a generated secret, once")
        .to_owned()
}

fn lost(code: &'static str) -> DeviceEvent {
    DeviceEvent::Disconnected {
        reason: Reason {
            code,
            message: "the server closed the connection".into(),
        },
    }
}

/// Polls the delivery log until `check` holds for the newest record.
async fn wait_delivery(gw: &FakeGateway, user: &User, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = call(gw, &user.token, Method::GET, "/webhook/deliveries", None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(first) = body["deliveries"].get(0) {
            if check(first) {
                return first.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery log: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deliveries_are_signed_both_ways_and_the_secret_is_shown_once() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let mut receiver = Receiver::start().await;
    let secret = hook(
        &gw,
        &user,
        &receiver.url,
        &["device.connected", "device.disconnected"],
        3,
    )
    .await;
    assert!(secret.starts_with("whsec_"));

    let (status, shown) = call(&gw, &user.token, Method::GET, "/webhook", None).await;
    assert_eq!(status, 200);
    assert!(shown["webhook"].get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&secret));

    gw.devices.emit(user.device, DeviceEvent::Connected);
    let got = receiver.next().await;
    verify_standard(&secret, &got).unwrap();
    verify_body(&secret, &got).unwrap();
    let envelope = got.json();
    assert_eq!(envelope["event"], "device.connected");
    assert_eq!(envelope["user_id"], user.id.as_str());
    assert_eq!(envelope["id"], got.header("webhook-id"));
    assert!(envelope["device_id"].is_string());
    assert!(envelope["timestamp"].is_u64());
    assert_eq!(got.header("content-type"), "application/json");

    // A tampered body fails both checks.
    let mut tampered = got.clone();
    tampered.body = String::from_utf8(got.body.clone())
        .unwrap()
        .replace("device.connected", "device.disconnected")
        .into_bytes();
    assert!(verify_standard(&secret, &tampered).is_err());
    assert!(verify_body(&secret, &tampered).is_err());

    // Events the webhook does not want are not delivered; the next one that is arrives.
    gw.devices
        .emit(user.device, DeviceEvent::Qr(gateway_support::sample_qr(1)));
    gw.devices.emit(user.device, lost("connection_lost"));
    let got = receiver.next().await;
    assert_eq!(got.json()["event"], "device.disconnected");
    assert_eq!(got.json()["data"]["reason"], "connection_lost");
    gw.stop().await;
}

#[tokio::test]
async fn webhook_settings_are_checked() {
    let strict = start(GatewayConfig::default()).await;
    let user = strict.connected_user().await;
    let (status, body) = call(
        &strict,
        &user.token,
        Method::POST,
        "/webhook",
        Some(json!({"webhook_url": "http://127.0.0.1:9/hook", "enabled_events": ["device.connected"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], "VALIDATION_ERROR");
    let (status, body) = call(
        &strict,
        &user.token,
        Method::POST,
        "/webhook",
        Some(
            json!({"webhook_url": "ftp://example.com/", "enabled_events": ["nope"], "timeout": 0,
                    "headers": {"webhook-id": "x"}}),
        ),
    )
    .await;
    assert_eq!(status, 400);
    let text = body.to_string();
    for field in [
        "webhook_url",
        "enabled_events[0]",
        "timeout",
        "headers.webhook-id",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    let (status, body) = call(&strict, &user.token, Method::GET, "/webhook/events", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in [
        "qr.generated",
        "pair.success",
        "device.disconnected",
        "group.participants",
        "community.unlinked",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    let (status, _) = call(&strict, &user.token, Method::GET, "/webhook", None).await;
    assert_eq!(status, 404);
    strict.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_then_succeeds_gets_the_event_with_the_same_id() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let mut receiver = Receiver::start().await;
    receiver.script.fail_next.store(2, Ordering::SeqCst);
    *receiver.script.retry_after.lock().unwrap() = Some("0".into());
    let secret = hook(&gw, &user, &receiver.url, &["device.connected"], 3).await;
    gw.devices.emit(user.device, DeviceEvent::Connected);
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    assert_eq!(
        (first.answered, second.answered, third.answered),
        (500, 500, 204)
    );
    let id = first.header("webhook-id").to_owned();
    assert_eq!(second.header("webhook-id"), id);
    assert_eq!(third.header("webhook-id"), id);
    verify_standard(&secret, &third).unwrap();
    let record = wait_delivery(&gw, &user, |d| d["status"] == "delivered").await;
    assert_eq!(record["attempts"], 3);
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["last_status"], 204);
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wuts_webhook_delivered_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wuts_webhook_retried_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wuts_webhook_delivery_seconds_count 3"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_receiver_down_for_a_while_then_back_loses_nothing_and_order_is_kept() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let port = free_port();
    hook(
        &gw,
        &user,
        &format!("http://127.0.0.1:{port}/hook"),
        &["device.disconnected", "device.connected"],
        20,
    )
    .await;
    gw.devices.emit(user.device, lost("connection_lost"));
    gw.devices.emit(user.device, DeviceEvent::Connected);
    gw.devices.emit(user.device, lost("keepalive_timeout"));
    // The first delivery has failed at least once: the receiver is down.
    wait_delivery(&gw, &user, |_| true).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = call(&gw, &user.token, Method::GET, "/webhook/deliveries", None).await;
        let failing = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "retrying");
        if failing {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut receiver = Receiver::start_on(port).await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let got = receiver.next_accepted().await;
        order.push((
            got.json()["event"].as_str().unwrap().to_owned(),
            got.json()["data"]["reason"].clone(),
        ));
    }
    assert_eq!(
        order[0],
        ("device.disconnected".to_owned(), json!("connection_lost"))
    );
    assert_eq!(order[1].0, "device.connected");
    assert_eq!(
        order[2],
        ("device.disconnected".to_owned(), json!("keepalive_timeout"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn dead_letters_are_kept_and_can_be_replayed() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let mut receiver = Receiver::start().await;
    receiver.script.always_fail.store(true, Ordering::SeqCst);
    hook(&gw, &user, &receiver.url, &["device.connected"], 1).await;
    gw.devices.emit(user.device, DeviceEvent::Connected);
    let dead = wait_delivery(&gw, &user, |d| d["status"] == "dead").await;
    assert_eq!(dead["attempts"], 2, "one try and one retry");
    assert!(
        dead["last_error"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    let (status, page) = call(
        &gw,
        &user.token,
        Method::GET,
        "/webhook/deliveries?status=dead",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);

    receiver.script.always_fail.store(false, Ordering::SeqCst);
    let id = dead["id"].as_str().unwrap();
    let (status, body) = call(
        &gw,
        &user.token,
        Method::POST,
        &format!("/webhook/deliveries/{id}/redeliver"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = receiver.next_accepted().await;
    assert_eq!(got.header("webhook-id"), id);
    let record = wait_delivery(&gw, &user, |d| d["status"] == "delivered").await;
    assert_eq!(record["attempts"], 3);
    let (status, _) = call(
        &gw,
        &user.token,
        Method::POST,
        "/webhook/deliveries/nope/redeliver",
        None,
    )
    .await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_another_users_deliveries() {
    let gw = start(config()).await;
    let slow_user = gw.connected_user().await;
    let tenant = gw.tenant("Other").await;
    let fast_user = gw.user_in(&tenant, "Bia").await;
    gw.devices.connect(fast_user.device);
    let mut slow = Receiver::start().await;
    slow.script.open.send_replace(false);
    let mut fast = Receiver::start().await;
    hook(&gw, &slow_user, &slow.url, &["device.connected"], 3).await;
    hook(&gw, &fast_user, &fast.url, &["device.connected"], 3).await;
    gw.devices.emit(slow_user.device, DeviceEvent::Connected);
    // The slow receiver holds its request (it has arrived: the delivery is in flight).
    let deadline = tokio::time::Instant::now() + WAIT;
    while slow.script.open.receiver_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.devices.emit(fast_user.device, DeviceEvent::Connected);
    let got = fast.next().await;
    assert_eq!(got.json()["user_id"], fast_user.id.as_str());
    slow.script.open.send_replace(true);
    let got = slow.next().await;
    assert_eq!(got.json()["user_id"], slow_user.id.as_str());
    gw.stop().await;
}

#[tokio::test]
async fn group_events_enter_through_the_sink_and_are_durable_when_it_returns() {
    use wuts::events::group::{GroupEvent, ParticipantsChange};
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let mut receiver = Receiver::start().await;
    hook(&gw, &user, &receiver.url, &["group.participants"], 3).await;
    let event = GroupEvent::Participants(ParticipantsChange {
        group_jid: "120363000000000001@g.us".into(),
        action: "add".into(),
        participants: vec!["5511999990002@s.whatsapp.net".into()],
        actor: Some("5511999990001@s.whatsapp.net".into()),
        reason: None,
    });
    gw.devices
        .sink()
        .group_event(user.device, event)
        .await
        .unwrap();
    // Durable on return: the outbox holds it already.
    let stored = gw
        .state
        .events
        .events_after(
            &wuts_store::gateway::UserId::new(user.id.clone()).unwrap(),
            0,
            10,
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    let got = receiver.next().await;
    let envelope = got.json();
    assert_eq!(envelope["event"], "group.participants");
    assert_eq!(envelope["data"]["action"], "add");
    assert_eq!(
        envelope["data"]["participants"][0],
        "5511999990002@s.whatsapp.net"
    );
    gw.stop().await;
}

#[tokio::test]
async fn openapi_documents_every_event_with_an_example() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let (_, names) = call(&gw, &user.token, Method::GET, "/webhook/events", None).await;
    let doc: Value = gw
        .http
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names = names["events"].as_array().unwrap();
    assert_eq!(doc["webhooks"].as_object().unwrap().len(), names.len());
    for name in names {
        let name = name.as_str().unwrap();
        let body = &doc["webhooks"][name]["post"]["requestBody"]["content"]["application/json"];
        assert_eq!(body["example"]["event"], name, "{name}");
        assert!(body["example"]["data"].is_object(), "{name}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_failed_attempt() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    let receiver = Receiver::start().await;
    receiver.script.open.send_replace(false);
    let (status, body) = call(
        &gw,
        &user.token,
        Method::POST,
        "/webhook",
        Some(
            json!({"webhook_url": receiver.url, "enabled_events": ["device.connected"],
                    "retry_attempts": 0, "timeout": 1}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    gw.devices.emit(user.device, DeviceEvent::Connected);
    let dead = wait_delivery(&gw, &user, |d| d["status"] == "dead").await;
    assert_eq!(dead["attempts"], 1);
    assert_eq!(dead["last_error"], "no answer within 1 s");
    receiver.script.open.send_replace(true);
    gw.stop().await;
}
