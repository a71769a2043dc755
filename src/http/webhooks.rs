//! Webhook routes (user token; the admin's twins under `/admin/users/{id}/webhook` act for any
//! user): `POST /webhook` and `GET /webhook` (one device's configuration, `?device_id=`),
//! `POST /user/webhook` (the user's own, used by every device without one), `GET
//! /webhook/events`, `GET /webhook/deliveries`, `POST /webhook/deliveries/{id}/redeliver`.
//!
//! The rules (URLs, events, headers, secrets) live in [`crate::events::webhook`]; this module
//! reads the JSON's shape. A secret the gateway generates is in the response that created it
//! and never again; it is never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wuts_store::gateway::User;
use wuts_store::gateway::outbox::WebhookScope;

use super::admin::load_user;
use super::auth::{AdminAuth, UserAuth};
use super::body::JsonBody;
use super::devices::resolve;
use super::error::rfc3339;
use super::validate::Object;
use super::{ApiError, AppState, durably, unix_now};
use crate::events::webhook::{
    self, DEFAULT_RETRY_ATTEMPTS, DEFAULT_TIMEOUT_SECS, MAX_RETRY_ATTEMPTS, MAX_TIMEOUT_SECS,
    WebhookConfig,
};
use crate::events::{DeliveryRecord, EventName};

const FIELDS: [&str; 8] = [
    "webhook_url",
    "enabled_events",
    "enabled",
    "retry_attempts",
    "timeout",
    "secret",
    "headers",
    "device_id",
];

/// Most deliveries one page lists.
const MAX_PAGE: usize = 200;

/// `?device_id=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeQuery {
    device_id: Option<String>,
}

/// `GET /webhook/deliveries` filters.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    device_id: Option<String>,
    status: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

fn read<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
}

/// A configuration as the API shows it (never the secret).
fn view(config: &WebhookConfig, scope: &str, device_id: Option<&str>) -> Value {
    json!({
        "id": config.id,
        "scope": scope,
        "device_id": device_id,
        "webhook_url": config.webhook_url,
        "enabled_events": config.enabled_events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "enabled": config.enabled,
        "retry_attempts": config.retry_attempts,
        "timeout": config.timeout,
        "headers": config.headers,
        "created_at": rfc3339(config.created_at),
        "updated_at": rfc3339(config.updated_at),
    })
}

/// Reads a configuration body over `previous` (an update keeps the secret unless a new one
/// is given). `all_events` applies when the body names none (the user's own webhook).
fn read_config(
    state: &AppState,
    body: &Value,
    previous: Option<WebhookConfig>,
    all_events: bool,
) -> Result<(WebhookConfig, Option<String>), ApiError> {
    let mut object = Object::new(body, &FIELDS).map_err(ApiError::Validation)?;
    let url = object
        .string("webhook_url")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let events: Vec<String> = match object.get("enabled_events") {
        None if all_events => EventName::ALL
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        None => {
            object.push("enabled_events", "is required");
            Vec::new()
        }
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect::<Vec<_>>(),
        Some(_) => {
            object.push("enabled_events", "must be an array of event names");
            Vec::new()
        }
    };
    if let Some(Value::Array(items)) = object.get("enabled_events") {
        if items.iter().any(|v| !v.is_string()) {
            object.push("enabled_events", "must be an array of event names");
        }
    }
    let enabled = match object.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            object.push("enabled", "must be true or false");
            true
        }
    };
    let number = |object: &mut Object<'_>, key: &str, default: u32, range: (u32, u32)| match object
        .get(key)
    {
        None => default,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (range.0..=range.1).contains(&n) => n,
            _ => {
                object.push(
                    key,
                    format!("must be an integer from {} to {}", range.0, range.1),
                );
                default
            }
        },
    };
    let retry_attempts = number(
        &mut object,
        "retry_attempts",
        DEFAULT_RETRY_ATTEMPTS,
        (0, MAX_RETRY_ATTEMPTS),
    );
    let timeout = number(
        &mut object,
        "timeout",
        DEFAULT_TIMEOUT_SECS,
        (1, MAX_TIMEOUT_SECS),
    );
    let secret = object.optional_string("secret").map(str::to_owned);
    let mut headers = BTreeMap::new();
    match object.get("headers") {
        None => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                match value.as_str() {
                    Some(value) => {
                        headers.insert(name.clone(), value.to_owned());
                    }
                    None => object.push(&format!("headers.{name}"), "must be a string"),
                }
            }
        }
        Some(_) => object.push("headers", "must be an object of header names to strings"),
    }
    let mut violations = std::mem::take(&mut object.violations);
    let check = |violations: &mut Vec<super::Violation>, result: Result<(), webhook::Invalid>| {
        if let Err(e) = result {
            violations.push(super::Violation::new(e.field, e.message));
        }
    };
    if !url.is_empty() {
        check(
            &mut violations,
            webhook::check_url(&url, state.config.webhooks.allow_private),
        );
    }
    let enabled_events = match webhook::check_events(&events) {
        Ok(events) => events,
        Err(e) => {
            if !(events.is_empty() && violations.iter().any(|v| v.field == "enabled_events")) {
                violations.push(super::Violation::new(e.field, e.message));
            }
            Vec::new()
        }
    };
    check(&mut violations, webhook::check_headers(&headers));
    if let Some(secret) = &secret {
        check(&mut violations, webhook::check_secret(secret));
    }
    if !violations.is_empty() {
        return Err(ApiError::Validation(violations));
    }
    let now = unix_now();
    let (generated, secret) = match (secret, &previous) {
        (Some(given), _) => (None, given),
        (None, Some(previous)) => (None, previous.secret.clone()),
        (None, None) => {
            let secret = webhook::generate_secret(rand::random());
            (Some(secret.clone()), secret)
        }
    };
    let config = WebhookConfig {
        id: previous
            .as_ref()
            .map(|p| p.id.clone())
            .unwrap_or_else(|| format!("wh_{}", uuid::Uuid::new_v4().simple())),
        webhook_url: url,
        enabled_events,
        enabled,
        retry_attempts,
        timeout,
        secret,
        headers,
        created_at: previous.as_ref().map_or(now, |p| p.created_at),
        updated_at: now,
    };
    Ok((config, generated))
}

fn stored(
    state: &AppState,
    user: &User,
    scope: WebhookScope,
) -> Result<Option<WebhookConfig>, ApiError> {
    Ok(state
        .store
        .outbox()
        .webhook(&user.id, scope)?
        .and_then(|b| WebhookConfig::decode(&b)))
}

async fn save(
    state: &Arc<AppState>,
    user: &User,
    scope: WebhookScope,
    config: &WebhookConfig,
) -> Result<(), ApiError> {
    let (id, bytes) = (user.id.clone(), config.encode());
    durably(state, move |store| {
        store.outbox().save_webhook(&id, scope, Some(&bytes))
    })
    .await
}

/// Sets one device's webhook.
async fn configure_device(
    state: &Arc<AppState>,
    user: &User,
    device_id: Option<&str>,
    body: &Value,
) -> Result<Json<Value>, ApiError> {
    let device_id = device_id.or_else(|| body.get("device_id").and_then(Value::as_str));
    let device = resolve(state, user, device_id).await?;
    let scope = WebhookScope::Device(device.device);
    let previous = stored(state, user, scope)?;
    let (config, generated) = read_config(state, body, previous, false)?;
    save(state, user, scope, &config).await?;
    let mut webhook = view(&config, "device", Some(device.id.as_str()));
    if let Some(secret) = generated {
        webhook["secret"] = Value::String(secret);
    }
    Ok(Json(json!({
        "success": true,
        "message": "Webhook configured successfully",
        "webhook": webhook,
    })))
}

/// Shows the webhook that applies to a device: its own, else the user's.
fn show_device(
    state: &Arc<AppState>,
    user: &User,
    device: &wuts_store::gateway::GatewayDevice,
) -> Result<Json<Value>, ApiError> {
    let own = stored(state, user, WebhookScope::Device(device.device))?;
    let (config, scope) = match own {
        Some(config) => (config, "device"),
        None => match stored(state, user, WebhookScope::User)? {
            Some(config) => (config, "user"),
            None => {
                return Err(ApiError::NotFound(
                    "no webhook is configured for this device".into(),
                ));
            }
        },
    };
    Ok(Json(
        json!({"success": true, "webhook": view(&config, scope, Some(device.id.as_str()))}),
    ))
}

/// `POST /webhook`.
pub(crate) async fn configure(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    q: Result<Query<ScopeQuery>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let q = read(q)?;
    configure_device(&state, &user, q.device_id.as_deref(), &body).await
}

/// `GET /webhook`.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    q: Result<Query<ScopeQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = read(q)?;
    let device = resolve(&state, &user, q.device_id.as_deref()).await?;
    show_device(&state, &user, &device)
}

/// `POST /user/webhook`: the user's own webhook, all events unless it names some.
pub(crate) async fn configure_user(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    set_user_webhook(&state, &user, &body).await
}

async fn set_user_webhook(
    state: &Arc<AppState>,
    user: &User,
    body: &Value,
) -> Result<Json<Value>, ApiError> {
    if body.get("device_id").is_some() {
        return Err(ApiError::invalid(
            "device_id",
            "the user's webhook applies to every device; use POST /webhook for one",
        ));
    }
    let previous = stored(state, user, WebhookScope::User)?;
    let (config, generated) = read_config(state, body, previous, true)?;
    save(state, user, WebhookScope::User, &config).await?;
    let mut data = json!({
        "webhook_url": config.webhook_url,
        "available_events": config.enabled_events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "events_count": config.enabled_events.len(),
        "webhook": view(&config, "user", None),
    });
    if let Some(secret) = generated {
        data["secret"] = Value::String(secret);
    }
    Ok(Json(json!({
        "success": true,
        "message": "Webhook URL configured. It will be applied to every device without a webhook of its own",
        "data": data,
    })))
}

/// `GET /webhook/events`.
pub(crate) async fn event_names(_: UserAuth) -> Json<Value> {
    let events: Vec<&str> = EventName::ALL.iter().map(|e| e.as_str()).collect();
    Json(json!({"success": true, "events": events, "events_count": events.len()}))
}

async fn list_deliveries(
    state: &Arc<AppState>,
    user: &User,
    q: DeliveryQuery,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = status {
        if !["pending", "retrying", "delivered", "dead", "skipped"].contains(&s) {
            return Err(ApiError::invalid(
                "status",
                "must be pending, retrying, delivered, dead or skipped",
            ));
        }
    }
    let device = match q.device_id.as_deref() {
        Some(id) => Some(resolve(state, user, Some(id)).await?.id.as_str().to_owned()),
        None => None,
    };
    let (id, before, status) = (
        user.id.clone(),
        q.before.unwrap_or(u64::MAX),
        status.map(str::to_owned),
    );
    let records = durably(state, move |store| {
        let mut out = Vec::new();
        let mut cursor = before;
        // Filters drop records; read on until the page is full or the log ends.
        loop {
            let page = store.outbox().deliveries(&id, cursor, MAX_PAGE)?;
            let Some((last, _)) = page.last() else { break };
            cursor = *last;
            for (_, bytes) in page {
                let Some(record) = DeliveryRecord::decode(&bytes) else {
                    continue;
                };
                if record.id.is_empty() {
                    continue;
                }
                let wanted = status.as_deref().is_none_or(|s| {
                    serde_json::to_value(record.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .as_deref()
                        == Some(s)
                }) && device
                    .as_deref()
                    .is_none_or(|d| record.device_id.as_deref() == Some(d));
                if wanted {
                    out.push(record);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    })
    .await?;
    let next = if records.len() == limit {
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(
        json!({"success": true, "deliveries": records, "next_before": next}),
    ))
}

/// `GET /webhook/deliveries`: newest first; `?before=<seq>` pages on.
pub(crate) async fn deliveries(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    list_deliveries(&state, &user, read(q)?).await
}

async fn redeliver_for(
    state: &Arc<AppState>,
    user: &User,
    id: String,
) -> Result<Json<Value>, ApiError> {
    let (hub, user_id) = (state.events.clone(), user.id.clone());
    let wanted = id.clone();
    let record = durably(state, move |_| hub.redeliver(&user_id, &wanted)).await?;
    match record {
        Some(record) => Ok(Json(
            json!({"success": true, "message": "Delivery queued", "delivery": record}),
        )),
        None => Err(ApiError::NotFound(format!("no delivery {id:?}"))),
    }
}

/// `POST /webhook/deliveries/{id}/redeliver` (`id`: the event id or its sequence number).
pub(crate) async fn redeliver(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    redeliver_for(&state, &user, id).await
}

/// `POST /admin/users/{id}/webhook` (`?device_id=`; without one and with `"scope": "user"`
/// absent, the device's).
pub(crate) async fn admin_configure(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    q: Result<Query<ScopeQuery>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    configure_device(&state, &user, read(q)?.device_id.as_deref(), &body).await
}

/// `GET /admin/users/{id}/webhook`.
pub(crate) async fn admin_show(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    q: Result<Query<ScopeQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    let device = resolve(&state, &user, read(q)?.device_id.as_deref()).await?;
    show_device(&state, &user, &device)
}

/// `POST /admin/users/{id}/user-webhook`: the user's own webhook, set by the admin.
pub(crate) async fn admin_configure_user(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    set_user_webhook(&state, &user, &body).await
}

/// `GET /admin/users/{id}/webhook/deliveries`.
pub(crate) async fn admin_deliveries(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    list_deliveries(&state, &user, read(q)?).await
}

/// `POST /admin/users/{id}/webhook/deliveries/{delivery}/redeliver`.
pub(crate) async fn admin_redeliver(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &id)?;
    redeliver_for(&state, &user, delivery).await
}
