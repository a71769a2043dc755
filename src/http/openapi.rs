//! `/openapi.json`: an OpenAPI 3.1 document built from the route tables (`openapi_routes.rs` and
//! the families beside it) and the error table in `error.rs`, so codes and statuses cannot drift
//! from what the handlers return.
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
    /// The console's cookie session.
    Session,
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
    /// `?tenant_id=`: only this tenant's users.
    TenantId,
    /// `?q=`: search.
    Search,
    /// `?limit=` and `?cursor=`: paging.
    Limit,
    Cursor,
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

/// A route's first sentence, for the one-line `summary` (the whole text is the `description`).
/// Plain text (no Markdown backticks: summaries are not rendered).
fn first_sentence(text: &str) -> String {
    text.find(". ")
        .map_or(text, |end| &text[..=end])
        .replace('`', "")
}

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
        Param::TenantId => json!({
            "name": "tenant_id", "in": "query", "required": false,
            "description": "Only this tenant's users.", "schema": { "type": "string" }
        }),
        Param::Search => json!({
            "name": "q", "in": "query", "required": false,
            "description": "Only records whose id contains this text, or whose name does \
                            (ignoring case).",
            "schema": { "type": "string" }
        }),
        Param::Limit => json!({
            "name": "limit", "in": "query", "required": false,
            "description": "Records per page.",
            "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }
        }),
        Param::Cursor => json!({
            "name": "cursor", "in": "query", "required": false,
            "description": "The previous page's `X-Next-Cursor`.", "schema": { "type": "string" }
        }),
        Param::QrFormat => json!({
            "name": "format", "in": "query", "required": false,
            "schema": { "type": "string", "enum": ["json", "png", "svg", "txt"], "default": "json" }
        }),
    }
}

/// The error responses of a route, one per status, each listing its codes.
fn error_responses(route: &RouteDoc, responses: &mut Map<String, Value>) {
    let envelope = if route.path.starts_with("/groups") || route.path.starts_with("/communities") {
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
    if route.path.contains("{jid}") {
        parameters.push(json!({
            "name": "jid", "in": "path", "required": true,
            "description": "The group's JID (`120363…@g.us`), checked before anything is sent.",
            "schema": { "type": "string" }
        }));
    }
    if route.path.contains("{group_jid}") {
        parameters.push(json!({
            "name": "group_jid", "in": "path", "required": true,
            "description": "The linked group's JID (`120363…@g.us`).",
            "schema": { "type": "string" }
        }));
    }
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
        "summary": first_sentence(route.summary),
        // The whole text as CommonMark (renderers show `code` and lists).
        "description": route.summary,
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
            Auth::Session => {
                map.insert("security".to_owned(), json!([{ "consoleSession": [] }]));
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
    let routes = super::openapi_routes::ROUTES
        .iter()
        .chain(super::openapi_devices::DEVICE_ROUTES)
        .chain(super::openapi_paircode::PAIRCODE_ROUTES)
        .chain(super::openapi_events::EVENT_ROUTES)
        .chain(super::openapi_groups::GROUP_ROUTES)
        .chain(super::openapi_communities::COMMUNITY_ROUTES);
    for route in routes {
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
                "consoleSession": { "type": "apiKey", "in": "cookie", "name": "wuts_session",
                                    "description": "The console's session (`POST /console/session`). Requests that change something also send the session's `csrf` as `X-CSRF-Token`; an admin session acts on a user's routes with `X-WUTS-User: <user id>`." },
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
