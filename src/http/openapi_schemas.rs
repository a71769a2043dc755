//! The component schemas of `/openapi.json`: request and response bodies as the handlers in
//! `groups.rs`, `admin.rs`, `qr.rs` and `error.rs` build them.

use serde_json::{Value, json};

use super::openapi::all_codes;

fn string() -> Value {
    json!({ "type": "string" })
}

fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn integer() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// Every schema, keyed by name. Limits come from `ops::groups`.
pub(crate) fn schemas(max_subject: usize, max_description: usize, max_group: usize) -> Value {
    let state = json!({ "type": "string", "enum":
        ["unpaired", "pairing", "connecting", "connected", "disconnected", "logged_out", "error"] });
    json!({
        "Violation": object(&["field", "message"], json!({
            "field": { "type": "string", "examples": ["participants[2]"] },
            "message": string(),
        })),
        "ErrorEnvelope": object(&["success", "error", "error_code", "timestamp"], json!({
            "success": { "const": false },
            "error": string(),
            "error_code": { "type": "string", "enum": all_codes() },
            "timestamp": { "type": "string", "format": "date-time" },
            "details": { "type": "array", "items": reference("Violation") },
            "whatsapp_code": { "type": "integer", "description": "WHATSAPP_ERROR: WhatsApp's code (406, 403, ...)" },
            "whatsapp_text": string(),
        })),
        "StatusErrorEnvelope": object(&["status", "code", "message", "error"], json!({
            "status": { "const": false },
            "code": { "type": "integer", "description": "The HTTP status" },
            "message": { "type": "string", "examples": ["Bad request"] },
            "error": string(),
            "error_code": { "type": "string", "enum": all_codes() },
            "details": { "type": "array", "items": reference("Violation") },
            "whatsapp_code": { "type": "integer" },
            "whatsapp_text": string(),
        })),
        "CreateGroupRequest": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": max_subject,
                          "description": "Surrounding whitespace is trimmed. At least one visible \
                                          character: a name of only spaces, zero-width or \
                                          direction characters (U+200B, U+202E, ...) is refused." },
                "participants": {
                    "type": "array",
                    "maxItems": max_group - 1,
                    "description": "User JIDs (…@s.whatsapp.net, …@c.us, …@lid) or phone numbers in international form; normalised and deduplicated.",
                    "items": { "type": "string", "examples": ["5511999999999@s.whatsapp.net", "+55 11 99999-9999"] }
                },
                "description": { "type": "string", "maxLength": max_description },
                "options": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "announcement": boolean(),
                        "locked": boolean(),
                        "join_approval": boolean(),
                        "community": boolean(),
                        "parent_jid": { "type": "string", "description": "Create the group inside this community (…@g.us)." }
                    }
                }
            }
        },
        "Participant": object(&["jid", "phone_number", "is_admin", "is_super_admin"], json!({
            "jid": string(),
            "phone_number": nullable_string(),
            "is_admin": boolean(),
            "is_super_admin": boolean(),
        })),
        "Invite": object(&["code", "expires_at", "expiration"], json!({
            "code": string(),
            "expires_at": { "type": "string", "format": "date-time" },
            "expiration": { "type": "integer", "description": "Unix seconds" },
        })),
        "NotAdded": object(&["jid", "phone_number", "error_code", "reason", "invite_required", "invite"], json!({
            "jid": string(),
            "phone_number": nullable_string(),
            "error_code": { "type": ["integer", "null"], "description": "WhatsApp's per-participant code (403 privacy, 408 left recently, 409 already a member, ...); null when WhatsApp did not list the participant." },
            "reason": string(),
            "invite_required": boolean(),
            "invite": { "oneOf": [reference("Invite"), { "type": "null" }] },
        })),
        "Group": object(&["jid", "name", "owner", "created_at", "is_announce", "is_locked",
                          "join_approval", "members_count", "participants", "not_added"], json!({
            "jid": string(),
            "name": string(),
            "owner": nullable_string(),
            "created_at": { "type": "string", "format": "date-time" },
            "is_announce": boolean(),
            "is_locked": boolean(),
            "join_approval": boolean(),
            "members_count": integer(),
            "participants": { "type": "array", "items": reference("Participant") },
            "not_added": { "type": "array", "items": reference("NotAdded") },
        })),
        "CreatedGroup": object(&["success", "group"], json!({
            "success": { "const": true },
            "group": reference("Group"),
        })),
        "StatusParticipant": object(&["jid", "is_admin", "is_super_admin"], json!({
            "jid": string(), "is_admin": boolean(), "is_super_admin": boolean(),
        })),
        "StatusGroup": object(&["jid", "name", "description", "owner", "created_at",
                                "participant_count", "participants", "not_added"], json!({
            "jid": string(),
            "name": string(),
            "description": string(),
            "owner": string(),
            "created_at": { "type": "integer", "description": "Unix seconds" },
            "participant_count": integer(),
            "participants": { "type": "array", "items": reference("StatusParticipant") },
            "not_added": { "type": "array", "items": reference("NotAdded") },
        })),
        "StatusCreatedGroup": object(&["status", "code", "message", "data"], json!({
            "status": { "const": true },
            "code": { "const": 200 },
            "message": { "const": "Group created successfully" },
            "data": reference("StatusGroup"),
        })),
        "SignIn": { "type": "object", "required": ["token"], "additionalProperties": false,
                    "properties": { "token": { "type": "string", "description": "The admin token or a user's API token." } } },
        "ConsoleSession": { "type": "object", "required": ["role", "csrf"],
                            "properties": { "role": { "type": "string", "enum": ["admin", "user"] },
                                            "csrf": { "type": "string", "description": "Send as `X-CSRF-Token` on requests that change something." },
                                            "user_id": { "type": "string" }, "name": { "type": "string" } } },
        "BackupRequest": { "type": "object", "required": ["dest"], "additionalProperties": false,
                           "properties": { "dest": { "type": "string", "description": "Absolute path on the gateway's machine.",
                                                     "examples": ["/var/backups/wuts/2026-06-15"] } } },
        "NewTenant": { "type": "object", "required": ["name"], "additionalProperties": false,
                       "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100 } } },
        "Tenant": object(&["id", "name"], json!({ "id": string(), "name": string() })),
        "TenantList": { "type": "array", "items": reference("Tenant") },
        "NewUser": { "type": "object", "required": ["tenant_id", "name"], "additionalProperties": false,
                     "properties": { "tenant_id": string(),
                                     "name": { "type": "string", "minLength": 1, "maxLength": 100 } } },
        "UserWithToken": object(&["id", "tenant_id", "name", "token"], json!({
            "id": string(), "tenant_id": string(), "name": string(),
            "token": { "type": "string", "format": "uuid", "description": "Shown once." },
        })),
        "User": object(&["id", "tenant_id", "name", "state", "jid"], json!({
            "id": string(), "tenant_id": string(), "name": string(),
            "state": state, "jid": nullable_string(),
            "error_code": { "type": "string", "examples": ["CERTIFICATE_INVALID"],
                            "description": "With `state: error`: what is wrong." },
            "reason": object(&["code", "message"], json!({
                "code": { "type": "string", "examples": ["device_removed", "certificate_invalid",
                          "connection_lost", "pairing_timed_out", "replaced"] },
                "message": { "type": "string", "examples": ["the phone unlinked this device"] },
            })),
        })),
        "UserList": { "type": "array", "items": reference("User") },
        "PairingStarted": object(&["id", "state", "qr_url", "events_url"], json!({
            "id": string(), "state": state, "qr_url": string(), "events_url": string(),
        })),
        "Qr": object(&["code", "expires_at", "ttl"], json!({
            "code": string(),
            "expires_at": { "type": "integer", "description": "Unix seconds" },
            "ttl": { "type": "integer", "description": "Seconds" },
        })),
        "SandboxInfo": object(&["ws_url", "control_url"], json!({
            "ws_url": string(), "control_url": string(),
        })),
        "Health": object(&["status"], json!({ "status": string() })),
        "Text": string(),
        "Binary": { "type": "string", "contentMediaType": "application/octet-stream" },
        "Any": {},
    })
}
