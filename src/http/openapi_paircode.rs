//! Pairing by phone-number code and the admin's device-level routes in the OpenAPI document.

use super::error::ErrorCode as E;
use super::openapi::{Auth, Param, RouteDoc, Success};

const CODE_ERRORS: &[E] = &[
    E::ValidationError,
    E::Unauthorized,
    E::NotFound,
    E::DeviceAlreadyPaired,
    E::DevicePairing,
    E::DeviceNotPairing,
    E::Timeout,
    E::InternalError,
];

const ADMIN_DEVICE: &[E] = &[E::Unauthorized, E::NotFound, E::InternalError];

/// The routes.
pub(super) const PAIRCODE_ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "post",
        path: "/paircode",
        tag: "Devices",
        summary: "A pairing code to type on the phone (WhatsApp > Linked devices > Link with \
                  phone number instead), starting pairing when needed. Body `{phone, device_id?, \
                  reuse_cache?}`; the phone has 10 to 15 digits after normalisation. Answers \
                  `{success, data{code (ABCD-EFGH), phone, expires_in, expires_at, cached, \
                  instructions, device_id}}`; a code still valid for the same number is reused \
                  unless `?refresh=true` (aliases `force_refresh`, `force_new`) or `reuse_cache: \
                  false`. Then `paired` follows as with a QR code.",
        auth: Auth::User,
        request: Some("Any"),
        params: &[Param::DeviceId, Param::Refresh],
        success: &[Success::Json(200, "The pairing code", "Any")],
        errors: CODE_ERRORS,
    },
    RouteDoc {
        method: "post",
        path: "/admin/users/{id}/paircode",
        tag: "Pairing",
        summary: "A pairing code for the user's first device (`{phone}`): `{code, phone, \
                  expires_in, expires_at, cached, instructions}`; the `pair_code` event carries \
                  it too.",
        auth: Auth::Admin,
        request: Some("Any"),
        params: &[Param::Refresh],
        success: &[Success::Json(200, "The pairing code", "Any")],
        errors: CODE_ERRORS,
    },
    RouteDoc {
        method: "get",
        path: "/admin/users/{id}/devices",
        tag: "Pairing",
        summary: "The user's devices, oldest first: `{success, devices[{id, user_id, name, \
                  whatsapp_jid, connected, status, last_seen, created_at, updated_at}]}`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The devices", "Any")],
        errors: ADMIN_DEVICE,
    },
    RouteDoc {
        method: "post",
        path: "/admin/devices/{id}/pair",
        tag: "Pairing",
        summary: "Start pairing this device by QR code: `{device_id, state, qr_url, \
                  events_url}`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(202, "Pairing started", "Any")],
        errors: &[
            E::Unauthorized,
            E::NotFound,
            E::DeviceAlreadyPaired,
            E::DevicePairing,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/admin/devices/{id}/qr",
        tag: "Pairing",
        summary: "This device's current QR code, as `/admin/users/{id}/qr`.",
        auth: Auth::Admin,
        request: None,
        params: &[Param::QrFormat],
        success: &[Success::Media(
            200,
            "The QR code",
            super::openapi_routes::QR_MEDIA,
        )],
        errors: super::openapi_routes::QR_ERRORS,
    },
    RouteDoc {
        method: "post",
        path: "/admin/devices/{id}/paircode",
        tag: "Pairing",
        summary: "A pairing code for this device (`{phone}`), as `/admin/users/{id}/paircode`, \
                  with `device_id`.",
        auth: Auth::Admin,
        request: Some("Any"),
        params: &[Param::Refresh],
        success: &[Success::Json(200, "The pairing code", "Any")],
        errors: CODE_ERRORS,
    },
    RouteDoc {
        method: "get",
        path: "/admin/devices/{id}/events",
        tag: "Pairing",
        summary: "This device's server-sent events, as `/admin/users/{id}/events`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Media(
            200,
            "Event stream",
            &[("text/event-stream", "Text")],
        )],
        errors: ADMIN_DEVICE,
    },
    RouteDoc {
        method: "post",
        path: "/admin/devices/{id}/logout",
        tag: "Pairing",
        summary: "Log this device out (WhatsApp is told when connected) and wipe its \
                  credentials; it stays, ready to pair again: `{success, device}`.",
        auth: Auth::Admin,
        request: None,
        params: &[],
        success: &[Success::Json(200, "Logged out", "Any")],
        errors: ADMIN_DEVICE,
    },
];
