//! The device and session routes (user token) in the OpenAPI document. Their bodies follow the
//! hosted WUTS API's shapes (`{success, data{...}}`), described in each summary.

use super::error::ErrorCode as E;
use super::openapi::{Auth, Param, RouteDoc, Success};

const COMMON: &[E] = &[
    E::Unauthorized,
    E::NotFound,
    E::DeviceIdRequired,
    E::InternalError,
];

/// Every device and session route.
pub(super) const DEVICE_ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "post",
        path: "/devices",
        tag: "Devices",
        summary: "Create a device for the caller (`{name}`): `201 {success, device{id, user_id, \
                  name, connected, status, created_at, updated_at}}`. Pair it with `GET /qr`.",
        auth: Auth::User,
        request: Some("Any"),
        params: &[],
        success: &[Success::Json(201, "The new device", "Any")],
        errors: &[E::ValidationError, E::Unauthorized, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/devices",
        tag: "Devices",
        summary: "The caller's devices, oldest first: `{success, devices[{id, user_id, name, \
                  whatsapp_jid, connected, status, created_at, updated_at}]}`.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The devices", "Any")],
        errors: &[E::Unauthorized, E::InternalError],
    },
    RouteDoc {
        method: "get",
        path: "/user/devices",
        tag: "Devices",
        summary: "The caller's devices: `{success, data{devices[{id, name, connected, status, \
                  created_at}], count, user_id}}`.",
        auth: Auth::User,
        request: None,
        params: &[],
        success: &[Success::Json(200, "The devices", "Any")],
        errors: &[E::Unauthorized, E::InternalError],
    },
    RouteDoc {
        method: "delete",
        path: "/devices/{id}",
        tag: "Devices",
        summary: "Disconnect a device (its credentials stay); `?purge=true` logs it out and \
                  forgets it.",
        auth: Auth::User,
        request: None,
        params: &[Param::Purge],
        success: &[Success::Json(200, "Done", "Any")],
        errors: COMMON,
    },
    RouteDoc {
        method: "get",
        path: "/status",
        tag: "Devices",
        summary: "A device's connection: always 200 for a known device, `{success, \
                  data{connected, status, device_id, jid, phone_number, is_logged_in, last_seen, \
                  reason}}`; `last_seen` is when the device was last seen connected since the \
                  gateway started.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The status", "Any")],
        errors: COMMON,
    },
    RouteDoc {
        method: "post",
        path: "/connect",
        tag: "Devices",
        summary: "Reconnect with the stored credentials, without a QR code: `{success, \
                  data{status, device_id, needs_qr}}`; `needs_qr` is true when there are none.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "Connecting", "Any")],
        errors: COMMON,
    },
    RouteDoc {
        method: "post",
        path: "/disconnect",
        tag: "Devices",
        summary: "Drop the connection and keep the credentials: offline (across restarts too) \
                  until `POST /connect`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "Disconnected", "Any")],
        errors: COMMON,
    },
    RouteDoc {
        method: "post",
        path: "/logout",
        tag: "Devices",
        summary: "Log out: WhatsApp removes the companion, the credentials are wiped; pair \
                  again with `GET /qr`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "Logged out", "Any")],
        errors: COMMON,
    },
    RouteDoc {
        method: "get",
        path: "/qr",
        tag: "Devices",
        summary: "The pairing QR code, starting pairing when needed: `{success, data{qr_code, \
                  image (PNG data URL), cached, expires_at, ttl, device_id}}`. 409 \
                  `DEVICE_ALREADY_PAIRED` for a paired device.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId, Param::Refresh],
        success: &[Success::Json(200, "The QR code", "Any")],
        errors: &[
            E::Unauthorized,
            E::NotFound,
            E::DeviceIdRequired,
            E::DeviceAlreadyPaired,
            E::DeviceNotPairing,
            E::InternalError,
        ],
    },
    RouteDoc {
        method: "get",
        path: "/qr/status",
        tag: "Devices",
        summary: "Whether a QR code is on show: `{success, data{exists, generated_at, \
                  device_id}}`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The QR status", "Any")],
        errors: COMMON,
    },
];
