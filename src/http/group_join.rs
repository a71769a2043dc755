//! The group routes about joining: `POST /groups/join` (by link or by the invite a
//! privacy-restricted participant received) and the join requests of join-approval groups
//! (`GET`/`POST /groups/{jid}/requests`). Same reading, errors, styles and idempotency as
//! `group_admin.rs`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::devices::Target;
use super::error::rfc3339;
use super::group_admin::{call, checked, outcome, render};
use super::group_bodies as bodies;
use super::idempotency::{self, run_keyed};
use super::{ApiError, AppState};
use crate::ops::groups::{GroupAnswer, GroupCall, ParticipantAction};

/// `GET /groups/{jid}/requests`: pending join requests (admins only), oldest first:
/// `{success, group_jid, requests:[{jid, phone_number, requested_at}]}`.
pub(crate) async fn requests(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
) -> Result<Response, ApiError> {
    let request = GroupCall::Requests {
        group: bodies::path_group(&jid),
    };
    let request = bodies::checked(request, Vec::new()).map_err(ApiError::Validation)?;
    let group = request.group().map(ToString::to_string).unwrap_or_default();
    let work = async {
        let GroupAnswer::Requests(list) = call(&state, device.device, request).await? else {
            return Err(ApiError::internal("a requests query answered something else").into());
        };
        let list: Vec<Value> = list
            .iter()
            .map(|r| {
                json!({
                    "jid": r.jid.to_string(),
                    "phone_number": (r.jid.server == crate::binary::jid::SERVER_PN).then(|| r.jid.to_string()),
                    "requested_at": rfc3339(r.requested_at),
                })
            })
            .collect();
        render(
            state.config.response_style,
            StatusCode::OK,
            "Join requests retrieved successfully",
            json!({"group_jid": group, "requests": list}),
        )
    };
    run_keyed(&state, &device.user, None, [0; 32], work).await
}

/// `POST /groups/{jid}/requests`: `{action: approve|reject, participants}`; a `status` per
/// participant (404: they did not ask).
pub(crate) async fn decide_requests(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (request, key) = checked(
        bodies::decide_requests(bodies::path_group(&jid), &body),
        &headers,
    )?;
    let GroupCall::DecideRequests {
        group,
        approve,
        participants,
    } = &request
    else {
        return Err(ApiError::internal("requests body read as another call"));
    };
    let action = if *approve { "approve" } else { "reject" };
    let canonical = json!([
        group.to_string(),
        action,
        participants
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    ]);
    let hash = idempotency::hash_of(device.device, "POST /groups/{jid}/requests", &canonical);
    let group = group.to_string();
    let work = async {
        let GroupAnswer::Participants(outcomes) = call(&state, device.device, request).await?
        else {
            return Err(ApiError::internal("a requests decision answered something else").into());
        };
        let list: Vec<Value> = outcomes
            .iter()
            .map(|p| outcome(p, ParticipantAction::Add))
            .collect();
        render(
            state.config.response_style,
            StatusCode::OK,
            "Join requests decided successfully",
            json!({"jid": group, "action": action, "participants": list}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}

/// `POST /groups/join`: `{link}`, or `{code, group_jid, inviter_jid}` (the invite a
/// privacy-restricted participant received). `pending_approval` when an admin must approve.
pub(crate) async fn join(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (request, key) = checked(bodies::join(&body), &headers)?;
    let canonical = bodies::canonical_join(&request);
    let hash = idempotency::hash_of(device.device, "POST /groups/join", &canonical);
    let work = async {
        let GroupAnswer::Joined { group, pending } = call(&state, device.device, request).await?
        else {
            return Err(ApiError::internal("a join answered something else").into());
        };
        render(
            state.config.response_style,
            StatusCode::OK,
            if pending {
                "Join request sent; an admin must approve it"
            } else {
                "Joined the group successfully"
            },
            json!({"pending_approval": pending, "group_jid": group.to_string()}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}
