//! The event stream over real HTTP: `GET /events` with `id:` and `Last-Event-ID` resume, the
//! admin's per-user stream with ids, one-use stream tickets, and the events derived from device
//! events (stream replaced, keep-alive lost and restored, connection failures).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::time::Duration;

use gateway_support::{FakeGateway, start, status_json};
use reqwest::Method;
use serde_json::Value;
use wuts::client::api::{DeviceEvent, Reason};
use wuts::http::{GatewayConfig, WebhookSettings};

const WAIT: Duration = Duration::from_secs(30);

fn config() -> GatewayConfig {
    GatewayConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            ..WebhookSettings::default()
        },
        ..GatewayConfig::default()
    }
}

async fn call(gw: &FakeGateway, token: &str, method: Method, path: &str) -> (u16, Value) {
    let request = gw
        .http
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(token);
    status_json(request.send().await.unwrap()).await
}

fn lost(code: &'static str) -> DeviceEvent {
    DeviceEvent::Disconnected {
        reason: Reason {
            code,
            message: "the server closed the connection".into(),
        },
    }
}

/// Reads SSE frames: (id, event, data).
struct Frames {
    response: reqwest::Response,
    buffer: String,
}

impl Frames {
    async fn next(&mut self) -> (Option<String>, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(name) = name {
                    return (id, name, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn open_stream(
    gw: &FakeGateway,
    path: &str,
    token: Option<&str>,
    last: Option<&str>,
) -> (u16, Option<Frames>) {
    let mut request = gw.http.get(format!("{}{path}", gw.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    (
        status,
        Some(Frames {
            response,
            buffer: String::new(),
        }),
    )
}

#[tokio::test]
async fn the_event_stream_resumes_after_last_event_id_and_takes_one_use_tickets() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    // A webhook is not needed for the stream: every event reaches the outbox.
    let (_, Some(mut live)) = open_stream(&gw, "/events", Some(&user.token), None).await else {
        panic!("the stream opens");
    };
    gw.devices.emit(user.device, DeviceEvent::Connected);
    gw.devices.emit(user.device, lost("connection_lost"));
    gw.devices.emit(user.device, DeviceEvent::Connected);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (id, name, data) = live.next().await;
        assert_eq!(data["event"], name.as_str());
        seen.push((id.unwrap(), name));
    }
    assert_eq!(
        seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        [
            "device.connected",
            "device.disconnected",
            "device.connected"
        ]
    );

    // Resume after the first: the two after it, then live ones.
    let (_, Some(mut resumed)) =
        open_stream(&gw, "/events", Some(&user.token), Some(&seen[0].0)).await
    else {
        panic!("the stream opens");
    };
    assert_eq!(resumed.next().await.0.unwrap(), seen[1].0);
    assert_eq!(resumed.next().await.0.unwrap(), seen[2].0);
    gw.devices.emit(user.device, lost("keepalive_timeout"));
    let (id, name, data) = resumed.next().await;
    assert_eq!(name, "device.disconnected");
    assert_eq!(data["data"]["reason"], "keepalive_timeout");
    let (_, derived, _) = resumed.next().await;
    assert_eq!(derived, "connection.keepalive_timeout");
    assert!(id.unwrap().parse::<u64>().unwrap() > seen[2].0.parse::<u64>().unwrap());

    // The admin's per-user stream carries the same ids.
    let (status, Some(mut admin)) = open_stream(
        &gw,
        &format!(
            "/admin/users/{}/events?format=envelope&last_event_id=0",
            user.id
        ),
        Some(gateway_support::ADMIN_TOKEN),
        None,
    )
    .await
    else {
        panic!("the admin stream opens");
    };
    assert_eq!(status, 200);
    assert_eq!(admin.next().await.0.unwrap(), seen[0].0);

    // Tickets: issued to a token holder, one use, then refused.
    let (status, ticket) = call(&gw, &user.token, Method::POST, "/events/ticket").await;
    assert_eq!(status, 200);
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let path = format!("/events?ticket={ticket}&last_event_id=0");
    let (status, Some(mut by_ticket)) = open_stream(&gw, &path, None, None).await else {
        panic!("a ticket opens the stream");
    };
    assert_eq!(status, 200);
    assert_eq!(by_ticket.next().await.0.unwrap(), seen[0].0);
    assert_eq!(open_stream(&gw, &path, None, None).await.0, 401, "one use");
    assert_eq!(
        open_stream(&gw, "/events?ticket=forged.x", None, None)
            .await
            .0,
        401
    );
    assert_eq!(open_stream(&gw, "/events", None, None).await.0, 401);
    drop((live, resumed, admin, by_ticket));
    gw.stop().await;
}

#[tokio::test]
async fn device_events_derive_replaced_keepalive_and_failure_events() {
    let gw = start(config()).await;
    let user = gw.connected_user().await;
    gw.devices.emit(user.device, lost("replaced"));
    gw.devices.emit(user.device, lost("keepalive_timeout"));
    gw.devices.emit(user.device, DeviceEvent::Connected);
    gw.devices.emit(
        user.device,
        DeviceEvent::Error {
            reason: Reason {
                code: "certificate_invalid",
                message: "the server's certificate chain did not verify".into(),
            },
        },
    );
    gw.devices.emit(
        user.device,
        DeviceEvent::LoggedOut {
            reason: Reason {
                code: "device_removed",
                message: "the phone unlinked this device".into(),
            },
        },
    );
    let (_, Some(mut stream)) = open_stream(&gw, "/events", Some(&user.token), Some("0")).await
    else {
        panic!("the stream opens");
    };
    let mut names = Vec::new();
    for _ in 0..9 {
        names.push(stream.next().await.1);
    }
    assert_eq!(
        names,
        [
            "device.disconnected",
            "connection.stream_replaced",
            "device.disconnected",
            "connection.keepalive_timeout",
            "device.connected",
            "connection.keepalive_restored",
            "device.disconnected",
            "connection.failure",
            "device.logged_out",
        ]
    );
    drop(stream);
    gw.stop().await;
}
