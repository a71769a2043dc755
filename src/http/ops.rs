//! Operations endpoints, without auth: liveness, readiness, Prometheus metrics, the OpenAPI
//! document (its docs page is `docs/`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, openapi};

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: ready for traffic (storage answers and the gateway is not stopping).
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_stopping() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stopping" })),
        )
            .into_response();
    }
    if let Some(lease) = &state.config.cluster_lease
        && !lease.borrow().serving
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "no cluster lease" })),
        )
            .into_response();
    }
    if let Err(error) = state.store.admin_token() {
        tracing::warn!(%error, "readiness check: store unavailable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "store unavailable" })),
        )
            .into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let users = match state.store.users() {
        Ok(users) => users,
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot list users");
            Vec::new()
        }
    };
    let states: Vec<_> = users
        .iter()
        .filter_map(|user| state.devices.status(user.device).ok())
        .map(|status| status.state)
        .collect();
    let mut text = state
        .metrics
        .render(&states, state.devices.stats().reconnects);
    super::process_metrics::render(&mut text);
    state.events.render_metrics(&mut text);
    if let Some(lease) = &state.config.cluster_lease {
        render_lease(&mut text, &lease.borrow());
    }
    if let Some(moves) = &state.config.cluster_moves {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let _ = write!(
            text,
            "# HELP wuts_cluster_devices_adopted_total Devices this node started running (claimed, moved in, restarted in place).\n\
             # TYPE wuts_cluster_devices_adopted_total counter\n\
             wuts_cluster_devices_adopted_total {}\n\
             # HELP wuts_cluster_devices_handed_off_total Devices this node handed to their place on another node.\n\
             # TYPE wuts_cluster_devices_handed_off_total counter\n\
             wuts_cluster_devices_handed_off_total {}\n",
            moves.adopted.load(Relaxed),
            moves.handed_off.load(Relaxed),
        );
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The cluster lease's gauges and counters (cluster mode only).
fn render_lease(text: &mut String, lease: &crate::node::LeaseStatus) {
    use std::fmt::Write as _;
    let _ = write!(
        text,
        "# HELP wuts_cluster_serving Whether this node holds its cluster lease (1) or not (0).\n\
         # TYPE wuts_cluster_serving gauge\n\
         wuts_cluster_serving {}\n\
         # HELP wuts_cluster_self_fences_total Times this node stopped serving because its lease ran out.\n\
         # TYPE wuts_cluster_self_fences_total counter\n\
         wuts_cluster_self_fences_total {}\n\
         # HELP wuts_cluster_failed_renewals_total Lease renewals that failed or timed out.\n\
         # TYPE wuts_cluster_failed_renewals_total counter\n\
         wuts_cluster_failed_renewals_total {}\n\
         # HELP wuts_cluster_lease_renew_seconds Time of successful lease renewals (a round trip to the database).\n\
         # TYPE wuts_cluster_lease_renew_seconds summary\n\
         wuts_cluster_lease_renew_seconds_sum {}\n\
         wuts_cluster_lease_renew_seconds_count {}\n\
         # HELP wuts_cluster_lease_renew_last_seconds Time of the last successful lease renewal.\n\
         # TYPE wuts_cluster_lease_renew_last_seconds gauge\n\
         wuts_cluster_lease_renew_last_seconds {}\n",
        u8::from(lease.serving),
        lease.self_fences,
        lease.failed_renewals,
        lease.renew_micros_total as f64 / 1e6,
        lease.renewals,
        lease.renew_micros_last as f64 / 1e6,
    );
}

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi::openapi_document())
}
