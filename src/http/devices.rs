//! The WUTS device and session routes (user token): a user's devices, and each device's
//! pairing QR code, status, connect, disconnect and logout, in the hosted WUTS API's shapes.
//!
//! Every route takes an optional `device_id` (query): omitted, it is the user's only device;
//! with several, 400 `DEVICE_ID_REQUIRED`. A device of another user is 404, as if it did not
//! exist. A user created before devices had names gets its registry slot listed as `default`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use wuts_store::gateway::{GatewayDevice, GatewayDeviceId, User};

use super::auth::UserAuth;
use super::body::JsonBody;
use super::error::rfc3339;
use super::validate::Object;
use super::{ApiError, AppState, ErrorCode, durably, qr, unix_now};
use crate::client::api::{DeviceEvent, DeviceId, DeviceState, DeviceStatus, Placement};

/// How long `GET /qr` waits for the first code of a pairing it started.
const FIRST_QR_WAIT: Duration = Duration::from_secs(20);
/// Longest device name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// `?device_id=` and the flags some routes take.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceQuery {
    device_id: Option<String>,
    refresh: Option<bool>,
    purge: Option<bool>,
}

fn query(q: Result<Query<DeviceQuery>, QueryRejection>) -> Result<DeviceQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
}

/// The device the request names (or the caller's only one) and the query's flags: what every
/// single-device route starts from.
pub(crate) struct Target {
    pub(crate) device: GatewayDevice,
    query: DeviceQuery,
}

impl FromRequestParts<Arc<AppState>> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let UserAuth(user) = UserAuth::from_request_parts(parts, state).await?;
        let q = Query::<DeviceQuery>::from_request_parts(parts, state).await;
        let query = query(q)?;
        let device = resolve(state, &user, query.device_id.as_deref()).await?;
        Ok(Target { device, query })
    }
}

/// `{success, data{message, device_id}}`.
fn done(message: &str, device: &GatewayDevice) -> Json<Value> {
    Json(json!({"success": true, "data": {"message": message, "device_id": device.id.as_str()}}))
}

/// The user's devices, oldest first; a user without any gets its registry slot as `default`.
///
/// The default device's id is the user's id, so concurrent first requests all record the same
/// device: the losers of the race see `Duplicate` and read the winner's record.
pub(crate) async fn devices_of(
    state: &Arc<AppState>,
    user: &User,
) -> Result<Vec<GatewayDevice>, ApiError> {
    let mut devices = state.store.gateway_devices(&user.id)?;
    if !devices.is_empty() {
        // Devices created within the same second as the user's first slot tie on their
        // timestamps; the first slot stays first.
        devices.sort_by_key(|d| d.device != user.device);
        return Ok(devices);
    }
    let default = GatewayDevice {
        id: GatewayDeviceId::new(user.id.as_str())?,
        user: user.id.clone(),
        name: "default".to_owned(),
        device: user.device,
        created_at: user.created_at,
    };
    let saved = default.clone();
    let added = durably(state, move |store| match store.add_gateway_device(&saved) {
        Ok(()) => Ok(true),
        Err(wuts_store::Error::Duplicate { .. }) => Ok(false),
        Err(other) => Err(other),
    })
    .await?;
    if added {
        Ok(vec![default])
    } else {
        Ok(state.store.gateway_devices(&user.id)?)
    }
}

/// The device a request names, or the user's only one.
pub(crate) async fn resolve(
    state: &Arc<AppState>,
    user: &User,
    device_id: Option<&str>,
) -> Result<GatewayDevice, ApiError> {
    let mut devices = devices_of(state, user).await?;
    let device = match device_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => devices
            .into_iter()
            .find(|d| d.id.as_str() == id)
            .ok_or_else(|| ApiError::NotFound(format!("no device {id:?}")))?,
        None if devices.len() == 1 => devices.remove(0),
        None => return Err(ApiError::DeviceIdRequired),
    };
    here(state, device.device).await?;
    Ok(device)
}

/// Cluster mode: fails with [`ApiError::NotHere`] (which the forwarding middleware turns into
/// a forward to the owner) unless this node runs `device`, so a handler finds out before it
/// changes anything. A request forwarded here already is not sent on again.
pub(crate) async fn here(state: &AppState, device: DeviceId) -> Result<(), ApiError> {
    match state.devices.locate(device).await {
        Placement::Here => Ok(()),
        Placement::Failover { retry_after } => Err(ApiError::DeviceFailover {
            retry_after_secs: retry_after.as_secs().max(1),
        }),
        Placement::Owner { .. } if super::forward::is_forwarded() => {
            Err(ApiError::DeviceFailover {
                retry_after_secs: 1,
            })
        }
        Placement::Owner { .. } => Err(ApiError::NotHere(device)),
    }
}

fn status_of(state: &AppState, device: &GatewayDevice) -> Result<DeviceStatus, ApiError> {
    Ok(state.devices.status(device.device)?)
}

/// A device in `GET /devices` and `POST /devices`.
pub(crate) fn view(state: &AppState, device: &GatewayDevice) -> Result<Value, ApiError> {
    let status = status_of(state, device)?;
    let created = rfc3339(device.created_at);
    Ok(json!({
        "id": device.id.as_str(),
        "user_id": device.user.as_str(),
        "name": device.name,
        "whatsapp_jid": status.jid.as_ref().map(|j| j.to_non_device().to_string()),
        "connected": status.state == DeviceState::Connected,
        "status": status.state.as_str(),
        "last_seen": status.last_seen.map(rfc3339),
        "created_at": created,
        "updated_at": created,
    }))
}

/// `POST /devices {name}`: a new device for the caller, not paired yet.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut object = Object::new(&body, &["name"]).map_err(ApiError::Validation)?;
    let name = object.string("name").map(str::trim).unwrap_or_default();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        object.push(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        );
    }
    if !object.violations.is_empty() {
        return Err(ApiError::Validation(object.violations));
    }
    devices_of(&state, &user).await?; // a user's first slot keeps its place, oldest first
    let slot = state.devices.create().await?;
    let device = GatewayDevice {
        id: GatewayDeviceId::new(uuid::Uuid::new_v4().to_string())?,
        user: user.id.clone(),
        name: name.to_owned(),
        device: slot,
        created_at: unix_now(),
    };
    let saved = device.clone();
    durably(&state, move |store| store.add_gateway_device(&saved)).await?;
    tracing::info!(user = %user.id, device = %device.id, "device created");
    let body = json!({"success": true, "device": view(&state, &device)?});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /devices`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
) -> Result<Json<Value>, ApiError> {
    listing(&state, &user).await
}

/// The user's devices, oldest first, as `GET /devices` and `GET /admin/users/{id}/devices`
/// list them.
pub(crate) async fn listing(state: &Arc<AppState>, user: &User) -> Result<Json<Value>, ApiError> {
    let devices = devices_of(state, user)
        .await?
        .iter()
        .map(|d| view(state, d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"success": true, "devices": devices})))
}

/// `GET /user/devices`.
pub(crate) async fn mine(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
) -> Result<Json<Value>, ApiError> {
    let devices = devices_of(&state, &user).await?;
    let listed = devices
        .iter()
        .map(|d| {
            let status = status_of(&state, d)?;
            Ok(json!({
                "id": d.id.as_str(),
                "name": d.name,
                "connected": status.state == DeviceState::Connected,
                "status": status.state.as_str(),
                "last_seen": status.last_seen.map(rfc3339),
                "created_at": rfc3339(d.created_at),
            }))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(json!({"success": true, "data": {
        "devices": listed, "count": devices.len(), "user_id": user.id.as_str(),
    }})))
}

/// `DELETE /devices/{id}`: disconnects (the credentials stay); with `?purge=true` logs out and
/// forgets the device. A user's first device is only logged out by a purge: a user always
/// keeps one slot.
pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    Path(id): Path<String>,
    q: Result<Query<DeviceQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let device = resolve(&state, &user, Some(&id)).await?;
    if !q.purge.unwrap_or(false) {
        state.devices.disconnect(device.device).await?;
        return Ok(Json(
            json!({"success": true, "message": "Device disconnected"}),
        ));
    }
    if device.device == user.device {
        state.devices.logout(device.device).await?;
        return Ok(Json(
            json!({"success": true, "message": "Device logged out (a user's first device stays)"}),
        ));
    }
    state.devices.remove(device.device).await?;
    let (owner, id) = (user.id.clone(), device.id.clone());
    durably(&state, move |store| {
        store.remove_gateway_device(&owner, &id)
    })
    .await?;
    Ok(Json(
        json!({"success": true, "message": "Device logged out and deleted"}),
    ))
}

/// `GET /status`: always 200 for a known device.
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Json<Value>, ApiError> {
    let status = status_of(&state, &device)?;
    let account = status.jid.as_ref().map(|j| j.to_non_device());
    Ok(Json(json!({"success": true, "data": {
        "connected": status.state == DeviceState::Connected,
        "status": status.state.as_str(),
        "device_id": device.id.as_str(),
        "jid": account.as_ref().map(ToString::to_string),
        "phone_number": account.as_ref().map(|j| j.user.to_string()),
        "is_logged_in": status.state == DeviceState::Connected,
        "last_seen": status.last_seen.map(rfc3339),
        "reason": status.reason.as_ref().map(|r| json!({"code": r.code, "message": r.message})),
    }})))
}

/// `POST /connect`: reconnects with the stored credentials; `needs_qr` when there are none.
pub(crate) async fn connect(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Json<Value>, ApiError> {
    let needs_qr = match state.devices.connect(device.device).await {
        Ok(()) => false,
        Err(crate::client::api::Error::NotPaired) => true,
        Err(e) => return Err(e.into()),
    };
    let status = status_of(&state, &device)?;
    Ok(Json(json!({"success": true, "data": {
        "status": status.state.as_str(), "device_id": device.id.as_str(), "needs_qr": needs_qr,
    }})))
}

/// `POST /disconnect`: drops the connection, keeps the credentials (offline until `connect`,
/// across restarts too).
pub(crate) async fn disconnect(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Json<Value>, ApiError> {
    state.devices.disconnect(device.device).await?;
    Ok(done("device disconnected successfully", &device))
}

/// `POST /logout`: removes the companion on WhatsApp's side and wipes its credentials.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Json<Value>, ApiError> {
    state.devices.logout(device.device).await?;
    Ok(done("device logged out successfully", &device))
}

/// `GET /qr`: the current pairing code (starting pairing if needed, and waiting for its first
/// code); `refresh=true` starts over with fresh codes. Refused for a paired device.
pub(crate) async fn qr_code(
    State(state): State<Arc<AppState>>,
    Target {
        device, query: q, ..
    }: Target,
) -> Result<Json<Value>, ApiError> {
    let mut events = state.devices.subscribe(device.device)?;
    let status = status_of(&state, &device)?;
    let refresh = q.refresh.unwrap_or(false);
    let cached = match (&status.qr, status.state) {
        (Some(qr), DeviceState::Pairing) if !refresh => Some(qr.clone()),
        _ => None,
    };
    let (qr, cached) = match cached {
        Some(qr) => (qr, true),
        None => {
            if refresh && status.state == DeviceState::Pairing {
                state.devices.disconnect(device.device).await?;
            }
            match state.devices.pair(device.device).await {
                Ok(()) => {}
                // Pairing already, its first code not out yet: wait for it below.
                Err(crate::client::api::Error::Pairing) => {}
                Err(e) => return Err(e.into()),
            }
            let first = tokio::time::timeout(FIRST_QR_WAIT, async {
                loop {
                    match events.recv().await {
                        Ok(DeviceEvent::Qr(qr)) => return Some(qr),
                        Ok(DeviceEvent::Error { .. } | DeviceEvent::PairingFailed { .. }) => {
                            return None;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return None,
                    }
                }
            })
            .await
            .ok()
            .flatten();
            let qr = first.ok_or_else(|| ApiError::Conflict {
                code: ErrorCode::DeviceNotPairing,
                message: "no QR code came: the device could not start pairing (see GET /status)"
                    .to_owned(),
            })?;
            (qr, false)
        }
    };
    let image = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(qr::png(&qr)?)
    );
    Ok(Json(json!({"success": true, "data": {
        "qr_code": qr.code,
        "image": image,
        "cached": cached,
        "expires_at": rfc3339(qr.expires_at),
        "ttl": qr.ttl.as_secs(),
        "device_id": device.id.as_str(),
    }})))
}

/// `GET /qr/status`: whether a QR code is on show.
pub(crate) async fn qr_status(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Json<Value>, ApiError> {
    let status = status_of(&state, &device)?;
    let qr = status.qr.filter(|_| status.state == DeviceState::Pairing);
    Ok(Json(json!({"success": true, "data": {
        "exists": qr.is_some(),
        "generated_at": qr.map(|q| rfc3339(q.expires_at.saturating_sub(q.ttl.as_secs()))),
        "device_id": device.id.as_str(),
    }})))
}
