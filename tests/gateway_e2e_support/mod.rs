//! The gateway wired as `wuts serve --sandbox` wires it, for end-to-end tests: the in-process
//! sandbox on loopback, a real `SledStore` in a temp dir, the real device [`Registry`] over it
//! (restored at start), `AppState` and `wuts::http::serve` on 127.0.0.1:0, driven over real
//! HTTP with reqwest. Waits are bounded by [`WAIT`]; nothing sleeps a fixed time.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::http::{AppState, GatewayConfig, ResponseStyle, SandboxInfo};
use wuts::sim::{Sandbox, SandboxConfig, SandboxHandle};
use wuts_store::SledStore;
use wuts_store::gateway::GatewayStore;

/// Upper bound of every wait on an event or a response.
pub const WAIT: Duration = Duration::from_secs(30);
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

pub async fn sandbox(seed: u64) -> SandboxHandle {
    Sandbox::start(SandboxConfig {
        seed: Some(seed),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// How a gateway is started.
#[derive(Clone, Debug)]
pub struct Options {
    pub style: ResponseStyle,
    /// The engine's IQ timeout (short in tests that provoke a timeout).
    pub iq_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            style: ResponseStyle::Wuts,
            iq_timeout: Duration::from_secs(15),
        }
    }
}

/// The registry's settings as `wuts serve` builds them (`build_devices`), pointed at the
/// sandbox. Debug builds generate pre-keys slowly, so the first batch is smaller than WA Web's
/// 812, and reconnects back off briefly.
pub fn client_config(sim: &SandboxHandle, iq_timeout: Duration) -> ClientConfig {
    ClientConfig {
        ws_url: sim.ws_url(),
        engine: Arc::new(EngineConfig {
            trusted_root: sim.root_public_key(),
            iq_timeout,
            pre_key_batch: (50, 50),
            ..EngineConfig::default()
        }),
        backoff: (Duration::from_millis(50), Duration::from_millis(500)),
        ..ClientConfig::default()
    }
}

/// A gateway serving over HTTP in front of the real registry.
pub struct Gateway {
    pub url: String,
    pub http: reqwest::Client,
    pub registry: Registry,
    pub store: Arc<SledStore>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Opens the store in `data`, restores the registry and serves, as `wuts serve` does.
pub async fn start(sim: &SandboxHandle, data: &Path, options: Options) -> Gateway {
    let store = Arc::new(SledStore::open(data).expect("store opens"));
    let registry = Registry::new(store.clone(), client_config(sim, options.iq_timeout));
    registry.restore().expect("devices restored");
    let gateway_store: Arc<dyn GatewayStore> = store.clone();
    let (admin, _) =
        wuts::http::resolve_admin_token(gateway_store.as_ref(), Some(ADMIN_TOKEN)).unwrap();
    let config = GatewayConfig {
        response_style: options.style,
        sandbox: Some(SandboxInfo {
            ws_url: sim.ws_url(),
            control_url: sim.control_url(),
        }),
        ..GatewayConfig::default()
    };
    let state = AppState::new(Arc::new(registry.clone()), gateway_store, config, admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(wuts::http::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Gateway {
        url,
        http: reqwest::Client::new(),
        registry,
        store,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A user created through the admin API.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub token: String,
}

impl Gateway {
    /// Graceful shutdown: in-flight requests finish, every device closes, the store flushes.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("gateway stops in time")
                .unwrap()
                .unwrap();
        }
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn admin_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self.admin(method, path).json(&body).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn tenant(&self, name: &str) -> String {
        let tenant = self
            .admin_json(
                reqwest::Method::POST,
                "/admin/tenants",
                json!({ "name": name }),
            )
            .await;
        tenant["id"].as_str().unwrap().to_owned()
    }

    /// A user in `tenant_id`, not paired.
    pub async fn user_in(&self, tenant_id: &str, name: &str) -> User {
        let user = self
            .admin_json(
                reqwest::Method::POST,
                "/admin/users",
                json!({ "tenant_id": tenant_id, "name": name }),
            )
            .await;
        User {
            id: user["id"].as_str().unwrap().to_owned(),
            tenant_id: tenant_id.to_owned(),
            token: user["token"].as_str().unwrap().to_owned(),
        }
    }

    /// `GET /admin/users/{id}`.
    pub async fn show_user(&self, user: &User) -> Value {
        self.admin(reqwest::Method::GET, &format!("/admin/users/{}", user.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Opens the user's event stream.
    pub async fn events(&self, user: &User) -> Events {
        let response = self
            .admin(
                reqwest::Method::GET,
                &format!("/admin/users/{}/events", user.id),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Events {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// Pairs the user's device to `phone` over the admin API and the sandbox's phone, reading
    /// the event stream: it must say `state` (unpaired), `qr`, `paired`, `connected`, in that
    /// order. Returns the device JID.
    pub async fn pair(&self, sim: &SandboxHandle, user: &User, phone: &str) -> String {
        let mut events = self.events(user).await;
        let (name, state) = events.next().await;
        assert_eq!(
            (name.as_str(), state["state"].as_str()),
            ("state", Some("unpaired"))
        );

        let response = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/users/{}/pair", user.id),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let (name, qr) = events.next().await;
        assert_eq!(name, "qr", "{qr}");
        let code = qr["code"].as_str().unwrap().to_owned();
        // The same code is served by GET /qr.
        let shown: Value = self
            .admin(
                reqwest::Method::GET,
                &format!("/admin/users/{}/qr", user.id),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["code"], code.as_str());

        let paired = sim.scan(&code, phone).await.expect("the phone scans");
        let (name, data) = events.next().await;
        assert_eq!(name, "paired", "{data}");
        assert_eq!(data["jid"], paired.jid.as_str());
        let (name, data) = events.next().await;
        assert_eq!(name, "connected", "{data}");

        let shown = self.show_user(user).await;
        assert_eq!(shown["state"], "connected");
        assert_eq!(shown["jid"], paired.jid.as_str());
        paired.jid
    }

    /// Waits until the user's device is connected (after a restart).
    pub async fn connected(&self, user: &User) {
        let mut events = self.events(user).await;
        let (name, state) = events.next().await;
        assert_eq!(name, "state");
        if state["state"] != "connected" {
            events.wait_for("connected").await;
        }
    }

    pub fn groups(&self, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/groups", self.url))
            .bearer_auth(token)
    }

    /// `POST /groups` with a JSON body: status and JSON answer.
    pub async fn create(&self, token: &str, body: Value) -> (u16, Value) {
        status_json(self.groups(token).json(&body).send().await.unwrap()).await
    }
}

/// A response's status and JSON body.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    (status, body)
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// A server-sent event stream, read event by event.
pub struct Events {
    stream: ByteStream,
    buffer: String,
}

impl Events {
    /// The next event's name and JSON data (keep-alive comments are skipped).
    pub async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Some(name) = name {
                    return (name, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips events until one named `name`; returns its data.
    pub async fn wait_for(&mut self, name: &str) -> Value {
        loop {
            let (got, data) = self.next().await;
            if got == name {
                return data;
            }
        }
    }
}
