//! The HTTP gateway: a thin axum layer over [`Devices`]. Each handler extracts, calls one
//! device or store method, and maps the result; [`ApiError`] is the one table of statuses.
//!
//! - `POST /groups` (per-user token): `groups.rs`, with validation in `validate.rs` and
//!   `Idempotency-Key` handling in `idempotency.rs`.
//! - `/admin/...` (admin token): tenants, users, pairing, QR codes, events (`admin.rs`,
//!   `events.rs`, `qr.rs`).
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs` (`ops.rs`, `metrics.rs`,
//!   `openapi.rs`).
//!
//! This module must not touch the engine, stanzas, Noise or sled: devices are reached only
//! through [`Devices`], storage only through [`GatewayStore`].

mod admin;
mod admin_devices;
mod auth;
mod backup;
mod body;
mod communities;
mod console;
mod devices;
mod docs;
pub mod error;
mod events;
mod forward;
mod group_admin;
mod group_bodies;
mod group_join;
mod group_picture;
mod groups;
mod idempotency;
mod listing;
mod metrics;
mod middleware;
mod openapi;
mod openapi_communities;
mod openapi_devices;
mod openapi_events;
mod openapi_groups;
mod openapi_paircode;
mod openapi_routes;
mod openapi_schemas;
mod ops;
mod paircode;
mod process_metrics;
mod qr;
mod server;
mod stream;
pub mod validate;
mod webhooks;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wuts_store::gateway::{GatewayStore, TokenHash};

pub use self::auth::{hash_token, resolve_admin_token};
pub use self::error::{ApiError, ErrorCode, Violation};
pub use self::forward::ForwardSettings;
use self::idempotency::InFlight;
use self::metrics::Metrics;
pub use self::openapi::openapi_document;
pub use self::server::ServerLimits;
use crate::client::api::Devices;
use crate::events::EventHub;
pub use crate::events::deliver_settings::WebhookSettings;
use crate::events::ticket::Tickets;

/// How `POST /groups` shapes its responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStyle {
    /// Document 000 (the WUTS gateway): `{success, group{...}}` and
    /// `{success: false, error, error_code, timestamp}`.
    #[default]
    Wuts,
    /// Document 002 (a gateway on port 7001): `{status, code, message, data{...}}` and
    /// `{status: false, code, message, error}`.
    Status,
}

impl FromStr for ResponseStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wuts" => Ok(ResponseStyle::Wuts),
            "status" => Ok(ResponseStyle::Status),
            other => Err(format!(
                "unknown response style {other:?} (expected wuts or status)"
            )),
        }
    }
}

/// Where the in-process sandbox listens, for `GET /admin/sandbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxInfo {
    /// The WhatsApp-compatible websocket every device connects to.
    pub ws_url: String,
    /// The sandbox's control API (the simulated phone that scans QR codes, fault injection).
    pub control_url: String,
}

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Envelope of `POST /groups` responses.
    pub response_style: ResponseStyle,
    /// Largest accepted request body, in bytes. A group request with 1,024 phone numbers is
    /// about 40 KiB, so 64 KiB leaves room and still refuses junk early.
    pub body_limit: usize,
    /// How long a response stored for an `Idempotency-Key` is replayed.
    pub idempotency_ttl: Duration,
    /// How long a request waits for another one with the same `Idempotency-Key` to finish
    /// before answering `IDEMPOTENCY_KEY_IN_USE`: a little over WhatsApp's reply timeout, so a
    /// waiter normally sees the first attempt end.
    pub idempotency_wait: Duration,
    /// Set in sandbox mode.
    pub sandbox: Option<SandboxInfo>,
    /// Connection limits, timeouts and the shutdown deadline.
    pub limits: ServerLimits,
    /// Idempotency records a user may hold at once; keyed requests beyond it answer 429.
    pub idempotency_keys_per_user: usize,
    /// How often expired idempotency records are purged.
    pub idempotency_sweep_every: Duration,
    /// Webhook delivery: retries, and whether private targets are allowed.
    pub webhooks: WebhookSettings,
    /// Cluster mode: the node's lease. `/readyz` answers 503 while the node does not hold it
    /// (it then serves no device), and `/metrics` reports it.
    pub cluster_lease: Option<watch::Receiver<crate::node::LeaseStatus>>,
    /// Cluster mode: devices started here and handed away, for `/metrics`.
    pub cluster_moves: Option<Arc<crate::node::follow::Moves>>,
    /// Cluster mode: forward calls for devices other nodes run.
    pub forward: Option<ForwardSettings>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            response_style: ResponseStyle::Wuts,
            body_limit: 64 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
            idempotency_wait: Duration::from_secs(80),
            sandbox: None,
            limits: ServerLimits::default(),
            idempotency_keys_per_user: 10_000,
            idempotency_sweep_every: Duration::from_secs(10 * 60),
            webhooks: WebhookSettings::default(),
            cluster_lease: None,
            cluster_moves: None,
            forward: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// The device registry.
    pub devices: Arc<dyn Devices>,
    /// Tenants, users, tokens, idempotency records.
    pub store: Arc<dyn GatewayStore>,
    /// Settings.
    pub config: GatewayConfig,
    admin_token: TokenHash,
    metrics: Metrics,
    in_flight: InFlight,
    quota: idempotency::Quota,
    stopping: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// Set when the shutdown deadline passes: in-flight requests answer 503 at once.
    hard_stop: watch::Sender<bool>,
    connections: server::Connections,
    /// The event pipeline: outbox, webhook deliveries, live streams.
    pub events: EventHub,
    tickets: Tickets,
    /// The console's signed-in browsers.
    sessions: console::session::Sessions,
}

impl AppState {
    /// Builds the state; `admin_token` is the hash from [`resolve_admin_token`].
    pub fn new(
        devices: Arc<dyn Devices>,
        store: Arc<dyn GatewayStore>,
        config: GatewayConfig,
        admin_token: TokenHash,
    ) -> Arc<Self> {
        process_metrics::mark_start();
        let events = EventHub::new(store.clone(), devices.clone(), config.webhooks.clone());
        let sessions = console::session::Sessions::new(store.clone());
        Arc::new(Self {
            devices,
            store,
            events,
            tickets: Tickets::new(rand::random()),
            config,
            admin_token,
            metrics: Metrics::default(),
            in_flight: InFlight::default(),
            quota: idempotency::Quota::default(),
            stopping: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            hard_stop: watch::channel(false).0,
            connections: server::Connections::default(),
            sessions,
        })
    }

    /// Requests holding or waiting for an `Idempotency-Key` right now (a retry waits for the
    /// first attempt with the same key).
    pub fn requests_on_idempotency_keys(&self) -> usize {
        self.in_flight.requests()
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Marks the gateway as stopping: `/readyz` fails and event streams end, so the server's
    /// graceful shutdown is not held open by long-lived connections.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// The shutdown deadline passed: whatever still runs answers 503 now.
    fn hard_stop(&self) {
        self.hard_stop.send_replace(true);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Every route of the gateway. `openapi.rs` documents the same list; a test checks that each
/// documented route answers.
pub fn router(state: Arc<AppState>) -> Router {
    let groups = Router::new()
        .route("/groups", post(groups::create_group).get(group_admin::list))
        .route("/groups/join", post(group_join::join))
        .route(
            "/groups/{jid}",
            get(group_admin::show).patch(group_admin::update),
        )
        .route(
            "/groups/{jid}/participants",
            post(group_admin::add_participants).delete(group_admin::remove_participants),
        )
        .route("/groups/{jid}/invite", get(group_admin::invite_link))
        .route(
            "/groups/{jid}/invite/reset",
            post(group_admin::reset_invite),
        )
        .route("/groups/{jid}/ephemeral", put(group_admin::ephemeral))
        .route("/groups/{jid}/leave", delete(group_admin::leave))
        .route(
            "/groups/{jid}/requests",
            get(group_join::requests).post(group_join::decide_requests),
        )
        .route(
            "/groups/{jid}/picture",
            post(group_picture::set).layer(DefaultBodyLimit::max(group_picture::BODY_LIMIT)),
        )
        .route("/communities", post(communities::create))
        .route(
            "/communities/{jid}/participants",
            post(communities::add_participants).delete(communities::remove_participants),
        )
        .route(
            "/communities/{jid}/groups",
            get(communities::groups).post(communities::link),
        )
        .route(
            "/communities/{jid}/groups/{group_jid}",
            delete(communities::unlink),
        )
        .route("/devices", post(devices::create).get(devices::list))
        .route("/devices/{id}", delete(devices::remove))
        .route("/user/devices", get(devices::mine))
        .route("/status", get(devices::status))
        .route("/connect", post(devices::connect))
        .route("/disconnect", post(devices::disconnect))
        .route("/logout", post(devices::logout))
        .route("/qr", get(devices::qr_code))
        .route("/qr/status", get(devices::qr_status))
        .route("/paircode", post(paircode::user_pair_code))
        .route("/webhook", post(webhooks::configure).get(webhooks::show))
        .route("/user/webhook", post(webhooks::configure_user))
        .route("/webhook/events", get(webhooks::event_names))
        .route("/webhook/deliveries", get(webhooks::deliveries))
        .route(
            "/webhook/deliveries/{id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/events", get(stream::stream_user))
        .route("/events/ticket", post(stream::issue_ticket))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::restyle_errors,
        ));
    let admin = Router::new()
        .route(
            "/admin/tenants",
            post(admin::create_tenant).get(listing::list_tenants),
        )
        .route(
            "/admin/users",
            post(admin::create_user).get(listing::list_users),
        )
        .route(
            "/admin/users/{id}",
            get(admin::show_user).delete(admin::delete_user),
        )
        .route("/admin/users/{id}/token", post(admin::rotate_token))
        .route("/admin/users/{id}/pair", post(admin::pair))
        .route(
            "/admin/users/{id}/paircode",
            post(paircode::admin_user_pair_code),
        )
        .route("/admin/users/{id}/devices", get(admin_devices::list))
        .route("/admin/devices/{id}/pair", post(admin_devices::pair))
        .route("/admin/devices/{id}/qr", get(admin_devices::show_qr))
        .route(
            "/admin/devices/{id}/paircode",
            post(paircode::admin_device_pair_code),
        )
        .route(
            "/admin/devices/{id}/events",
            get(admin_devices::stream_events),
        )
        .route("/admin/devices/{id}/logout", post(admin_devices::logout))
        .route("/admin/users/{id}/connect", post(admin::connect))
        .route("/admin/users/{id}/disconnect", post(admin::disconnect))
        .route("/admin/users/{id}/logout", post(admin::logout))
        .route("/admin/users/{id}/qr", get(qr::show_qr))
        .route("/admin/users/{id}/events", get(events::stream_events))
        .route(
            "/admin/users/{id}/webhook",
            post(webhooks::admin_configure).get(webhooks::admin_show),
        )
        .route(
            "/admin/users/{id}/user-webhook",
            post(webhooks::admin_configure_user),
        )
        .route(
            "/admin/users/{id}/webhook/deliveries",
            get(webhooks::admin_deliveries),
        )
        .route(
            "/admin/users/{id}/webhook/deliveries/{delivery}/redeliver",
            post(webhooks::admin_redeliver),
        )
        .route("/admin/sandbox", get(admin::sandbox))
        .route("/admin/backup", post(backup::backup));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .merge(docs::routes());
    Router::new()
        .merge(groups)
        .merge(admin)
        .merge(ops)
        .merge(console::routes())
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::forward,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::admission,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::envelope_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(axum::middleware::from_fn(console::security_headers))
        .with_state(state)
}

/// Cluster mode: serves the same API on the node's forwarding address (other nodes send the
/// calls for this node's devices there, signed), until the gateway begins to stop.
fn serve_rpc(listener: TcpListener, state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let mut stop = state.shutdown.subscribe();
    let app = router(state);
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(%error, "the forwarding listener failed");
        }
    })
}

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully: stop
/// accepting, end event streams, finish in-flight requests, close every device connection,
/// flush the store. Also sweeps expired idempotency records every hour while running.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_rpc(listener, None, state, shutdown).await
}

/// [`serve`], plus cluster mode's forwarding listener: at shutdown both stop accepting and
/// both finish their in-flight requests (within the shutdown deadline) before any device is
/// closed, so a request another node forwarded here gets its outcome too.
pub async fn serve_with_rpc(
    listener: TcpListener,
    rpc: Option<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(idempotency::sweep_forever(state.clone()));
    state.events.start();
    let rpc = rpc.map(|rpc| serve_rpc(rpc, state.clone()));
    let result = server::run(listener, state.clone(), router(state.clone()), shutdown).await;
    sweeper.abort();
    // An aborted task is dropped later unless awaited; it holds the state (and the store).
    let _ = sweeper.await;
    let deadline = state.config.limits.shutdown_deadline;
    if let Some(rpc) = rpc
        && tokio::time::timeout(deadline, rpc).await.is_err()
    {
        tracing::warn!("forwarded requests did not all finish within the shutdown deadline");
    }
    // Devices close cleanly, within the same deadline: a dead link must not hold the exit.
    if tokio::time::timeout(deadline, state.devices.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("devices did not all close within the shutdown deadline");
    }
    // After the devices: their last events (disconnected) are written before the flush.
    state.events.stop().await;
    if let Err(error) = state.store.flush_gateway() {
        tracing::error!(%error, "final store flush failed");
    }
    tracing::info!("stopped");
    result
}

/// Runs a durable store write (it ends in an fsync) on the blocking pool, not on the async
/// workers that serve every other request.
pub(crate) async fn durably<T: Send + 'static>(
    state: &Arc<AppState>,
    write: impl FnOnce(&dyn GatewayStore) -> Result<T, wuts_store::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    match tokio::task::spawn_blocking(move || write(state.store.as_ref())).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
