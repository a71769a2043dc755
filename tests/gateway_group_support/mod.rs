//! What the group end-to-end tests share: two paired accounts (Ana, who creates, and Bruno, a
//! member) on a gateway over the in-process sandbox, a request helper, the event wait and the
//! sandbox's control API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

use serde_json::{Value, json};
use wuts::http::ResponseStyle;
use wuts::sim::SandboxHandle;

use crate::gateway_e2e_support::{E2eGateway, Events, Options, User, sandbox, start, status_json};

pub const ANA: &str = "5511999990000";
pub const BRUNO: &str = "5511888880000";

pub fn pn(phone: &str) -> String {
    format!("{phone}@s.whatsapp.net")
}

/// A request with the user's token; `body` is sent as JSON when given.
pub async fn call(
    gw: &E2eGateway,
    user: &User,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = gw
        .http
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(&user.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    status_json(request.send().await.unwrap()).await
}

pub fn expect_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
}

/// Waits for the next `group` event of `kind` on a device's stream.
pub async fn group_event(events: &mut Events, kind: &str) -> Value {
    loop {
        let data = events.wait_for("group").await;
        if data["kind"] == kind {
            return data;
        }
    }
}

pub struct World {
    pub sim: SandboxHandle,
    pub gw: E2eGateway,
    pub ana: User,
    pub bruno: User,
    _dir: tempfile::TempDir,
}

pub async fn world(seed: u64, style: ResponseStyle) -> World {
    let sim = sandbox(seed).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        &sim,
        dir.path(),
        Options {
            style,
            ..Options::default()
        },
    )
    .await;
    let tenant = gw.tenant("Padaria").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let bruno = gw.user_in(&tenant, "Bruno").await;
    gw.pair(&sim, &ana, ANA).await;
    gw.pair(&sim, &bruno, BRUNO).await;
    World {
        sim,
        gw,
        ana,
        bruno,
        _dir: dir,
    }
}

/// Ana's group with Bruno and Carla (a number nobody paired).
pub async fn team(w: &World) -> String {
    let (status, body) =
        w.gw.create(
            &w.ana.token,
            json!({"name": "Team", "participants": [BRUNO, "5511777770000"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["group"]["jid"].as_str().unwrap().to_owned()
}

/// POSTs JSON to the sandbox's control API.
pub async fn control(sim: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.control_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(response).await
}
