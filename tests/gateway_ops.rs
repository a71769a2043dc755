//! Health, readiness, metrics, the OpenAPI document and docs page, request ids, fallbacks and
//! graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::time::Duration;

use gateway_support::{Call, start_default, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::http::ErrorCode;

#[tokio::test]
async fn health_and_readiness() {
    let gw = start_default().await;
    let (status, body) = status_json(
        gw.http
            .get(format!("{}/healthz", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = status_json(
        gw.http
            .get(format!("{}/readyz", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    gw.state.begin_shutdown();
    let (status, body) = status_json(
        gw.http
            .get(format!("{}/readyz", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (503, json!({"status": "stopping"})));
    gw.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_devices_and_iq_latency() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let tenant = gw.tenant("Other").await;
    let unpaired = gw.user_in(&tenant, "unpaired").await;
    gw.devices.set_reconnects(3);
    // Refused before anything went to WhatsApp: not WhatsApp's latency.
    let refused = gw
        .groups(&unpaired.token)
        .json(&json!({"name": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    for _ in 0..2 {
        gw.groups(&user.token)
            .json(&json!({"name": "m"}))
            .send()
            .await
            .unwrap();
    }
    gw.groups("bad")
        .json(&json!({"name": "m"}))
        .send()
        .await
        .unwrap();
    let response = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        "wuts_devices{state=\"connected\"} 1",
        "wuts_devices{state=\"unpaired\"} 1",
        "wuts_devices{state=\"pairing\"} 0",
        "wuts_device_reconnects_total 3",
        "wuts_http_requests_total{route=\"/groups\",method=\"POST\",status=\"201\"} 2",
        "wuts_http_requests_total{route=\"/groups\",method=\"POST\",status=\"401\"} 1",
        "wuts_whatsapp_iq_duration_seconds_count{iq=\"group_create\",outcome=\"ok\"} 2",
        "# TYPE wuts_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("outcome=\"error\""),
        "a 409 DEVICE_NOT_PAIRED is not a WhatsApp error:\n{text}"
    );
    gw.stop().await;
}

/// A sample path for a documented template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{jid}", "120363000000000001@g.us")
        .replace("{group_jid}", "120363000000000002@g.us")
}

#[tokio::test]
async fn openapi_documents_every_route_and_error() {
    let gw = start_default().await;
    let doc: Value = gw
        .http
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = gw
                .http
                .request(method.clone(), format!("{}{}", gw.url, concrete(path)))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body.contains("no such route"),
                "{method} {path} is documented but not routed"
            );
            let public = operation["security"] == json!([]);
            if !public {
                assert_eq!(status, 401, "{method} {path} must need a token");
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} documents its 401"
                );
            } else if operation["requestBody"].is_object() {
                // A public route with a body (console sign-in): refused without one.
                assert_eq!(status, 415, "{method} {path}");
            } else {
                assert_eq!(status, 200, "{method} {path}");
            }
        }
    }
    assert_eq!(operations, 74);
    let text = doc.to_string();
    for code in ErrorCode::ALL {
        assert!(
            text.contains(code.as_str()),
            "{} is documented",
            code.as_str()
        );
    }
    let groups = &doc["paths"]["/groups"]["post"];
    for status in [
        "200", "201", "400", "401", "409", "413", "415", "422", "500", "502", "503", "504",
    ] {
        assert!(
            groups["responses"][status].is_object(),
            "POST /groups documents {status}"
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["CreateGroupRequest"]["properties"]["name"]["maxLength"],
        100
    );
    gw.stop().await;
}

#[tokio::test]
async fn docs_page_is_self_contained() {
    let gw = start_default().await;
    let response = gw
        .http
        .get(format!("{}/docs", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    for external in ["src=\"http", "href=\"http", "@import", "cdn"] {
        assert!(
            !html.contains(external),
            "the page loads nothing from elsewhere: {external}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let gw = start_default().await;
    let url = format!("{}/healthz", gw.url);
    let response = gw
        .http
        .get(&url)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = gw
        .http
        .get(&url)
        .header("x-request-id", "bad id")
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(made.len(), 32);
    let response = gw
        .http
        .get(format!("{}/nowhere", gw.url))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    gw.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let gw = start_default().await;
    let (status, body) = status_json(
        gw.http
            .get(format!("{}/nowhere", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = status_json(
        gw.http
            .put(format!("{}/groups", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    assert_eq!(body["success"], false);
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_ends_event_streams() {
    let mut gw = start_default().await;
    let user = gw.connected_user().await;
    let events = gw
        .admin(Method::GET, &format!("/admin/users/{}/events", user.id))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    gw.devices.hold_groups();
    let request = gw.groups(&user.token).json(&json!({"name": "late"})).send();
    let in_flight = tokio::spawn(request);
    // Stop only once the request has reached the device; it answers after the stop began.
    gw.devices.group_call_arrived().await;
    gw.begin_stop();
    gw.devices.release_groups();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 201, "the in-flight request completes");
    gw.wait_stopped().await;
    // The event stream ended, so the server could stop.
    let rest = tokio::time::timeout(Duration::from_secs(2), events.bytes())
        .await
        .expect("stream ends");
    assert!(rest.is_ok());
    assert_eq!(gw.devices.calls().last(), Some(&Call::Shutdown));
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", gw.url))
        .send()
        .await;
    assert!(refused.is_err(), "no longer accepting");
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let gw = start_default().await;
    for i in 0..50 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        gw.http
            .request(method, format!("{}/healthz", gw.url))
            .send()
            .await
            .unwrap();
    }
    let text = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(
        text.contains(
            "wuts_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"} 50"
        ),
        "{text}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn every_rejection_uses_the_json_envelope() {
    let gw = start_default().await;
    for (method, path) in [
        (Method::GET, "/admin/users/%FF"),
        (Method::GET, "/admin/users/%FF/qr"),
        (Method::DELETE, "/admin/users/%C3%28"),
        (Method::GET, "/no/such/route"),
        (Method::PUT, "/groups"),
    ] {
        let response = gw.admin(method.clone(), path).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert!(body["error_code"].is_string(), "{method} {path}: {body}");
        assert_eq!(body["success"], false, "{method} {path}: {body}");
    }
    gw.stop().await;
}
