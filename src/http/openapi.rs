//! `/openapi.json`: an OpenAPI 3.1 document built from the route table below and the error
//! table in `error.rs`, so codes and statuses cannot drift from what the handlers return.
//!
//! `router` in `mod.rs` serves the same routes; `tests/gateway_ops.rs` calls every documented
//! route and fails on one the router does not know.

use serde_json::{Map, Value, json};

use super::error::ErrorCode;
use crate::ops::groups::{MAX_DESCRIPTION_CHARS, MAX_GROUP_SIZE, MAX_SUBJECT_CHARS};

/// Who may call a route.
#[derive(Clone, Copy)]
pub(super) enum Auth {
    Public,
    Admin,
    User,
}

/// What a successful call returns.
#[derive(Clone, Copy)]
pub(super) enum Success {
    /// A JSON body of this component schema.
    Json(u16, &'static str, &'static str),
    /// No body.
    Empty(u16, &'static str),
    /// Other media types (with one example schema each), e.g. images.
    Media(u16, &'static str, &'static [(&'static str, &'static str)]),
}

/// Extra parameters besides the `{id}` path parameter (added for every path that has it).
#[derive(Clone, Copy)]
pub(super) enum Param {
    IdempotencyKey,
    QrFormat,
    /// `?device_id=`: which of the user's devices.
    DeviceId,
    /// `?refresh=true`.
    Refresh,
    /// `?purge=true`.
    Purge,
}

pub(super) struct RouteDoc {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) tag: &'static str,
    pub(super) summary: &'static str,
    pub(super) auth: Auth,
    pub(super) request: Option<&'static str>,
    pub(super) params: &'static [Param],
    pub(super) success: &'static [Success],
    pub(super) errors: &'static [ErrorCode],
}

use ErrorCode as E;

/// Every route, in the order the docs page lists them.
const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "post",
        path: "/groups",
        tag: "Groups",
        summary: "Create a WhatsApp group from the caller's device. Participants WhatsApp did not \
                  add are listed in `not_added` with WhatsApp's code and any invite. 201 in the \
                  `wuts` response style, 200 in the `status` style (server setting).",
        auth: Auth::User,
        request: Some("CreateGroupRequest"),
        params: &[Param::IdempotencyKey],
        success: &[
            Success::Json(201, "Group created (`wuts` style)", "CreatedGroup"),
            Success::Json(200, "Group created (`status` style)", "StatusCreatedGroup"),
        ],
        errors: &[
            E::ValidationError,
            E::InvalidJson,
            E::Unauthorized,
            E::DeviceNotPaired,
            E::PayloadTooLarge,
            E::UnsupportedMediaType,
            E::IdempotencyKeyReused,
            E::InternalError,
            E::WhatsappError,
            E::DeviceOffline,
            E::Timeout,
        ],
    },
    RouteDoc {
        method: "post",
        path: "/admin/tenants",
        tag: "Admin",
        summary: "Create a tenant.",
        auth: Auth::Admin,
        request: Some("NewTenant"),
        params: &[],
        success: &[Success::Json(201, "Created", "Tenant")],
        errors: &[
            E::ValidationError,
            E::InvalidJson,
            E::PayloadTooLarge,
            E::UnsupportedMediaType,
            E::Unauthorized,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/admin/tenants",
        tag: "Admin",
        summary: "List tenants.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Tenants", "TenantList")],
        errors: &[E::Unauthorized, E::InternalError],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users",
        tag: "Admin",
        summary: "Create a user with a fresh device slot. The token is shown only here.",
        auth: Auth::Admin,
        request: Some("NewUser"),
        params: &[],
        success: &[Success::Json(201, "Created", "UserWithToken")],
        errors: &[
            E::ValidationError,
            E::InvalidJson,
            E::PayloadTooLarge,
            E::UnsupportedMediaType,
            E::Unauthorized,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/admin/users",
        tag: "Admin",
        summary: "List users with their devices' states.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Users", "UserList")],
        errors: &[E::Unauthorized, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}",
        tag: "Admin",
        summary: "A user, its device's state and (once paired) JID.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The user", "User")],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "delete",
        path: "/admin/users/{id}",
        tag: "Admin",
        summary: "Delete a user: logs its device out and wipes its keys.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Empty(204, "Deleted")],
        errors: &[
            E::Unauthorized,
            E::NotFound,
            E::InternalError,
            E::DeviceOffline,
            E::Timeout,
        ],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/token",
        tag: "Admin",
        summary: "Rotate a user's token; the old one stops working at once.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The new token", "UserWithToken")],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/pair",
        tag: "Pairing",
        summary: "Start pairing the user's device from any state without credentials (never \
                  paired, logged out, unlinked by the phone, timed out, in error); QR codes \
                  follow on /qr and /events. The user and its token stay.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(202, "Pairing started", "PairingStarted")],
        errors: &[
            E::Unauthorized,
            E::NotFound,
            E::DeviceAlreadyPaired,
            E::DevicePairing,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/connect",
        tag: "Pairing",
        summary: "Connect a paired device now: after another login replaced it, after a \
                  disconnect, or when it is parked in `error`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(202, "Connecting", "User")],
        errors: &[
            E::Unauthorized,
            E::NotFound,
            E::DeviceNotPaired,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/disconnect",
        tag: "Pairing",
        summary: "Drop the device's connection and keep its credentials: it stays offline, \
                  across restarts too, until `connect`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Disconnected", "User")],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/logout",
        tag: "Pairing",
        summary: "Log the device out: WhatsApp is told (when connected) and the credentials \
                  are wiped. The user, its token and its device stay; pair again at any time.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Logged out", "User")],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}/qr",
        tag: "Pairing",
        summary: "The current pairing QR code: JSON, or an image (`png`, `svg`) or terminal \
                  text (`txt`).",
        auth: Auth::Admin,
        request: None,
        params: &[Param::QrFormat],
        success: &[Success::Media(
            200,
            "The QR code",
            &[
                ("application/json", "Qr"),
                ("image/png", "Binary"),
                ("image/svg+xml", "Text"),
                ("text/plain", "Text"),
            ],
        )],
        errors: &[
            E::ValidationError,
            E::Unauthorized,
            E::NotFound,
            E::DeviceAlreadyPaired,
            E::DeviceNotPairing,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}/events",
        tag: "Pairing",
        summary: "Server-sent events: `state` first, then `qr`, `pairing_timed_out`, \
                  `pairing_failed`, `paired`, `connected`, `disconnected`, `logged_out`, `error` \
                  (and `lagged`), each with JSON data. Reasons are `{\"reason\": code, \
                  \"message\": sentence}` with a stable snake_case code (`device_removed`, \
                  `certificate_invalid`, `connection_lost`, ...).",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Media(
            200,
            "Event stream",
            &[("text/event-stream", "Text")],
        )],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/admin/sandbox",
        tag: "Admin",
        summary: "Where the in-process sandbox listens (sandbox mode only).",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Sandbox addresses", "SandboxInfo")],
        errors: &[E::Unauthorized, E::NotFound],
    },
    RouteDoc {
        method: "get",
        path: "/healthz",
        tag: "Operations",
        summary: "Liveness.",
        auth: Auth::Public,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Alive", "Health")],
        errors: &[],
    },
    RouteDoc {
        method: "get",
        path: "/readyz",
        tag: "Operations",
        summary: "Readiness: 503 while stopping or when storage fails.",
        auth: Auth::Public,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Ready", "Health")],
        errors: &[],
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        tag: "Operations",
        summary: "Prometheus metrics: devices by state, requests by route and status, WhatsApp \
                  IQ latency, reconnects.",
        auth: Auth::Public,
        request: None,
        params: &[],
        success: &[Success::Media(200, "Metrics", &[("text/plain", "Text")])],
        errors: &[],
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        tag: "Operations",
        summary: "This document.",
        auth: Auth::Public,
        request: None,
        params: &[],
        success: &[Success::Media(
            200,
            "OpenAPI 3.1",
            &[("application/json", "Any")],
        )],
        errors: &[],
    },
    RouteDoc {
        method: "get",
        path: "/docs",
        tag: "Operations",
        summary: "A page rendering this document.",
        auth: Auth::Public,
        request: None,
        params: &[],
        success: &[Success::Media(200, "HTML", &[("text/html", "Text")])],
        errors: &[],
    },
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn parameter(param: Param) -> Value {
    match param {
        Param::IdempotencyKey => json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Retrying with the same key and body returns the first response \
                            (with `Idempotent-Replayed: true`) and creates nothing; the same key \
                            with another body is refused (422). Kept for 24 hours.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
        }),
        Param::DeviceId => json!({
            "name": "device_id", "in": "query", "required": false,
            "description": "Which of the user's devices (from `GET /devices`). Omitted: the \
                            user's only device; with several, 400 `DEVICE_ID_REQUIRED`.",
            "schema": { "type": "string" }
        }),
        Param::Refresh => json!({
            "name": "refresh", "in": "query", "required": false,
            "description": "Start pairing over with fresh codes instead of the code on show.",
            "schema": { "type": "boolean", "default": false }
        }),
        Param::Purge => json!({
            "name": "purge", "in": "query", "required": false,
            "description": "Log the device out and forget it (a user's first device is only \
                            logged out).",
            "schema": { "type": "boolean", "default": false }
        }),
        Param::QrFormat => json!({
            "name": "format", "in": "query", "required": false,
            "schema": { "type": "string", "enum": ["json", "png", "svg", "txt"], "default": "json" }
        }),
    }
}

/// The error responses of a route, one per status, each listing its codes.
fn error_responses(route: &RouteDoc, responses: &mut Map<String, Value>) {
    let envelope = if route.path == "/groups" {
        json!({ "oneOf": [schema_ref("ErrorEnvelope"), schema_ref("StatusErrorEnvelope")] })
    } else {
        schema_ref("ErrorEnvelope")
    };
    let mut errors: Vec<ErrorCode> = route.errors.to_vec();
    errors.sort_by_key(|code| code.status().as_u16());
    let mut statuses: Vec<u16> = errors.iter().map(|c| c.status().as_u16()).collect();
    statuses.dedup();
    for status in statuses {
        let codes: Vec<&str> = errors
            .iter()
            .filter(|c| c.status().as_u16() == status)
            .map(|c| c.as_str())
            .collect();
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("error_code: {}", codes.join(", ")),
                "content": { "application/json": { "schema": envelope } }
            }),
        );
    }
}

fn operation(route: &RouteDoc) -> Value {
    let mut responses = Map::new();
    for success in route.success {
        let (status, value) = match *success {
            Success::Json(status, description, schema) => (
                status,
                json!({ "description": description,
                        "content": { "application/json": { "schema": schema_ref(schema) } } }),
            ),
            Success::Empty(status, description) => (status, json!({ "description": description })),
            Success::Media(status, description, media) => {
                let content: Map<String, Value> = media
                    .iter()
                    .map(|(kind, schema)| {
                        ((*kind).to_owned(), json!({ "schema": schema_ref(schema) }))
                    })
                    .collect();
                (
                    status,
                    json!({ "description": description, "content": content }),
                )
            }
        };
        responses.insert(status.to_string(), value);
    }
    error_responses(route, &mut responses);

    let mut parameters: Vec<Value> = Vec::new();
    if route.path.contains("{id}") {
        let description = if route.path.starts_with("/webhook/deliveries") {
            "The event's id or sequence number."
        } else {
            "The user's id."
        };
        parameters.push(json!({
            "name": "id", "in": "path", "required": true,
            "description": description, "schema": { "type": "string" }
        }));
    }
    if route.path.contains("{delivery}") {
        parameters.push(json!({
            "name": "delivery", "in": "path", "required": true,
            "description": "The event's id or sequence number.", "schema": { "type": "string" }
        }));
    }
    parameters.extend(route.params.iter().map(|p| parameter(*p)));

    let mut op = json!({
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(map) = op.as_object_mut() {
        match route.auth {
            Auth::Public => {
                map.insert("security".to_owned(), json!([]));
            }
            Auth::Admin => {
                map.insert("security".to_owned(), json!([{ "adminToken": [] }]));
            }
            Auth::User => {
                map.insert(
                    "security".to_owned(),
                    json!([{ "userToken": [] }, { "userTokenBare": [] }]),
                );
            }
        }
        if let Some(schema) = route.request {
            map.insert(
                "requestBody".to_owned(),
                json!({ "required": true,
                        "content": { "application/json": { "schema": schema_ref(schema) } } }),
            );
        }
    }
    op
}

/// The whole document.
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES
        .iter()
        .chain(super::openapi_devices::DEVICE_ROUTES)
        .chain(super::openapi_events::EVENT_ROUTES)
    {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(map) = entry.as_object_mut() {
            map.insert(route.method.to_owned(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "WUTS gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted WhatsApp gateway. Errors always use one envelope with a \
                            stable `error_code`; the status for each code is fixed.",
        },
        "paths": paths,
        "webhooks": super::openapi_events::webhooks(),
        "components": {
            "securitySchemes": {
                "adminToken": { "type": "http", "scheme": "bearer",
                                "description": "The admin token (WUTS_ADMIN_TOKEN, or printed at first start)." },
                "userToken": { "type": "http", "scheme": "bearer",
                               "description": "A user's API token (UUID v4)." },
                "userTokenBare": { "type": "apiKey", "in": "header", "name": "Authorization",
                                   "description": "The user's token without `Bearer`, as document 002's clients send it." }
            },
            "schemas": merged_schemas(),
        },
    })
}

fn merged_schemas() -> Value {
    let mut schemas =
        super::openapi_schemas::schemas(MAX_SUBJECT_CHARS, MAX_DESCRIPTION_CHARS, MAX_GROUP_SIZE);
    if let (Some(all), Value::Object(events)) =
        (schemas.as_object_mut(), super::openapi_events::schemas())
    {
        all.extend(events);
    }
    schemas
}

/// Every error code, for the envelope schemas.
pub(crate) fn all_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}
