//! Pairing by phone-number code: `POST /paircode {phone}` (user token) and the admin's
//! `POST /admin/users/{id}/paircode` and `POST /admin/devices/{device_id}/paircode`.
//!
//! The phone number is checked (10 to 15 digits after normalisation) before anything is sent.
//! A code still valid for the same number is answered from the cache (`cached: true`) unless a
//! refresh is asked for (`?refresh=true`, or its aliases `force_refresh` / `force_new`, or
//! `reuse_cache: false` in the body); a new one replaces it on the open pairing connection.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wuts_store::DeviceId;

use super::admin::load_user;
use super::auth::{AdminAuth, UserAuth};
use super::body::JsonBody;
use super::devices::resolve;
use super::error::{rfc3339, violations};
use super::validate::Object;
use super::{ApiError, AppState, ErrorCode, admin_devices, unix_now};
use crate::client::api::{DeviceState, PairCodeInfo};

/// How long a request waits for WhatsApp to accept the code (connect, `pair-device`, hello).
const CODE_WAIT: Duration = Duration::from_secs(30);
/// Where the code is typed.
const INSTRUCTIONS: &str = "Enter this code in WhatsApp on the phone: Settings > Linked devices > \
    Link a device > Link with phone number instead";

/// `?refresh=` and its aliases, and `?device_id=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeQuery {
    device_id: Option<String>,
    refresh: Option<bool>,
    force_refresh: Option<bool>,
    force_new: Option<bool>,
}

impl CodeQuery {
    fn refresh(&self) -> bool {
        [self.refresh, self.force_refresh, self.force_new]
            .into_iter()
            .any(|f| f == Some(true))
    }
}

/// The body: `phone`, and for the user route `device_id` and `reuse_cache`.
struct CodeBody {
    phone: String,
    device_id: Option<String>,
    reuse_cache: bool,
}

fn read_body(body: &Value, user_route: bool) -> Result<CodeBody, ApiError> {
    let known: &[&str] = if user_route {
        &["phone", "device_id", "reuse_cache"]
    } else {
        &["phone"]
    };
    let mut object = Object::new(body, known).map_err(ApiError::Validation)?;
    let phone = object.string("phone").map(str::to_owned);
    let device_id = object.optional_string("device_id").map(str::to_owned);
    // Reusing a valid code is the default; only an explicit `false` asks for a new one.
    let reuse_cache = object.get("reuse_cache").is_none() || object.flag("reuse_cache");
    match phone.filter(|_| object.violations.is_empty()) {
        Some(phone) => Ok(CodeBody {
            phone,
            device_id,
            reuse_cache,
        }),
        None => Err(ApiError::Validation(object.violations)),
    }
}

/// A code for `device` and `phone`: the cached one, or a new one once WhatsApp accepted it.
pub(crate) async fn issue(
    state: &AppState,
    device: DeviceId,
    phone: &str,
    reuse: bool,
) -> Result<(PairCodeInfo, bool), ApiError> {
    let phone = crate::ops::paircode::phone(phone)
        .map_err(|e| ApiError::Validation(violations(vec![e])))?;
    let status = state.devices.status(device)?;
    let digits = phone.as_jid().user.to_string();
    if reuse && status.state == DeviceState::Pairing {
        if let Some(code) = status.pair_code.filter(|c| c.phone == digits) {
            if code.expires_at > unix_now() {
                return Ok((code, true));
            }
        }
    }
    let code = tokio::time::timeout(CODE_WAIT, state.devices.pair_code(device, phone))
        .await
        .map_err(|_| ApiError::Conflict {
            code: ErrorCode::DeviceNotPairing,
            message: "no pairing code came: WhatsApp did not accept the request in time (see \
                      GET /status)"
                .to_owned(),
        })??;
    Ok((code, false))
}

fn view(code: &PairCodeInfo, cached: bool) -> Value {
    json!({
        "code": code.code,
        "phone": code.phone,
        "expires_in": code.expires_at.saturating_sub(unix_now()),
        "expires_at": rfc3339(code.expires_at),
        "cached": cached,
        "instructions": INSTRUCTIONS,
    })
}

fn query(q: Result<Query<CodeQuery>, QueryRejection>) -> Result<CodeQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
}

/// `POST /paircode {phone, device_id?, reuse_cache?}`.
pub(crate) async fn user_pair_code(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    q: Result<Query<CodeQuery>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let body = read_body(&body, true)?;
    let named = body.device_id.as_deref().or(q.device_id.as_deref());
    let device = resolve(&state, &user, named).await?;
    let reuse = body.reuse_cache && !q.refresh();
    let (code, cached) = issue(&state, device.device, &body.phone, reuse).await?;
    let mut data = view(&code, cached);
    data["device_id"] = json!(device.id.as_str());
    Ok(Json(json!({"success": true, "data": data})))
}

/// `POST /admin/users/{id}/paircode {phone}`: the user's first device.
pub(crate) async fn admin_user_pair_code(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    q: Result<Query<CodeQuery>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let body = read_body(&body, false)?;
    let user = load_user(&state, &id)?;
    let (code, cached) = issue(&state, user.device, &body.phone, !q.refresh()).await?;
    Ok(Json(view(&code, cached)))
}

/// `POST /admin/devices/{device_id}/paircode {phone}`.
pub(crate) async fn admin_device_pair_code(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    q: Result<Query<CodeQuery>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let body = read_body(&body, false)?;
    let device = admin_devices::find(&state, &id)?;
    let (code, cached) = issue(&state, device.device, &body.phone, !q.refresh()).await?;
    let mut data = view(&code, cached);
    data["device_id"] = json!(device.id.as_str());
    Ok(Json(data))
}
