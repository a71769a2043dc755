//! The group routes after create (user token) in the OpenAPI document. Bodies follow the
//! hosted WUTS API's shapes, described in each summary; every route answers in the configured
//! style (`{success, ...}` or `{status, code, message, data{...}}`).

use super::error::ErrorCode as E;
use super::openapi::{Auth, Param, RouteDoc, Success};

/// What any group request can meet.
const READ: &[E] = &[
    E::ValidationError,
    E::Unauthorized,
    E::NotFound,
    E::DeviceIdRequired,
    E::DeviceNotPaired,
    E::GroupNotFound,
    E::NotAParticipant,
    E::InternalError,
    E::WhatsappError,
    E::DeviceOffline,
    E::Timeout,
];

/// What a change can meet besides.
const WRITE: &[E] = &[
    E::ValidationError,
    E::InvalidJson,
    E::Unauthorized,
    E::NotFound,
    E::DeviceIdRequired,
    E::DeviceNotPaired,
    E::GroupNotFound,
    E::NotAParticipant,
    E::NotGroupAdmin,
    E::PayloadTooLarge,
    E::UnsupportedMediaType,
    E::IdempotencyKeyReused,
    E::OutcomeUnknown,
    E::IdempotencyKeyInUse,
    E::InternalError,
    E::WhatsappError,
    E::DeviceOffline,
    E::Timeout,
];

const KEYED: &[Param] = &[Param::DeviceId, Param::IdempotencyKey];

/// Every group route after create.
pub(super) const GROUP_ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/groups",
        tag: "Groups",
        summary: "The groups the account is in, without participants: `{success, groups:[{jid, \
                  name, topic, description, owner, created_at, is_announce, is_locked, \
                  join_approval, members_count, ephemeral_seconds, member_add_mode, \
                  is_community, parent_jid}]}`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The groups", "Any")],
        errors: READ,
    },
    RouteDoc {
        method: "get",
        path: "/groups/{jid}",
        tag: "Groups",
        summary: "One group (`…@g.us`, checked before anything is sent) with its participants: \
                  `{success, group:{...as in the list, participants:[{jid, phone_number, \
                  is_admin, is_super_admin}]}}`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The group", "Any")],
        errors: READ,
    },
    RouteDoc {
        method: "patch",
        path: "/groups/{jid}",
        tag: "Groups",
        summary: "Change any of `name`, `topic` (or `description`, the same field; empty \
                  deletes it), `announcement`, `locked`, `join_approval`, `member_add_mode` \
                  (`admin` / `all_member`); at least one. Each is its own WhatsApp request, \
                  applied in that order; the first refusal stops the rest and its error body \
                  adds `applied`, `refused` and `not_attempted`. Success: `{success, \
                  group{...}, applied[]}`.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "The refreshed group", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/groups/{jid}/participants",
        tag: "Groups",
        summary: "`{participants, action?}` (`add` by default; `remove`, `promote`, `demote`). \
                  `{success, jid, action, participants:[{jid, phone_number, is_admin, \
                  is_super_admin, status, error_code?, reason?, invite?}]}`: `status` is 200 or \
                  WhatsApp's per-participant code (403 privacy: `invite{code, expiration, \
                  expires_at}` to send instead; 404 not on WhatsApp or not a member; 409 \
                  already a member; 401 the creator cannot be touched; 419 full).",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Per-participant outcomes", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "delete",
        path: "/groups/{jid}/participants",
        tag: "Groups",
        summary: "As `POST`, with `remove` by default (JSON body on DELETE).",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Per-participant outcomes", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "get",
        path: "/groups/{jid}/invite",
        tag: "Groups",
        summary: "The current invite link (admins only; not regenerated): `{success, group_jid, \
                  invite_link}` (`https://chat.whatsapp.com/CODE`).",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The link", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/groups/{jid}/invite/reset",
        tag: "Groups",
        summary: "Revoke the invite link and issue a new one (the old one then answers \
                  `INVITE_REVOKED`): `{success, group_jid, invite_link, reset_at}`.",
        auth: Auth::User,
        request: None,
        params: KEYED,
        success: &[Success::Json(200, "The new link", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "put",
        path: "/groups/{jid}/ephemeral",
        tag: "Groups",
        summary: "Disappearing messages: `{duration_seconds}` in 0 (off), 86400, 604800, \
                  7776000. `{success, group_jid, duration_seconds}`.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Set", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/groups/{jid}/picture",
        tag: "Groups",
        summary: "Set the group's picture: `{image_base64}`, a JPEG (a `data:image/jpeg;base64,` \
                  prefix is allowed) of at most 2 MiB and at least 192x192 pixels; one with a \
                  side over 640 pixels, or over 100 KiB, is resized to fit and re-encoded \
                  before it is sent. Anything else is 400 and nothing is sent. `{success, \
                  group_jid, picture_id, width, height, resized}`. In a locked group only \
                  admins may (`NOT_GROUP_ADMIN`). The body may be up to about 2.8 MiB here.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "The new picture's id", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "delete",
        path: "/groups/{jid}/leave",
        tag: "Groups",
        summary: "Leave the group: `{success, group_jid}`. If no admin remains, WhatsApp makes \
                  the longest-standing member one.",
        auth: Auth::User,
        request: None,
        params: KEYED,
        success: &[Success::Json(200, "Left", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "get",
        path: "/groups/{jid}/requests",
        tag: "Groups",
        summary: "Pending join requests of a join-approval group (admins only), oldest first: \
                  `{success, group_jid, requests:[{jid, phone_number, requested_at}]}`.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The requests", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/groups/{jid}/requests",
        tag: "Groups",
        summary: "`{action: approve|reject, participants}` (admins only): `{success, jid, \
                  action, participants:[{jid, ..., status}]}`; `status` 404 for someone who \
                  did not ask. Approved users become members.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Per-participant outcomes", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/groups/join",
        tag: "Groups",
        summary: "Join by `{link}` (or its code), or by `{code, group_jid, inviter_jid, \
                  expiration?}` (the invite a privacy-restricted participant received): \
                  `{success, pending_approval, group_jid}`; `pending_approval` when an admin \
                  must approve. `INVITE_INVALID` for an unknown code, `INVITE_REVOKED` for a \
                  reset link or an expired invite.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Joined or asked to", "Any")],
        errors: &[
            E::ValidationError,
            E::InvalidJson,
            E::Unauthorized,
            E::DeviceIdRequired,
            E::DeviceNotPaired,
            E::InviteInvalid,
            E::InviteRevoked,
            E::IdempotencyKeyReused,
            E::OutcomeUnknown,
            E::InternalError,
            E::WhatsappError,
            E::DeviceOffline,
            E::Timeout,
        ],
    },
];
