//! The group routes after create (user token; `?device_id=` picks the device as everywhere):
//! list, read, update, participants, invite link, disappearing timer, leave, join. Each reads
//! its path and body into [`GroupCall`]s (`group_bodies.rs`: every violation listed, nothing
//! sent), runs them through `Devices::group`, and answers in the configured style. Every
//! mutating route honours `Idempotency-Key` as `POST /groups` does.
//!
//! WhatsApp's refusals get their own codes ([`group_error`]): unknown group
//! `GROUP_NOT_FOUND`, not an admin `NOT_GROUP_ADMIN`, not a participant `NOT_A_PARTICIPANT`,
//! bad or revoked invites `INVITE_INVALID` / `INVITE_REVOKED`, each with `whatsapp_code`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::devices::Target;
use super::error::rfc3339;
use super::group_bodies::{self as bodies, PatchStep};
use super::groups::{phone_number, reason};
use super::idempotency::{self, Failure, run_keyed};
use super::{ApiError, AppState, ErrorCode, ResponseStyle, Violation, unix_now};
use crate::client::api::{DeviceId, Error as ClientError};
use crate::ops::groups::{
    GroupAnswer, GroupCall, GroupInfo, GroupParticipant, INVITE_LINK_PREFIX, ParticipantAction,
    ParticipantOutcome, Setting, member_add_mode_name,
};
use crate::types::Jid;

/// WhatsApp's refusal of a group request, with its own code where it has one. `joining`:
/// the request was a join, where 406 and 410 speak of the invite.
pub(crate) fn group_error(error: ClientError, joining: bool) -> ApiError {
    let ClientError::Rejected { code, text } = error else {
        return error.into();
    };
    let (api, message) = match (code, joining) {
        (404, _) => (ErrorCode::GroupNotFound, "WhatsApp knows no such group"),
        (401, false) => (ErrorCode::NotGroupAdmin, "only a group admin may do this"),
        (403, false) => (
            ErrorCode::NotAParticipant,
            "the account is not a participant of this group",
        ),
        (406, true) => (ErrorCode::InviteInvalid, "no group has this invite code"),
        (410, true) => (
            ErrorCode::InviteRevoked,
            "this invite was revoked (the link was reset) or has expired",
        ),
        _ => return ClientError::Rejected { code, text }.into(),
    };
    ApiError::Group {
        code: api,
        message: message.to_owned(),
        whatsapp_code: code,
        whatsapp_text: text,
        extra: None,
    }
}

/// Runs one call on the device.
pub(super) async fn call(
    state: &AppState,
    device: DeviceId,
    call: GroupCall,
) -> Result<GroupAnswer, Failure> {
    let joining = matches!(
        call,
        GroupCall::JoinLink { .. } | GroupCall::JoinInvite { .. }
    );
    state
        .devices
        .group(device, call)
        .await
        .map_err(|e| Failure::of(e, |e| group_error(e, joining)))
}

/// The success body in `style`: `{success: true, ...fields}` (201/200 as given), or
/// `{status: true, code: 200, message, data: {...fields}}`.
pub(super) fn render(
    style: ResponseStyle,
    status: StatusCode,
    message: &str,
    fields: Value,
) -> Result<(StatusCode, Vec<u8>), Failure> {
    let (status, body) = match style {
        ResponseStyle::Wuts => {
            let mut map = Map::new();
            map.insert("success".to_owned(), json!(true));
            if let Value::Object(fields) = fields {
                map.extend(fields);
            }
            (status, Value::Object(map))
        }
        ResponseStyle::Status => (
            StatusCode::OK,
            json!({"status": true, "code": 200, "message": message, "data": fields}),
        ),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| Failure::from(ApiError::internal(e)))?;
    Ok((status, bytes))
}

/// A group as the list and the update answer it (no participants).
fn summary(g: &GroupInfo) -> Map<String, Value> {
    let members = g
        .participants
        .iter()
        .filter(|p| p.outcome == ParticipantOutcome::Added)
        .count();
    let Value::Object(map) = json!({
        "jid": g.jid.to_string(),
        "name": g.subject,
        "topic": g.description.clone().unwrap_or_default(),
        "description": g.description,
        "owner": g.owner.as_ref().map(ToString::to_string),
        "created_at": rfc3339(g.created_at),
        "is_announce": g.announcement,
        "is_locked": g.locked,
        "join_approval": g.join_approval,
        "members_count": members,
        "ephemeral_seconds": g.ephemeral,
        "member_add_mode": member_add_mode_name(g.member_add_mode.as_deref()),
        "is_community": g.is_community,
        "parent_jid": g.parent.as_ref().map(ToString::to_string),
    }) else {
        return Map::new();
    };
    map
}

/// A group with its participants, as `GET /groups/{jid}` answers it.
pub(super) fn detail(g: &GroupInfo) -> Value {
    let mut map = summary(g);
    let participants: Vec<Value> = g
        .participants
        .iter()
        .filter(|p| p.outcome == ParticipantOutcome::Added)
        .map(|p| {
            json!({
                "jid": p.jid.to_string(),
                "phone_number": phone_number(p),
                "is_admin": p.is_admin,
                "is_super_admin": p.is_super_admin,
            })
        })
        .collect();
    map.insert("participants".to_owned(), Value::Array(participants));
    Value::Object(map)
}

fn expect_group(answer: GroupAnswer) -> Result<GroupInfo, Failure> {
    match answer {
        GroupAnswer::Group(g) => Ok(*g),
        _ => Err(ApiError::internal("a metadata query answered something else").into()),
    }
}

pub(super) fn checked<T>(
    result: Result<T, Vec<Violation>>,
    headers: &HeaderMap,
) -> Result<(T, Option<wuts_store::gateway::IdempotencyKey>), ApiError> {
    match (idempotency::key_of(headers), result) {
        (Ok(key), Ok(value)) => Ok((value, key)),
        (key, result) => {
            let mut violations = match key {
                Err(ApiError::Validation(v)) => v,
                _ => Vec::new(),
            };
            violations.extend(result.err().unwrap_or_default());
            Err(ApiError::Validation(violations))
        }
    }
}

/// `GET /groups`: the groups the account is in (no participants).
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
) -> Result<Response, ApiError> {
    let work = async {
        let GroupAnswer::Groups(groups) =
            call(&state, device.device, GroupCall::Participating).await?
        else {
            return Err(
                ApiError::internal("the participating list answered something else").into(),
            );
        };
        let list: Vec<Value> = groups.iter().map(|g| Value::Object(summary(g))).collect();
        render(
            state.config.response_style,
            StatusCode::OK,
            "Groups retrieved successfully",
            json!({"groups": list}),
        )
    };
    run_keyed(&state, &device.user, None, [0; 32], work).await
}

/// `GET /groups/{jid}`: one group with its participants.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
) -> Result<Response, ApiError> {
    let info = bodies::checked(
        GroupCall::Info {
            group: bodies::path_group(&jid),
        },
        Vec::new(),
    )
    .map_err(ApiError::Validation)?;
    let work = async {
        let group = expect_group(call(&state, device.device, info).await?)?;
        render(
            state.config.response_style,
            StatusCode::OK,
            "Group retrieved successfully",
            json!({"group": detail(&group)}),
        )
    };
    run_keyed(&state, &device.user, None, [0; 32], work).await
}

/// `PATCH /groups/{jid}`: each field its own request, in a fixed order (name, description,
/// announcement, locked, join approval, member add mode); the first refusal stops the rest
/// and the error body says what was `applied`, what was `refused` and what was
/// `not_attempted`. Success answers the refreshed group and `applied`.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let group = bodies::path_group(&jid);
    let path = bodies::checked(
        GroupCall::Info {
            group: group.clone(),
        },
        Vec::new(),
    );
    let steps = bodies::patch(&group, &body);
    let (steps, key) = match (path, steps) {
        (Ok(_), steps) => checked(steps, &headers)?,
        (Err(mut v), steps) => {
            v.extend(steps.err().unwrap_or_default());
            return Err(ApiError::Validation(v));
        }
    };
    let canonical = json!([
        group.to_string(),
        steps
            .iter()
            .map(|(f, s)| bodies::canonical_setting(f, s))
            .collect::<Vec<_>>()
    ]);
    let hash = idempotency::hash_of(device.device, "PATCH /groups/{jid}", &canonical);
    let work = apply_patch(&state, device.device, group, steps);
    run_keyed(&state, &device.user, key, hash, work).await
}

async fn apply_patch(
    state: &AppState,
    device: DeviceId,
    group: Jid,
    steps: Vec<PatchStep>,
) -> Result<(StatusCode, Vec<u8>), Failure> {
    // Read first: an unknown group or a non-member fails before anything changes, and a
    // description change names the current one.
    let before = expect_group(
        call(
            state,
            device,
            GroupCall::Info {
                group: group.clone(),
            },
        )
        .await?,
    )?;
    let mut applied: Vec<&str> = Vec::new();
    let fields: Vec<&'static str> = steps.iter().map(|(f, _)| *f).collect();
    for (i, (field, setting)) in steps.into_iter().enumerate() {
        let setting = match setting {
            Setting::Description { text, .. } => Setting::Description {
                text,
                prev: before.description_id.clone(),
            },
            other => other,
        };
        let request = GroupCall::Set {
            group: group.clone(),
            setting,
        };
        if let Err(mut failure) = call(state, device, request).await {
            let partial = Some(Box::new(json!({
                "applied": applied,
                "refused": field,
                "not_attempted": fields[i + 1..],
            })));
            failure.error = match failure.error {
                ApiError::Group {
                    code,
                    message,
                    whatsapp_code,
                    whatsapp_text,
                    ..
                } => ApiError::Group {
                    code,
                    message,
                    whatsapp_code,
                    whatsapp_text,
                    extra: partial,
                },
                ApiError::WhatsApp { code, text } => ApiError::Group {
                    code: ErrorCode::WhatsappError,
                    message: format!("WhatsApp refused the request: {text}"),
                    whatsapp_code: code.unwrap_or(0),
                    whatsapp_text: text,
                    extra: partial,
                },
                other => other,
            };
            return Err(failure);
        }
        applied.push(field);
    }
    let after = expect_group(call(state, device, GroupCall::Info { group }).await?)?;
    render(
        state.config.response_style,
        StatusCode::OK,
        "Group updated successfully",
        json!({"group": Value::Object(summary(&after)), "applied": applied}),
    )
}

/// `POST /groups/{jid}/participants` (default `add`) and `DELETE` (default `remove`); the
/// communities' participants too (`route` keeps their idempotency fingerprints apart).
pub(super) async fn change_participants(
    state: Arc<AppState>,
    target: Target,
    jid: String,
    headers: HeaderMap,
    body: Value,
    default: ParticipantAction,
    route: &'static str,
) -> Result<Response, ApiError> {
    let device = target.device;
    let (request, key) = checked(
        bodies::participants(bodies::path_group(&jid), &body, default),
        &headers,
    )?;
    let GroupCall::Participants {
        group,
        action,
        participants,
    } = &request
    else {
        return Err(ApiError::internal("participants body read as another call"));
    };
    let canonical = json!([
        group.to_string(),
        action.as_str(),
        participants
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    ]);
    let hash = idempotency::hash_of(device.device, route, &canonical);
    let (group, action) = (group.to_string(), *action);
    let work = async {
        let GroupAnswer::Participants(outcomes) = call(&state, device.device, request).await?
        else {
            return Err(ApiError::internal("a participants change answered something else").into());
        };
        let list: Vec<Value> = outcomes.iter().map(|p| outcome(p, action)).collect();
        render(
            state.config.response_style,
            StatusCode::OK,
            "Participants updated successfully",
            json!({"jid": group, "action": action.as_str(), "participants": list}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}

/// One participant's outcome: `status` 200 or WhatsApp's per-participant code, with
/// `error_code`, `reason` and, for privacy-restricted users, the `invite` to send.
pub(super) fn outcome(p: &GroupParticipant, action: ParticipantAction) -> Value {
    let mut out = json!({
        "jid": p.jid.to_string(),
        "phone_number": phone_number(p),
        "is_admin": p.is_admin || (p.outcome == ParticipantOutcome::Added && action == ParticipantAction::Promote),
        "is_super_admin": p.is_super_admin,
        "status": 200,
    });
    if let (ParticipantOutcome::Failed { code, invite }, Some(map)) =
        (&p.outcome, out.as_object_mut())
    {
        map.insert("status".to_owned(), json!(code));
        map.insert("error_code".to_owned(), json!(code));
        map.insert("reason".to_owned(), json!(reason(*code)));
        map.insert("is_admin".to_owned(), json!(false));
        if let Some(invite) = invite {
            map.insert(
                "invite".to_owned(),
                json!({"code": invite.code, "expiration": invite.expiration, "expires_at": rfc3339(invite.expiration)}),
            );
        }
    }
    out
}

/// `POST /groups/{jid}/participants`.
pub(crate) async fn add_participants(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    change_participants(
        state,
        target,
        jid,
        headers,
        body,
        ParticipantAction::Add,
        "/groups/{jid}/participants",
    )
    .await
}

/// `DELETE /groups/{jid}/participants`.
pub(crate) async fn remove_participants(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    change_participants(
        state,
        target,
        jid,
        headers,
        body,
        ParticipantAction::Remove,
        "/groups/{jid}/participants",
    )
    .await
}

/// `GET /groups/{jid}/invite` (the link stays as it is) and `POST /groups/{jid}/invite/reset`
/// (revoked and reissued: the old link stops working).
async fn invite(
    state: Arc<AppState>,
    target: Target,
    jid: String,
    headers: HeaderMap,
    reset: bool,
) -> Result<Response, ApiError> {
    let device = target.device;
    let request = GroupCall::InviteLink {
        group: bodies::path_group(&jid),
        reset,
    };
    let (request, key) = checked(bodies::checked(request, Vec::new()), &headers)?;
    let group = request.group().map(ToString::to_string).unwrap_or_default();
    let key = if reset { key } else { None };
    let hash = idempotency::hash_of(
        device.device,
        "POST /groups/{jid}/invite/reset",
        &json!(group),
    );
    let work = async {
        let GroupAnswer::InviteCode(code) = call(&state, device.device, request).await? else {
            return Err(ApiError::internal("an invite query answered something else").into());
        };
        let mut fields =
            json!({"group_jid": group, "invite_link": format!("{INVITE_LINK_PREFIX}{code}")});
        if reset {
            fields["reset_at"] = json!(rfc3339(unix_now()));
        }
        let message = if reset {
            "Invite link reset successfully"
        } else {
            "Invite link retrieved successfully"
        };
        render(state.config.response_style, StatusCode::OK, message, fields)
    };
    run_keyed(&state, &device.user, key, hash, work).await
}

/// `GET /groups/{jid}/invite`.
pub(crate) async fn invite_link(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    invite(state, target, jid, headers, false).await
}

/// `POST /groups/{jid}/invite/reset`.
pub(crate) async fn reset_invite(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    invite(state, target, jid, headers, true).await
}

/// `PUT /groups/{jid}/ephemeral`: `{duration_seconds}` in {0, 86400, 604800, 7776000}.
pub(crate) async fn ephemeral(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (request, key) = checked(bodies::ephemeral(bodies::path_group(&jid), &body), &headers)?;
    let GroupCall::Set {
        group,
        setting: Setting::Ephemeral(secs),
    } = &request
    else {
        return Err(ApiError::internal("ephemeral body read as another call"));
    };
    let (group, secs) = (group.to_string(), *secs);
    let hash = idempotency::hash_of(
        device.device,
        "PUT /groups/{jid}/ephemeral",
        &json!([group, secs]),
    );
    let work = async {
        call(&state, device.device, request).await?;
        render(
            state.config.response_style,
            StatusCode::OK,
            "Disappearing messages updated successfully",
            json!({"group_jid": group, "duration_seconds": secs}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}

/// `DELETE /groups/{jid}/leave`.
pub(crate) async fn leave(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = GroupCall::Leave {
        group: bodies::path_group(&jid),
    };
    let (request, key) = checked(bodies::checked(request, Vec::new()), &headers)?;
    let group = request.group().map(ToString::to_string).unwrap_or_default();
    let hash = idempotency::hash_of(device.device, "DELETE /groups/{jid}/leave", &json!(group));
    let work = async {
        call(&state, device.device, request).await?;
        render(
            state.config.response_style,
            StatusCode::OK,
            "Left the group successfully",
            json!({"group_jid": group}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}
