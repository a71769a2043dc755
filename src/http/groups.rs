//! `POST /groups`: validate, call `Devices::create_group` for the caller's own device, answer
//! in the configured style. Every participant WhatsApp did not add is listed with its outcome
//! (`not_added`), so a client never has to guess who is in the group.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::auth::UserAuth;
use super::body::JsonBody;
use super::error::rfc3339;
use super::idempotency::{self, Lookup};
use super::{ApiError, AppState, ResponseStyle, devices, validate};
use crate::binary::Jid;
use crate::binary::jid::SERVER_PN;
use crate::client::api::Error as ClientError;
use crate::ops::groups::{GroupInfo, GroupParticipant, ParticipantOutcome};

/// `?device_id=`: which of the user's devices creates the group (or `device_id` in the body).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceChoice {
    device_id: Option<String>,
}

/// The handler.
pub(crate) async fn create_group(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
    headers: HeaderMap,
    query: Result<Query<DeviceChoice>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let named = query
        .device_id
        .or_else(|| body["device_id"].as_str().map(str::to_owned));
    let device = devices::resolve(&state, &user, named.as_deref())
        .await?
        .device;
    let (key, request) = match (idempotency::key_of(&headers), validate::create_group(&body)) {
        (Ok(key), Ok(request)) => (key, request),
        (key, request) => {
            let mut violations = match key {
                Err(ApiError::Validation(v)) => v,
                _ => Vec::new(),
            };
            violations.extend(request.err().unwrap_or_default());
            return Err(ApiError::Validation(violations));
        }
    };

    let hash = idempotency::request_hash(device, &request);
    let _key_guard = match &key {
        Some(key) => {
            let guard = state
                .in_flight
                .acquire_within(&user.id, key, state.config.idempotency_wait)
                .await?;
            match idempotency::lookup(&state, &user.id, key, &hash)? {
                Lookup::Replay(status, body) => return Ok(replay(status, body)),
                Lookup::Unknown => return Err(ApiError::OutcomeUnknown),
                Lookup::Run => idempotency::begin(&state, &user.id, key, hash, true).await?,
                Lookup::Rerun => idempotency::begin(&state, &user.id, key, hash, false).await?,
            }
            Some(guard)
        }
        None => None,
    };

    let requested = request.participants.clone();
    let started = Instant::now();
    let result = state.devices.create_group(device, request).await;
    // Only requests that went out to WhatsApp are WhatsApp's latency.
    if result
        .as_ref()
        .map_or_else(|e| e.reached_whatsapp(), |_| true)
    {
        state
            .metrics
            .observe_iq("group_create", started.elapsed(), result.is_ok());
    }
    let info = match (result, &key) {
        (Ok(info), _) => info,
        // A stopped device task may have sent it: kept pending like any unknown outcome.
        (Err(error), Some(key))
            if !error.outcome_unknown() && !matches!(error, ClientError::Closed) =>
        {
            idempotency::abandon(&state, &user.id, key);
            return Err(error.into());
        }
        (Err(error), _) => return Err(error.into()),
    };
    tracing::info!(group = %info.jid, "group created");

    let (status, body) = render(state.config.response_style, &info, &requested)?;
    if let Some(key) = &key {
        idempotency::complete(&state, &user.id, key, hash, status.as_u16(), &body).await;
    }
    Ok(json_response(status, body))
}

pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The stored response of an earlier request with the same key.
pub(super) fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, body);
    response.headers_mut().insert(
        idempotency::REPLAYED_HEADER,
        HeaderValue::from_static("true"),
    );
    response
}

/// The success response in `style`, as bytes (so the same bytes can be stored for replay).
fn render(
    style: ResponseStyle,
    info: &GroupInfo,
    requested: &[Jid],
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let not_added = not_added(info, requested);
    let members: Vec<&GroupParticipant> = info
        .participants
        .iter()
        .filter(|p| p.outcome == ParticipantOutcome::Added)
        .collect();
    let (status, body) = match style {
        ResponseStyle::Wuts => (
            StatusCode::CREATED,
            serde_json::to_vec(&WutsCreated {
                success: true,
                group: WutsGroup {
                    jid: info.jid.to_string(),
                    name: info.subject.clone(),
                    owner: info.owner.as_ref().map(ToString::to_string),
                    created_at: rfc3339(info.created_at),
                    is_announce: info.announcement,
                    is_locked: info.locked,
                    join_approval: info.join_approval,
                    members_count: members.len(),
                    participants: members.iter().map(|p| WutsParticipant::of(p)).collect(),
                    not_added,
                },
            }),
        ),
        ResponseStyle::Status => (
            StatusCode::OK,
            serde_json::to_vec(&StatusCreated {
                status: true,
                code: 200,
                message: "Group created successfully",
                data: StatusGroup {
                    jid: info.jid.to_string(),
                    name: info.subject.clone(),
                    description: info.description.clone().unwrap_or_default(),
                    owner: info
                        .owner
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    created_at: info.created_at,
                    participant_count: members.len(),
                    participants: members
                        .iter()
                        .map(|p| StatusParticipant {
                            jid: p.jid.to_string(),
                            is_admin: p.is_admin,
                            is_super_admin: p.is_super_admin,
                        })
                        .collect(),
                    not_added,
                },
            }),
        ),
    };
    Ok((status, body.map_err(ApiError::internal)?))
}

/// Every requested participant that is not a member: those WhatsApp reported with an error,
/// and those it did not list at all.
pub(super) fn not_added(info: &GroupInfo, requested: &[Jid]) -> Vec<NotAdded> {
    let mut out: Vec<NotAdded> = info
        .participants
        .iter()
        .filter_map(|p| match &p.outcome {
            ParticipantOutcome::Added => None,
            ParticipantOutcome::Failed { code, invite } => Some(NotAdded {
                jid: p.jid.to_string(),
                phone_number: phone_number(p),
                error_code: Some(*code),
                reason: reason(*code),
                invite_required: *code == 403 || invite.is_some(),
                invite: invite.as_ref().map(|invite| Invite {
                    code: invite.code.clone(),
                    expires_at: rfc3339(invite.expiration),
                    expiration: invite.expiration,
                }),
            }),
        })
        .collect();
    let listed = |jid: &Jid| {
        info.participants
            .iter()
            .any(|p| p.jid == *jid || p.phone_number.as_ref() == Some(jid))
    };
    out.extend(
        requested
            .iter()
            .filter(|jid| !listed(jid))
            .map(|jid| NotAdded {
                jid: jid.to_string(),
                phone_number: (jid.server == SERVER_PN).then(|| jid.to_string()),
                error_code: None,
                reason: "WhatsApp did not list this participant in the new group",
                invite_required: false,
                invite: None,
            }),
    );
    out
}

/// What WhatsApp's per-participant codes mean (protocol sheet §6.6).
pub(super) fn reason(code: u16) -> &'static str {
    match code {
        403 => "privacy settings forbid a direct add; send the invite instead",
        404 => "not on WhatsApp",
        408 => "left the group recently and cannot be re-added yet",
        409 => "already a member",
        417 => "cannot be added to the community; send an invite instead",
        419 | 500 => "the group is full",
        _ => "WhatsApp did not add this participant",
    }
}

/// The participant's phone-number JID: itself when it is one, else what WhatsApp mapped it to.
pub(super) fn phone_number(p: &GroupParticipant) -> Option<String> {
    if p.jid.server == SERVER_PN {
        Some(p.jid.to_string())
    } else {
        p.phone_number.as_ref().map(ToString::to_string)
    }
}

/// Document 000's success body.
#[derive(Serialize)]
struct WutsCreated {
    success: bool,
    group: WutsGroup,
}

#[derive(Serialize)]
struct WutsGroup {
    jid: String,
    name: String,
    owner: Option<String>,
    created_at: String,
    is_announce: bool,
    is_locked: bool,
    join_approval: bool,
    members_count: usize,
    participants: Vec<WutsParticipant>,
    not_added: Vec<NotAdded>,
}

#[derive(Serialize)]
struct WutsParticipant {
    jid: String,
    phone_number: Option<String>,
    is_admin: bool,
    is_super_admin: bool,
}

impl WutsParticipant {
    fn of(p: &GroupParticipant) -> Self {
        Self {
            jid: p.jid.to_string(),
            phone_number: phone_number(p),
            is_admin: p.is_admin,
            is_super_admin: p.is_super_admin,
        }
    }
}

/// A requested participant who is not in the group, and why.
#[derive(Serialize)]
pub(super) struct NotAdded {
    jid: String,
    phone_number: Option<String>,
    /// WhatsApp's per-participant code; `null` when WhatsApp did not list the participant.
    error_code: Option<u16>,
    reason: &'static str,
    invite_required: bool,
    invite: Option<Invite>,
}

#[derive(Serialize)]
struct Invite {
    code: String,
    expires_at: String,
    expiration: u64,
}

/// Document 002's success body.
#[derive(Serialize)]
struct StatusCreated {
    status: bool,
    code: u16,
    message: &'static str,
    data: StatusGroup,
}

#[derive(Serialize)]
struct StatusGroup {
    jid: String,
    name: String,
    description: String,
    owner: String,
    created_at: u64,
    participant_count: usize,
    participants: Vec<StatusParticipant>,
    not_added: Vec<NotAdded>,
}

#[derive(Serialize)]
struct StatusParticipant {
    jid: String,
    is_admin: bool,
    is_super_admin: bool,
}
