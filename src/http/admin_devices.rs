//! The admin's device-level routes: a user's devices (`GET /admin/users/{id}/devices`) and one
//! device by its id (`/admin/devices/{device_id}/pair|qr|paircode|events|logout`), for users
//! with several devices; the `/admin/users/{id}/...` routes keep acting on a user's first one.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use wuts_store::gateway::GatewayDevice;

use super::admin::load_user;
use super::auth::AdminAuth;
use super::devices::{self, view};
use super::qr::QrQuery;
use super::{ApiError, AppState, events, qr};

/// The device with this id, whoever owns it.
pub(crate) fn find(state: &AppState, id: &str) -> Result<GatewayDevice, ApiError> {
    for user in state.store.users()? {
        if let Some(device) = state
            .store
            .gateway_devices(&user.id)?
            .into_iter()
            .find(|d| d.id.as_str() == id)
        {
            return Ok(device);
        }
    }
    Err(ApiError::NotFound(format!("no device {id:?}")))
}

/// `GET /admin/users/{id}/devices`: the user's devices, oldest first.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    devices::listing(&state, &user).await
}

/// `POST /admin/devices/{device_id}/pair`: starts pairing by QR code.
pub(crate) async fn pair(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let device = find(&state, &id)?;
    state.devices.pair(device.device).await?;
    let status = state.devices.status(device.device)?;
    let body = json!({
        "device_id": device.id.as_str(),
        "state": status.state.as_str(),
        "qr_url": format!("/admin/devices/{}/qr", device.id),
        "events_url": format!("/admin/devices/{}/events", device.id),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /admin/devices/{device_id}/qr`: as `/admin/users/{id}/qr`.
pub(crate) async fn show_qr(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    query: Result<Query<QrQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let device = find(&state, &id)?;
    let pair = format!("/admin/devices/{}/pair", device.id);
    qr::respond(&state, device.device, query, &pair)
}

/// `GET /admin/devices/{device_id}/events`: as `/admin/users/{id}/events`.
pub(crate) async fn stream_events(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let device = find(&state, &id)?;
    events::device_stream(&state, device.device)
}

/// `POST /admin/devices/{device_id}/logout`: logs out on WhatsApp and wipes the credentials;
/// the device stays, ready to pair again.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let device = find(&state, &id)?;
    state.devices.logout(device.device).await?;
    tracing::info!(device = %device.id, "device logged out");
    Ok(Json(
        json!({"success": true, "device": view(&state, &device)?}),
    ))
}
