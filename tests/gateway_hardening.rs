//! The gateway against slow and greedy clients: partial headers are cut off, a flood of
//! connections leaves the admin API and probes reachable, a shutdown ends within its deadline
//! whatever clients do, and idempotency records cannot grow without bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::time::Duration;

use gateway_support::{FakeGateway, WAIT, start, status_json};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wuts::http::{GatewayConfig, ServerLimits};

fn limits(max_connections: usize, reserved_connections: usize) -> GatewayConfig {
    GatewayConfig {
        limits: ServerLimits {
            header_read_timeout: Duration::from_millis(300),
            max_connections,
            reserved_connections,
            shutdown_deadline: Duration::from_millis(300),
        },
        ..GatewayConfig::default()
    }
}

/// A connection that sends half a request header and then nothing.
async fn slow_client(gw: &FakeGateway) -> TcpStream {
    let addr = gw.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// Waits until the server has closed `stream` (EOF or reset), within [`WAIT`].
async fn closed_by_server(mut stream: TcpStream) {
    let mut buf = [0u8; 256];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a 408 or similar before closing is fine
            }
        }
    })
    .await
    .expect("the server closes a connection that never finishes its header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_are_cut_off_and_probes_stay_reachable() {
    let gw = start(limits(4, 4)).await;
    let user = gw.connected_user().await;
    // Fill every normal slot with clients that never finish their header.
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_client(&gw).await);
    }
    tokio::time::timeout(WAIT, async {
        while gw.state.open_connections() < 4 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the slow clients are connected");

    // Past the cap, a fresh connection still reaches the probes and the admin API ...
    let fresh = reqwest::Client::new();
    let health = fresh
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // ... while other routes are turned away with the envelope.
    let (status, body) = status_json(
        fresh
            .post(format!("{}/groups", gw.url))
            .bearer_auth(&user.token)
            .json(&json!({"name": "busy"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (503, Some("SERVER_BUSY"))
    );
    assert!(gw.devices.group_calls().is_empty());

    // The slow clients are cut off by the header timeout; then service is normal again.
    for stream in slow {
        closed_by_server(stream).await;
    }
    drop(fresh);
    // Back under the cap (the harness's own pooled connection may stay open).
    tokio::time::timeout(WAIT, async {
        while gw.state.open_connections() >= 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slow clients' connections are released");
    let (status, body) = gw.create(&user.token, json!({"name": "calm"})).await;
    assert_eq!(status, 201, "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_every_slot_a_connection_is_closed_at_once() {
    let gw = start(limits(2, 1)).await;
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(slow_client(&gw).await);
    }
    tokio::time::timeout(WAIT, async {
        while gw.state.open_connections() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("three slow clients are connected");
    let extra = slow_client(&gw).await;
    closed_by_server(extra).await;
    assert!(gw.state.open_connections() <= 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_deadline_whatever_clients_do() {
    let mut gw = start(limits(16, 4)).await;
    let user = gw.connected_user().await;
    let slow = slow_client(&gw).await;
    gw.devices.hold_groups();
    let request = gw
        .groups(&user.token)
        .json(&json!({"name": "stuck"}))
        .send();
    let stuck = tokio::spawn(request);
    gw.devices.group_call_arrived().await;
    gw.begin_stop();
    // The request held at the device answers 503 once the deadline passes, and the server
    // stops although a client never finished its header and the device never answered.
    let (status, body) = status_json(stuck.await.unwrap().unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (503, Some("SHUTTING_DOWN")),
        "{body}"
    );
    gw.wait_stopped().await;
    closed_by_server(slow).await;
    gw.devices.release_groups();
}

#[tokio::test]
async fn idempotency_records_are_capped_per_user_and_purged() {
    let config = GatewayConfig {
        idempotency_keys_per_user: 3,
        ..GatewayConfig::default()
    };
    let gw = start(config).await;
    let user = gw.connected_user().await;
    let other = gw.connected_user().await;
    for i in 0..3 {
        assert_eq!(
            keyed(&gw, &user.token, format!("k{i}"))
                .await
                .unwrap()
                .status(),
            201
        );
    }
    let (status, body) = status_json(keyed(&gw, &user.token, "k3".into()).await.unwrap()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error_code"], "TOO_MANY_IDEMPOTENCY_KEYS", "{body}");
    // A replay of a held key, a request without a key, and another user are unaffected.
    assert_eq!(
        keyed(&gw, &user.token, "k0".into()).await.unwrap().status(),
        201
    );
    let (status, _) = gw.create(&user.token, json!({"name": "unkeyed"})).await;
    assert_eq!(status, 201);
    assert_eq!(
        keyed(&gw, &other.token, "k0".into())
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        gw.devices.group_calls().len(),
        5,
        "the refused key sent nothing"
    );
    gw.stop().await;

    // Expired records are purged on the sweep's schedule, and their places come back.
    let config = GatewayConfig {
        idempotency_keys_per_user: 2,
        idempotency_ttl: Duration::ZERO,
        idempotency_sweep_every: Duration::from_millis(20),
        ..GatewayConfig::default()
    };
    let gw = start(config).await;
    let user = gw.connected_user().await;
    let mut accepted = 0;
    tokio::time::timeout(WAIT, async {
        for i in 0.. {
            let response = keyed(&gw, &user.token, format!("p{i}")).await.unwrap();
            if response.status() == 201 {
                accepted += 1;
            }
            if accepted == 6 {
                return;
            }
            // Polling the sweep's schedule, not ordering anything.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("purged places are given back");
    assert!(gw.store.count_responses(&user_id(&user.id)).unwrap() <= 2);
    gw.stop().await;
}

async fn keyed(gw: &FakeGateway, token: &str, key: String) -> reqwest::Result<reqwest::Response> {
    gw.groups(token)
        .header("Idempotency-Key", key)
        .json(&json!({"name": "k"}))
        .send()
        .await
}

fn user_id(id: &str) -> wuts_store::gateway::UserId {
    wuts_store::gateway::UserId::new(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let gw = start(limits(16, 4)).await;
    let addr = gw.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then nothing more is sent: the idle connection is closed.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes an idle keep-alive connection");
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    gw.stop().await;
}
