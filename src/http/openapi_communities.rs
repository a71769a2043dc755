//! The community routes (user token) in the OpenAPI document. Every route answers in the
//! configured style (`{success, ...}` or `{status, code, message, data{...}}`).

use super::error::ErrorCode as E;
use super::openapi::{Auth, Param, RouteDoc, Success};

/// What a community change can meet.
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
    E::GroupAlreadyLinked,
    E::CommunityRefused,
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

/// Every community route.
pub(super) const COMMUNITY_ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "post",
        path: "/communities",
        tag: "Communities",
        summary: "Create a community: `{name, description?, participants?}` (the rules of \
                  `POST /groups`). WhatsApp creates its announcement group with it. `201 \
                  {success, community:{jid, name, description, owner, created_at, \
                  members_count, is_community, participants[], not_added[], \
                  announcement_group:{jid, name, is_announcement}|null}}`.",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(201, "The community", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/communities/{jid}/participants",
        tag: "Communities",
        summary: "As `POST /groups/{jid}/participants`, for the community: `{participants, \
                  action?}` (`add` by default; `remove`, `promote`, `demote`).",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Per-participant outcomes", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "delete",
        path: "/communities/{jid}/participants",
        tag: "Communities",
        summary: "As `POST`, with `remove` by default (JSON body on DELETE).",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Per-participant outcomes", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "get",
        path: "/communities/{jid}/groups",
        tag: "Communities",
        summary: "The community's groups, the announcement group first (members only): \
                  `{success, community_jid, groups:[{jid, name, is_announcement}]}`. \
                  `COMMUNITY_REFUSED` when the group is not a community.",
        auth: Auth::User,
        request: None,
        params: &[Param::DeviceId],
        success: &[Success::Json(200, "The linked groups", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "post",
        path: "/communities/{jid}/groups",
        tag: "Communities",
        summary: "Link an existing group: `{group_jid}` (an admin of the community and of the \
                  group). `{success, community_jid, group_jid}`. A group belongs to one \
                  community at most (`GROUP_ALREADY_LINKED`); a community cannot be linked \
                  (`COMMUNITY_REFUSED`).",
        auth: Auth::User,
        request: Some("Any"),
        params: KEYED,
        success: &[Success::Json(200, "Linked", "Any")],
        errors: WRITE,
    },
    RouteDoc {
        method: "delete",
        path: "/communities/{jid}/groups/{group_jid}",
        tag: "Communities",
        summary: "Unlink a group (community admins): it stays a group. `{success, \
                  community_jid, group_jid}`. The announcement group cannot be unlinked \
                  (`COMMUNITY_REFUSED`); a group the community does not hold is \
                  `GROUP_NOT_FOUND`.",
        auth: Auth::User,
        request: None,
        params: KEYED,
        success: &[Success::Json(200, "Unlinked", "Any")],
        errors: WRITE,
    },
];
