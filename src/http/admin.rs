//! The admin API (admin token): tenants, users and their tokens, pairing, the sandbox's
//! addresses. QR codes are in `qr.rs`, event streams in `events.rs`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use wuts_store::gateway::{Tenant, TenantId, User, UserId};

use super::auth::{AdminAuth, hash_token};
use super::body::JsonBody;
use super::validate::Object;
use super::{ApiError, AppState, durably, unix_now};
use crate::client::api::{DeviceState, Error as ClientError};

/// Longest tenant or user name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A tenant as the API shows it.
#[derive(Serialize)]
pub(crate) struct TenantView {
    id: String,
    name: String,
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name,
        }
    }
}

/// A user just created or with a rotated token: the only time the token is shown.
#[derive(Serialize)]
pub(crate) struct UserWithToken {
    id: String,
    tenant_id: String,
    name: String,
    token: String,
}

/// A user and its device's state.
#[derive(Serialize)]
pub(crate) struct UserView {
    id: String,
    tenant_id: String,
    name: String,
    state: &'static str,
    jid: Option<String>,
    /// With `state: "error"`: what is wrong, as a stable upper-case code
    /// (`CERTIFICATE_INVALID`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    /// Why the device is disconnected, logged out, in error, or back to unpaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<ReasonView>,
}

/// `{"code": "device_removed", "message": "the phone unlinked this device"}`.
#[derive(Serialize)]
pub(crate) struct ReasonView {
    code: &'static str,
    message: String,
}

/// Reads a display name from a body: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control
/// characters. Problems go into the object's violations.
fn name(object: &mut Object<'_>, field: &str) -> Option<String> {
    let name = object.string(field)?.trim();
    let chars = name.chars().count();
    if name.is_empty() || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        object.push(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        );
        return None;
    }
    Some(name.to_owned())
}

/// A fresh API token: a UUID v4 (122 random bits), shown once.
fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Loads the user named in the path; an id that cannot exist is simply not found.
pub(crate) fn load_user(state: &AppState, id: &str) -> Result<User, ApiError> {
    let not_found = || ApiError::NotFound(format!("no user {id:?}"));
    let id = UserId::new(id).map_err(|_| not_found())?;
    state.store.user(&id)?.ok_or_else(not_found)
}

/// A user as the API shows it. Never fails: a device the registry does not know (a store
/// inconsistency) shows as `error`, so one bad device cannot break a listing.
pub(crate) fn user_view(state: &AppState, user: User) -> UserView {
    let (state_name, jid, reason) = match state.devices.status(user.device) {
        Ok(status) => (
            status.state,
            status.jid.map(|jid| jid.to_string()),
            status.reason.map(|r| ReasonView {
                code: r.code,
                message: r.message,
            }),
        ),
        Err(error) => {
            tracing::error!(user = %user.id, device = %user.device, %error, "device unavailable");
            let reason = ReasonView {
                code: "device_missing",
                message: format!("{} is not running in this gateway", user.device),
            };
            (DeviceState::Error, None, Some(reason))
        }
    };
    let error_code = (state_name == DeviceState::Error)
        .then(|| reason.as_ref().map(|r| r.code.to_ascii_uppercase()))
        .flatten();
    UserView {
        id: user.id.to_string(),
        tenant_id: user.tenant.to_string(),
        name: user.name,
        state: state_name.as_str(),
        jid,
        error_code,
        reason,
    }
}

/// `POST /admin/tenants`.
pub(crate) async fn create_tenant(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut object = Object::new(&body, &["name"]).map_err(ApiError::Validation)?;
    let name = name(&mut object, "name");
    let Some(name) = name.filter(|_| object.violations.is_empty()) else {
        return Err(ApiError::Validation(object.violations));
    };
    let tenant = Tenant {
        id: TenantId::new(uuid::Uuid::new_v4().to_string())?,
        name,
        created_at: unix_now(),
    };
    let saved = tenant.clone();
    durably(&state, move |store| store.create_tenant(&saved)).await?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

/// `POST /admin/users`: creates the user's device slot, then the user.
pub(crate) async fn create_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut object = Object::new(&body, &["tenant_id", "name"]).map_err(ApiError::Validation)?;
    let tenant_id = object.string("tenant_id");
    let name = name(&mut object, "name");
    let tenant = match tenant_id {
        Some(id) => TenantId::new(id.trim())
            .ok()
            .map(|id| state.store.tenant(&id))
            .transpose()?
            .flatten(),
        None => None,
    };
    if tenant_id.is_some() && tenant.is_none() {
        object.push("tenant_id", "no such tenant");
    }
    let (Some(name), Some(tenant), true) = (name, tenant, object.violations.is_empty()) else {
        return Err(ApiError::Validation(object.violations));
    };

    let device = state.devices.create().await?;
    let token = new_token();
    let user = User {
        id: UserId::new(uuid::Uuid::new_v4().to_string())?,
        tenant: tenant.id,
        name,
        device,
        token_hash: hash_token(&token),
        created_at: unix_now(),
    };
    let saved = user.clone();
    if let Err(error) = durably(&state, move |store| store.create_user(&saved)).await {
        // Do not leave a device slot nobody can reach.
        if let Err(cleanup) = state.devices.remove(device).await {
            tracing::warn!(error = %cleanup, %device, "could not remove the orphaned device");
        }
        return Err(error);
    }
    tracing::info!(user = %user.id, tenant = %user.tenant, %device, "user created");
    let shown = UserWithToken {
        id: user.id.to_string(),
        tenant_id: user.tenant.to_string(),
        name: user.name,
        token,
    };
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// `GET /admin/users/{id}`.
pub(crate) async fn show_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = load_user(&state, &id)?;
    Ok(Json(user_view(&state, user)))
}

/// `DELETE /admin/users/{id}`: logs the device out and wipes its keys, then forgets the user.
pub(crate) async fn delete_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = load_user(&state, &id)?;
    match state.devices.remove(user.device).await {
        // Already gone (an earlier delete failed half way): finish the job.
        Ok(()) | Err(ClientError::UnknownDevice(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let id = user.id.clone();
    durably(&state, move |store| store.remove_user(&id)).await?;
    tracing::info!(user = %user.id, device = %user.device, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/users/{id}/token`: a new token; the old one stops working at once.
pub(crate) async fn rotate_token(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<UserWithToken>, ApiError> {
    let user = load_user(&state, &id)?;
    let token = new_token();
    let (id, hash) = (user.id.clone(), hash_token(&token));
    let user = durably(&state, move |store| store.set_user_token(&id, &hash)).await?;
    tracing::info!(user = %user.id, "token rotated");
    Ok(Json(UserWithToken {
        id: user.id.to_string(),
        tenant_id: user.tenant.to_string(),
        name: user.name,
        token,
    }))
}

/// What `POST /admin/users/{id}/pair` answers.
#[derive(Serialize)]
pub(crate) struct PairingStarted {
    id: String,
    state: &'static str,
    qr_url: String,
    events_url: String,
}

/// `POST /admin/users/{id}/pair`: starts pairing a device without credentials (never paired,
/// logged out, unlinked, timed out, in error); QR codes follow on `/qr` and `/events`. The
/// user and its token stay as they are.
pub(crate) async fn pair(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = load_user(&state, &id)?;
    state.devices.pair(user.device).await?;
    let status = state.devices.status(user.device)?;
    let started = PairingStarted {
        id: user.id.to_string(),
        state: status.state.as_str(),
        qr_url: format!("/admin/users/{}/qr", user.id),
        events_url: format!("/admin/users/{}/events", user.id),
    };
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}

/// `POST /admin/users/{id}/connect`: connects a paired device now (after it was replaced by
/// another login, disconnected, or parked in error).
pub(crate) async fn connect(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = load_user(&state, &id)?;
    state.devices.connect(user.device).await?;
    Ok((StatusCode::ACCEPTED, Json(user_view(&state, user))).into_response())
}

/// `POST /admin/users/{id}/disconnect`: drops the connection and keeps the credentials; the
/// device stays offline, across restarts too, until `connect`.
pub(crate) async fn disconnect(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = load_user(&state, &id)?;
    state.devices.disconnect(user.device).await?;
    tracing::info!(user = %user.id, device = %user.device, "device disconnected");
    Ok(Json(user_view(&state, user)))
}

/// `POST /admin/users/{id}/logout`: logs the device out on WhatsApp and wipes its credentials;
/// the user, its token and its device id stay, ready to pair again.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = load_user(&state, &id)?;
    state.devices.logout(user.device).await?;
    tracing::info!(user = %user.id, device = %user.device, "device logged out");
    Ok(Json(user_view(&state, user)))
}

/// `GET /admin/sandbox`: where the in-process sandbox listens.
pub(crate) async fn sandbox(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
) -> Result<Response, ApiError> {
    match &state.config.sandbox {
        Some(info) => Ok(Json(info.clone()).into_response()),
        None => Err(ApiError::NotFound(
            "sandbox mode is off (start with --sandbox)".to_owned(),
        )),
    }
}
