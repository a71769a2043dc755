//! The event routes (webhook configuration, delivery log, the event stream) and the OpenAPI
//! `webhooks` section: one entry per event, with its envelope and an example.

use serde_json::{Value, json};

use super::error::ErrorCode as E;
use super::openapi::{Auth, Param, RouteDoc, Success};
use crate::events::EventName;

const USER: &[E] = &[
    E::Unauthorized,
    E::NotFound,
    E::DeviceIdRequired,
    E::InternalError,
];
const CONFIG: &[E] = &[
    E::ValidationError,
    E::InvalidJson,
    E::Unauthorized,
    E::NotFound,
    E::DeviceIdRequired,
    E::InternalError,
];
const ADMIN: &[E] = &[
    E::ValidationError,
    E::Unauthorized,
    E::NotFound,
    E::InternalError,
];

/// Every event route.
pub(super) const EVENT_ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "post",
        path: "/webhook",
        tag: "Webhooks",
        summary: "Configure the device's webhook (`?device_id=` or body `device_id`; calling again \
                  updates it): `webhook_url` (http/https; private, loopback and link-local targets \
                  only with --webhook-allow-private), `enabled_events` (at least one, from GET \
                  /webhook/events), `enabled` (default true), `retry_attempts` (0-20, default 3), \
                  `timeout` (seconds, 1-120, default 30), `secret` (16-256 visible ASCII; omitted: \
                  one is generated, `whsec_...`, and returned in this response only), `headers`. \
                  Answer `{success, message, webhook{id, scope, device_id, webhook_url, \
                  enabled_events, enabled, retry_attempts, timeout, headers, created_at, \
                  updated_at, secret?}}`.",
        auth: Auth::User,
        request: Some("WebhookConfigRequest"),
        params: &[Param::DeviceId],
        success: &[Success::Json(
            200,
            "The configuration (secret only when generated)",
            "Any",
        )],
        errors: CONFIG,
    },
    RouteDoc {
        method: "get",
        path: "/webhook",
        tag: "Webhooks",
        summary: "The webhook that applies to the device: its own (`scope: device`), else the \
                  user's (`scope: user`). Never shows the secret. 404 when there is none.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The configuration", "Any")],
        errors: USER,
    },
    RouteDoc {
        method: "post",
        path: "/user/webhook",
        tag: "Webhooks",
        summary: "The user's own webhook, used by every device without one of its own; every \
                  event unless `enabled_events` names some. Same fields as POST /webhook. Answer \
                  `{success, message, data{webhook_url, available_events, events_count, webhook, \
                  secret?}}`.",
        auth: Auth::User,
        request: Some("WebhookConfigRequest"),
        params: &[],
        success: &[Success::Json(200, "The configuration", "Any")],
        errors: &[
            E::ValidationError,
            E::InvalidJson,
            E::Unauthorized,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/webhook/events",
        tag: "Webhooks",
        summary: "Every event name: `{success, events[], events_count}`. The `webhooks` section of \
                  this document shows each one's envelope and an example.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The event names", "Any")],
        errors: &[E::Unauthorized],
    },
    RouteDoc {
        method: "get",
        path: "/webhook/deliveries",
        tag: "Webhooks",
        summary: "The delivery log, newest first: `{success, deliveries[{id, seq, event, \
                  device_id, status (pending, retrying, delivered, dead, skipped), attempts, \
                  round_attempts, url, last_status, last_error, latency_ms, created_at, \
                  updated_at, next_attempt_at, delivered_at}], next_before}`. Filters: \
                  `?device_id=`, `?status=`, `?limit=` (1-200, default 50), `?before=<seq>` to page.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The deliveries", "Any")],
        errors: USER,
    },
    RouteDoc {
        method: "post",
        path: "/webhook/deliveries/{id}/redeliver",
        tag: "Webhooks",
        summary: "Deliver an event again (`id`: the event id or its sequence number), a dead \
                  letter too: a new round of attempts, with the same `id` and `webhook-id`.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The delivery, queued", "Any")],
        errors: &[E::Unauthorized, E::NotFound, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/events",
        tag: "Events",
        summary: "The user's events as server-sent events: `id:` (sequence number), `event:` (the \
                  name), `data:` (the envelope webhooks get). `Last-Event-ID` (or \
                  `?last_event_id=`) resumes after that event without gaps; without it only new \
                  events. Auth: the user token, or `?ticket=` from POST /events/ticket.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Media(
            200,
            "The event stream",
            &[("text/event-stream", "Any")],
        )],
        errors: &[E::ValidationError, E::Unauthorized],
    },
    RouteDoc {
        method: "post",
        path: "/events/ticket",
        tag: "Events",
        summary: "A ticket for `GET /events?ticket=` (browsers' EventSource cannot send a token): \
                  `{success, ticket, expires_at, expires_in}`; one use, two minutes.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The ticket", "Any")],
        errors: &[E::Unauthorized],
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/webhook",
        tag: "Admin",
        summary: "POST /webhook for any user (`?device_id=`).",
        auth: Auth::Admin,
        request: Some("WebhookConfigRequest"),
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The configuration", "Any")],
        errors: ADMIN,
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}/webhook",
        tag: "Admin",
        summary: "GET /webhook for any user (`?device_id=`).",
        auth: Auth::Admin,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The configuration", "Any")],
        errors: ADMIN,
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/user-webhook",
        tag: "Admin",
        summary: "POST /user/webhook for any user.",
        auth: Auth::Admin,
        request: Some("WebhookConfigRequest"),
        params: &[],
        success: &[Success::Json(200, "The configuration", "Any")],
        errors: ADMIN,
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}/webhook/deliveries",
        tag: "Admin",
        summary: "GET /webhook/deliveries for any user.",
        auth: Auth::Admin,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The deliveries", "Any")],
        errors: ADMIN,
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/webhook/deliveries/{delivery}/redeliver",
        tag: "Admin",
        summary: "POST /webhook/deliveries/{id}/redeliver for any user.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The delivery, queued", "Any")],
        errors: ADMIN,
    },
];

/// The `data` of each event, as an example.
fn example_data(event: EventName) -> Value {
    let group = "120363000000000001@g.us";
    let admin = "5511999990001@s.whatsapp.net";
    let member = "5511999990002@s.whatsapp.net";
    match event {
        EventName::QrGenerated => {
            json!({"code": "2@Qm9...,Abc...,Def...,Ghi...,1", "expires_at": 1_781_517_660, "ttl": 60})
        }
        EventName::PairCode => {
            json!({"code": "ABCD-EFGH", "phone": "5511999990001", "expires_at": 1_781_517_780})
        }
        EventName::PairSuccess => {
            json!({"jid": "5511999990001:3@s.whatsapp.net", "business_name": null, "platform": "android"})
        }
        EventName::PairError => {
            json!({"reason": "pairing_timed_out", "message": "no phone scanned a code in time"})
        }
        EventName::DeviceConnected | EventName::ConnectionKeepaliveRestored => {
            json!({"jid": "5511999990001:3@s.whatsapp.net"})
        }
        EventName::DeviceDisconnected => {
            json!({"reason": "connection_lost", "message": "the server closed the connection"})
        }
        EventName::DeviceLoggedOut => {
            json!({"reason": "device_removed", "message": "the phone unlinked this device"})
        }
        EventName::ConnectionStreamReplaced => {
            json!({"reason": "replaced", "message": "another connection took over this session"})
        }
        EventName::ConnectionFailure => {
            json!({"reason": "certificate_invalid", "message": "the server's certificate chain did not verify"})
        }
        EventName::ConnectionKeepaliveTimeout => {
            json!({"reason": "keepalive_timeout", "message": "WhatsApp stopped answering keep-alive pings"})
        }
        EventName::GroupJoined => {
            json!({"group_jid": group, "subject": "Padaria", "actor": admin, "reason": "added"})
        }
        EventName::GroupInfo => {
            json!({"group_jid": group, "actor": admin, "subject": "Padaria (nova)", "announcement": true})
        }
        EventName::GroupParticipants => {
            json!({"group_jid": group, "action": "promote", "participants": [member], "actor": admin, "reason": null})
        }
        EventName::GroupJoinRequest => {
            json!({"group_jid": group, "action": "created", "requester": member, "actor": null})
        }
        EventName::CommunityLinked | EventName::CommunityUnlinked => {
            json!({"community_jid": "120363000000000009@g.us", "group_jid": group, "actor": admin})
        }
    }
}

/// The OpenAPI `webhooks` section: what the gateway POSTs, per event.
pub(super) fn webhooks() -> Value {
    let mut out = serde_json::Map::new();
    for event in EventName::ALL {
        let example = json!({
            "id": "5f0c6b1e-8d2a-4c1b-9f7e-2a3b4c5d6e7f",
            "event": event.as_str(),
            "timestamp": 1_781_517_600,
            "device_id": "d3f1a2b4-7c6e-4f01-9a2b-1c2d3e4f5a6b",
            "user_id": "9b1c7e2a-44d3-4a55-8f10-2b3c4d5e6f70",
            "data": example_data(*event),
            "signature": "sha256=<64 hex digits>",
        });
        out.insert(
            event.as_str().to_owned(),
            json!({ "post": {
                "summary": event.as_str(),
                "description": "Signed twice with the configuration's key (the bytes after `whsec_` \
                                base64-decoded, else the secret's bytes): the body field \
                                `signature` = `sha256=` + hex HMAC-SHA256 of the body with its last \
                                87 bytes (`,\"signature\":\"sha256=<hex>\"}`) replaced by `}`; and \
                                the Standard Webhooks headers `webhook-id`, `webhook-timestamp`, \
                                `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`. \
                                Any 2xx is success; otherwise retried with backoff (Retry-After \
                                honoured) and dead-lettered after `retry_attempts`.",
                "parameters": [
                    {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}},
                ],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/WebhookEnvelope" },
                    "example": example,
                }}},
                "responses": { "2XX": { "description": "Delivered" } },
            }}),
        );
    }
    Value::Object(out)
}

/// Schemas for the event routes and envelope.
pub(super) fn schemas() -> Value {
    let names: Vec<&str> = EventName::ALL.iter().map(|e| e.as_str()).collect();
    json!({
        "WebhookConfigRequest": {
            "type": "object",
            "required": ["webhook_url"],
            "properties": {
                "webhook_url": {"type": "string", "format": "uri", "maxLength": 2048},
                "enabled_events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}},
                "enabled": {"type": "boolean", "default": true},
                "retry_attempts": {"type": "integer", "minimum": 0, "maximum": 20, "default": 3},
                "timeout": {"type": "integer", "minimum": 1, "maximum": 120, "default": 30},
                "secret": {"type": "string", "minLength": 16, "maxLength": 256},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "device_id": {"type": "string"},
            },
        },
        "WebhookEnvelope": {
            "type": "object",
            "required": ["id", "event", "timestamp", "device_id", "user_id", "data"],
            "properties": {
                "id": {"type": "string", "description": "Unique per event; the same on every attempt"},
                "event": {"type": "string", "enum": names},
                "timestamp": {"type": "integer", "description": "Unix seconds"},
                "device_id": {"type": ["string", "null"]},
                "user_id": {"type": "string"},
                "data": {"type": "object"},
                "signature": {"type": "string", "description": "sha256=<hex>; see the description of each webhook"},
            },
        },
    })
}
