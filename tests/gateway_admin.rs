//! The admin API over real HTTP: auth, tenants and users, token rotation, deletion, pairing,
//! QR formats, server-sent events, the sandbox endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::time::Duration;

use futures_util::StreamExt;
use gateway_support::{ADMIN_TOKEN, Call, own_jid, sample_qr, start_default, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::client::api::{DeviceEvent, DeviceState, Reason};
use wuts::engine::{CloseReason, LogoutReason};
use wuts::http::{GatewayConfig, SandboxInfo, hash_token};
use wuts_store::gateway::UserId;

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "u").await;
    let url = format!("{}/admin/users", gw.url);
    for auth in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(ADMIN_TOKEN.to_owned()), // bare tokens are for document 002's /groups clients only
        Some(format!("Bearer {}", user.token)),
    ] {
        let mut request = gw.http.get(&url);
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body["error_code"], "UNAUTHORIZED");
        assert_eq!(body["success"], false);
    }
    let response = gw.admin(Method::GET, "/admin/users").send().await.unwrap();
    assert_eq!(response.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn tenants_and_users_are_created_listed_and_shown() {
    let gw = start_default().await;
    let tenant = gw
        .admin_json(Method::POST, "/admin/tenants", json!({"name": " Padaria "}))
        .await;
    assert_eq!(tenant["name"], "Padaria");
    let tenant_id = tenant["id"].as_str().unwrap();
    let tenants = gw
        .admin_json(Method::GET, "/admin/tenants", json!(null))
        .await;
    assert_eq!(tenants, json!([tenant]));

    let response = gw
        .admin(Method::POST, "/admin/users")
        .json(&json!({"tenant_id": tenant_id, "name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap();
    let parsed = uuid::Uuid::parse_str(token).unwrap();
    assert_eq!(parsed.get_version_num(), 4, "tokens are UUID v4");
    assert_eq!(created["tenant_id"], tenant_id);
    assert_eq!(created["name"], "Ana");

    // Only the hash is kept.
    let id = UserId::new(created["id"].as_str().unwrap()).unwrap();
    let stored = gw.store.user(&id).unwrap().unwrap();
    assert_eq!(stored.token_hash, hash_token(token));

    let path = format!("/admin/users/{id}");
    let shown = gw.admin_json(Method::GET, &path, json!(null)).await;
    assert_eq!(
        shown,
        json!({"id": id.as_str(), "tenant_id": tenant_id, "name": "Ana", "state": "unpaired", "jid": null})
    );
    gw.devices.connect(stored.device);
    let shown = gw.admin_json(Method::GET, &path, json!(null)).await;
    assert_eq!(shown["state"], "connected");
    assert_eq!(shown["jid"], own_jid(stored.device).to_string());
    let list = gw
        .admin_json(Method::GET, "/admin/users", json!(null))
        .await;
    assert_eq!(list, json!([shown]));
    assert!(
        list.to_string().find(token).is_none(),
        "tokens are never listed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_admin_bodies_are_refused_with_their_field() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    for (path, body, field) in [
        ("/admin/tenants", json!({"name": ""}), "name"),
        ("/admin/tenants", json!({"name": "a", "x": 1}), "x"),
        ("/admin/tenants", json!({"name": 7}), "name"),
        ("/admin/tenants", json!([]), "body"),
        (
            "/admin/users",
            json!({"tenant_id": "nope", "name": "u"}),
            "tenant_id",
        ),
        (
            "/admin/users",
            json!({"tenant_id": tenant, "name": "\u{7}"}),
            "name",
        ),
        ("/admin/users", json!({"name": "u"}), "tenant_id"),
    ] {
        let (status, body) = status_json(
            gw.admin(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(body["error_code"], "VALIDATION_ERROR");
        assert_eq!(body["details"][0]["field"], field, "{body}");
        // The same `details[]` shape as /groups: a field and a sentence, no serde text.
        let message = body["details"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains('`') && !message.contains("line "),
            "{body}"
        );
    }
    assert!(
        !gw.devices.calls().contains(&Call::Create),
        "no device slot for a refused user"
    );
    gw.stop().await;
}

#[tokio::test]
async fn rotating_a_token_revokes_the_old_one() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let rotated = gw
        .admin_json(
            Method::POST,
            &format!("/admin/users/{}/token", user.id),
            json!(null),
        )
        .await;
    let new_token = rotated["token"].as_str().unwrap();
    assert_ne!(new_token, user.token);
    let old = gw
        .groups(&user.token)
        .json(&json!({"name": "g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let new = gw
        .groups(new_token)
        .json(&json!({"name": "g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), 201);
    gw.stop().await;
}

#[tokio::test]
async fn deleting_a_user_removes_its_device_and_token() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let path = format!("/admin/users/{}", user.id);
    let response = gw.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(gw.devices.calls().contains(&Call::Remove(user.device)));
    assert!(!gw.devices.exists(user.device));
    let (status, body) = status_json(gw.admin(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let response = gw
        .groups(&user.token)
        .json(&json!({"name": "g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = gw.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn pairing_shows_the_qr_in_every_format() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "u").await;
    let qr = format!("/admin/users/{}/qr", user.id);
    let (status, body) = status_json(gw.admin(Method::GET, &qr).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_NOT_PAIRING"))
    );
    assert!(body["error"].as_str().unwrap().contains("unpaired"));

    let started = gw
        .admin(Method::POST, &format!("/admin/users/{}/pair", user.id))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["state"], "pairing");
    assert_eq!(started["qr_url"], qr);

    let json_qr = gw.admin_json(Method::GET, &qr, json!(null)).await;
    let expected = sample_qr(0);
    assert_eq!(
        json_qr,
        json!({"code": expected.code, "expires_at": expected.expires_at, "ttl": 60})
    );
    for (format, content_type, magic) in [
        ("png", "image/png", &b"\x89PNG"[..]),
        ("svg", "image/svg+xml", &b"<?xml"[..]),
        ("txt", "text/plain; charset=utf-8", "\u{2588}".as_bytes()),
    ] {
        let response = gw
            .admin(Method::GET, &format!("{qr}?format={format}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{format}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let bytes = response.bytes().await.unwrap();
        assert!(
            bytes.windows(magic.len()).any(|w| w == magic),
            "{format} looks like {format}"
        );
    }
    let bad = gw
        .admin(Method::GET, &format!("{qr}?format=gif"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // State conflicts are 409s with their own codes, never VALIDATION_ERROR.
    let pair = format!("/admin/users/{}/pair", user.id);
    let (status, body) = gw.admin_call(Method::POST, &pair).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_PAIRING"))
    );
    gw.devices.connect(user.device);
    let (status, body) = gw.admin_call(Method::POST, &pair).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_ALREADY_PAIRED")),
        "{body}"
    );
    let (status, body) = gw.admin_call(Method::GET, &qr).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_ALREADY_PAIRED")),
        "{body}"
    );
    let other = gw.user_in(&tenant, "v").await;
    let (status, body) = gw
        .admin_call(Method::GET, &format!("/admin/users/{}/qr", other.id))
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_NOT_PAIRING")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("/pair"), "{body}");
    gw.stop().await;
}

/// Reads server-sent events until `count` have arrived; returns `(event, data)` pairs.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<(String, Value)> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event within 5 s")
            .expect("stream open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !name.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn events_stream_in_order() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "u").await;
    let response = gw
        .admin(Method::GET, &format!("/admin/users/{}/events", user.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    let device = user.device;
    let jid = own_jid(device);
    let pair = gw
        .admin(Method::POST, &format!("/admin/users/{}/pair", user.id))
        .send()
        .await
        .unwrap();
    assert_eq!(pair.status(), 202);
    gw.devices.emit(device, DeviceEvent::Qr(sample_qr(1)));
    gw.devices.emit(
        device,
        DeviceEvent::Paired {
            jid: jid.clone(),
            business_name: None,
            platform: "android".into(),
        },
    );
    gw.devices.set_state(device, DeviceState::Connected);
    gw.devices.emit(device, DeviceEvent::Connected);
    gw.devices.emit(
        device,
        DeviceEvent::Disconnected {
            reason: Reason::of(&CloseReason::ServerClosed),
        },
    );
    gw.devices.emit(device, DeviceEvent::Connected);
    gw.devices.emit(
        device,
        DeviceEvent::LoggedOut {
            reason: Reason::of(&CloseReason::LoggedOut(LogoutReason::DeviceRemoved)),
        },
    );

    let events = read_events(response, 8).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "state",
            "qr",
            "qr",
            "paired",
            "connected",
            "disconnected",
            "connected",
            "logged_out"
        ]
    );
    assert_eq!(
        events[0].1,
        json!({"state": "unpaired", "jid": null, "reason": null, "message": null})
    );
    assert_eq!(events[1].1["code"], sample_qr(0).code);
    assert_eq!(events[2].1["ttl"], 20);
    assert_eq!(
        events[3].1,
        json!({"jid": jid.to_string(), "business_name": null, "platform": "android"})
    );
    assert_eq!(
        events[5].1,
        json!({"reason": "connection_lost", "message": "the connection was lost"})
    );
    // A stable code and a sentence, never Rust debug text.
    assert_eq!(
        events[7].1,
        json!({"reason": "device_removed", "message": "the phone unlinked this device"})
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_opened_while_pairing_starts_with_the_current_qr() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "u").await;
    gw.admin(Method::POST, &format!("/admin/users/{}/pair", user.id))
        .send()
        .await
        .unwrap();
    let response = gw
        .admin(Method::GET, &format!("/admin/users/{}/events", user.id))
        .send()
        .await
        .unwrap();
    let events = read_events(response, 2).await;
    assert_eq!(events[0].1["state"], "pairing");
    assert_eq!(events[1].0, "qr");
    assert_eq!(events[1].1["code"], sample_qr(0).code);
    gw.stop().await;
}

#[tokio::test]
async fn sandbox_addresses_only_in_sandbox_mode() {
    let gw = start_default().await;
    let (status, _) = status_json(
        gw.admin(Method::GET, "/admin/sandbox")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    gw.stop().await;

    let info = SandboxInfo {
        ws_url: "ws://127.0.0.1:5555/ws/chat".into(),
        control_url: "http://127.0.0.1:5556".into(),
    };
    let gw = gateway_support::start(GatewayConfig {
        sandbox: Some(info.clone()),
        ..GatewayConfig::default()
    })
    .await;
    let shown = gw
        .admin_json(Method::GET, "/admin/sandbox", json!(null))
        .await;
    assert_eq!(
        shown,
        json!({"ws_url": info.ws_url, "control_url": info.control_url})
    );
    gw.stop().await;
}
