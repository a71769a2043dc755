//! The admin API (admin token): tenants, users and their tokens, pairing, the sandbox's
//! addresses. QR codes are in `qr.rs`, event streams in `events.rs`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wuts_store::gateway::{Tenant, TenantId, User, UserId};

use super::auth::{AdminAuth, hash_token};
use super::body::JsonBody;
use super::{ApiError, AppState, Violation, unix_now};
use crate::client::api::Error as ClientError;

/// Longest tenant or user name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// `POST /admin/tenants` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    name: String,
}

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

/// `POST /admin/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    tenant_id: String,
    name: String,
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
}

/// Checks a display name; returns it trimmed.
fn name(name: &str, field: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let chars = name.chars().count();
    if name.is_empty() || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_owned())
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

fn user_view(state: &AppState, user: User) -> Result<UserView, ApiError> {
    let status = state.devices.status(user.device)?;
    Ok(UserView {
        id: user.id.to_string(),
        tenant_id: user.tenant.to_string(),
        name: user.name,
        state: status.state.as_str(),
        jid: status.jid.map(|jid| jid.to_string()),
    })
}

/// `POST /admin/tenants`.
pub(crate) async fn create_tenant(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    JsonBody(body): JsonBody<NewTenant>,
) -> Result<Response, ApiError> {
    let tenant = Tenant {
        id: TenantId::new(uuid::Uuid::new_v4().to_string())?,
        name: name(&body.name, "name")?,
        created_at: unix_now(),
    };
    state.store.create_tenant(&tenant)?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(TenantView::from(tenant))).into_response())
}

/// `GET /admin/tenants`.
pub(crate) async fn list_tenants(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    let tenants = state.store.tenants()?;
    Ok(Json(tenants.into_iter().map(TenantView::from).collect()))
}

/// `POST /admin/users`: creates the user's device slot, then the user.
pub(crate) async fn create_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let name = name(&body.name, "name");
    let tenant = TenantId::new(body.tenant_id.trim())
        .ok()
        .map(|id| state.store.tenant(&id))
        .transpose()?
        .flatten();
    let (name, tenant) = match (name, tenant) {
        (Ok(name), Some(tenant)) => (name, tenant),
        (name, tenant) => {
            let mut violations = match name {
                Err(ApiError::Validation(v)) => v,
                _ => Vec::new(),
            };
            if tenant.is_none() {
                violations.push(Violation::new("tenant_id", "no such tenant"));
            }
            return Err(ApiError::Validation(violations));
        }
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
    if let Err(error) = state.store.create_user(&user) {
        // Do not leave a device slot nobody can reach.
        if let Err(cleanup) = state.devices.remove(device).await {
            tracing::warn!(error = %cleanup, %device, "could not remove the orphaned device");
        }
        return Err(error.into());
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

/// `GET /admin/users`.
pub(crate) async fn list_users(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.users()?;
    let views = users
        .into_iter()
        .map(|user| user_view(&state, user))
        .collect::<Result<_, _>>()?;
    Ok(Json(views))
}

/// `GET /admin/users/{id}`.
pub(crate) async fn show_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = load_user(&state, &id)?;
    Ok(Json(user_view(&state, user)?))
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
    state.store.remove_user(&user.id)?;
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
    let user = state.store.set_user_token(&user.id, &hash_token(&token))?;
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

/// `POST /admin/users/{id}/pair`: starts pairing; QR codes follow on `/qr` and `/events`.
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
