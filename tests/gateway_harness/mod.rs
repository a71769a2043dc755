//! The one gateway test harness: `wuts::http::serve` on 127.0.0.1:0 in front of any
//! [`Devices`] (a recording fake in `gateway_support`, the real registry over the sandbox in
//! `gateway_e2e_support`), driven over real HTTP with reqwest. Waits are bounded by [`WAIT`];
//! nothing sleeps a fixed time.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wuts::client::api::{DeviceId, Devices};
use wuts::http::{AppState, GatewayConfig, hash_token};
use wuts_store::gateway::{GatewayStore, UserId};

/// Upper bound of every wait on an event or a response.
pub const WAIT: Duration = Duration::from_secs(30);
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A gateway serving over HTTP in front of `D`.
pub struct Gateway<D: ?Sized> {
    pub url: String,
    pub http: reqwest::Client,
    pub devices: Arc<D>,
    pub store: Arc<dyn GatewayStore>,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A user created through the admin API.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub token: String,
    pub device: DeviceId,
}

/// Serves `devices` and `store` as `wuts serve` does, with [`ADMIN_TOKEN`].
pub async fn serve<D: Devices>(
    devices: Arc<D>,
    store: Arc<dyn GatewayStore>,
    config: GatewayConfig,
) -> Gateway<D> {
    let (admin, _) = wuts::http::resolve_admin_token(store.as_ref(), Some(ADMIN_TOKEN)).unwrap();
    assert_eq!(admin, hash_token(ADMIN_TOKEN));
    let state = AppState::new(devices.clone(), store.clone(), config, admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(wuts::http::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Gateway {
        url,
        http: reqwest::Client::new(),
        devices,
        store,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl<D: ?Sized> Gateway<D> {
    /// Graceful shutdown: in-flight requests finish, every device closes, the store flushes.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.wait_stopped().await;
    }

    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn wait_stopped(&mut self) {
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

    /// An admin call without a body: status and JSON answer.
    pub async fn admin_call(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        status_json(self.admin(method, path).send().await.unwrap()).await
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

    /// Creates a user in `tenant_id` whose device is not paired.
    pub async fn user_in(&self, tenant_id: &str, name: &str) -> User {
        let user = self
            .admin_json(
                reqwest::Method::POST,
                "/admin/users",
                json!({ "tenant_id": tenant_id, "name": name }),
            )
            .await;
        let id = user["id"].as_str().unwrap().to_owned();
        let device = self
            .store
            .user(&UserId::new(id.clone()).unwrap())
            .unwrap()
            .unwrap()
            .device;
        User {
            id,
            tenant_id: tenant_id.to_owned(),
            token: user["token"].as_str().unwrap().to_owned(),
            device,
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
        self.events_at(&format!("/admin/users/{}/events", user.id))
            .await
    }

    /// Opens an event stream (`/admin/users/{id}/events`, `/admin/devices/{id}/events`).
    pub async fn events_at(&self, path: &str) -> Events {
        let response = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        Events {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
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
    /// Bounded as a whole, not only per chunk (keep-alive comments would otherwise keep a
    /// missing event waited for forever); the panic lists what came instead.
    pub async fn wait_for(&mut self, name: &str) -> Value {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let (got, data) = self.next().await;
                if got == name {
                    return data;
                }
                seen.push(format!("{got}: {data}"));
            }
        })
        .await;
        match found {
            Ok(data) => data,
            Err(_) => panic!("no `{name}` event in time; came instead: {seen:#?}"),
        }
    }
}
