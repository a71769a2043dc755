//! Forwarding between two nodes on loopback: a signed call reaches the owner with its device,
//! epoch, deadline and the caller's headers; a forwarder with another secret, a replay past its
//! deadline and a loop are refused by the owner; an owner that is down fails fast, and one that
//! hangs is cut at the caller's deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use serde_json::{Value, json};
use wuts::cluster::forward::{ClusterSecret, ForwardMeta};
use wuts::node::forward::{ForwardError, Outgoing, check_forwarded, forward, unix_ms};

fn secret(byte: u8) -> ClusterSecret {
    ClusterSecret::new(vec![byte; 32]).unwrap()
}

/// The owner: checks every call and echoes what it received.
async fn owner(
    State(secret): State<ClusterSecret>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match check_forwarded(&secret, &method, path, &headers, &body, unix_ms()) {
        Ok(meta) => (
            StatusCode::OK,
            json!({
                "forwarded": meta.map(|m| json!({"device": m.device, "epoch": m.epoch, "hops": m.hops})),
                "idempotency_key": headers.get("idempotency-key").map(|v| v.to_str().unwrap()),
                "authorization": headers.get("authorization").map(|v| v.to_str().unwrap()),
                "body": String::from_utf8_lossy(&body),
            })
            .to_string(),
        ),
        Err(refusal) => (StatusCode::UNAUTHORIZED, refusal.to_string()),
    }
}

async fn start(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn request() -> Outgoing {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer user-token".parse().unwrap());
    headers.insert("idempotency-key", "k-1".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-forwarded-for", "10.0.0.9".parse().unwrap());
    Outgoing {
        method: Method::POST,
        path: "/groups?device_id=d1".into(),
        headers,
        body: Bytes::from_static(b"{\"name\":\"Loja\"}"),
    }
}

fn meta(hops: u8, in_ms: u64) -> ForwardMeta {
    ForwardMeta {
        device: 7,
        epoch: 3,
        deadline_ms: unix_ms() + in_ms,
        hops,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_reach_the_owner_and_others_are_refused() {
    let addr = start(
        Router::new()
            .route("/groups", post(owner))
            .with_state(secret(1)),
    )
    .await;
    let answer = forward(&secret(1), addr, &request(), &meta(1, 5_000))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body["forwarded"],
        json!({"device": 7, "epoch": 3, "hops": 1})
    );
    assert_eq!(body["idempotency_key"], "k-1");
    assert_eq!(body["authorization"], "Bearer user-token");
    assert_eq!(body["body"], "{\"name\":\"Loja\"}");

    // Another cluster's secret, a loop, and a deadline already past are refused.
    let stranger = forward(&secret(2), addr, &request(), &meta(1, 5_000))
        .await
        .unwrap();
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&stranger.body).contains("signature"));
    let looped = forward(&secret(1), addr, &request(), &meta(2, 5_000))
        .await
        .unwrap();
    assert_eq!(looped.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&looped.body).contains("hop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owner_fails_fast_and_a_hung_one_at_the_deadline() {
    // Nothing listens on a port we just released.
    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead = forward(&secret(1), free, &request(), &meta(1, 5_000)).await;
    assert!(
        matches!(dead, Err(ForwardError::Connect { .. })),
        "{dead:?}"
    );

    let hung = start(
        Router::new().route(
            "/groups",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
            .merge(get(|| async { "" })),
        ),
    )
    .await;
    let late = forward(&secret(1), hung, &request(), &meta(1, 300)).await;
    assert!(matches!(late, Err(ForwardError::Timeout)), "{late:?}");
}
