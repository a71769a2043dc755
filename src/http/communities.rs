//! The community routes (user token; `?device_id=` picks the device as everywhere):
//! `POST /communities` creates one (WhatsApp adds its announcement group), its participants
//! are changed as a group's are, and `GET`/`POST /communities/{jid}/groups` and `DELETE
//! /communities/{jid}/groups/{group_jid}` list, link and unlink its groups. Bodies and paths are
//! checked before anything is sent; every change honours `Idempotency-Key`; answers come in
//! the configured style.
//!
//! WhatsApp's refusals: not an admin of the community (or, to link, of the group)
//! `NOT_GROUP_ADMIN`, unknown community or group `GROUP_NOT_FOUND`, a group already in a
//! community `GROUP_ALREADY_LINKED`, a group that is not a community (or a community to link,
//! or the announcement group to unlink) `COMMUNITY_REFUSED`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::devices::Target;
use super::group_admin::{change_participants, checked, detail, group_error, render};
use super::group_bodies as bodies;
use super::groups::not_added;
use super::idempotency::{self, Failure, run_keyed};
use super::validate::{self, Object};
use super::{ApiError, AppState, ErrorCode};
use crate::client::api::{DeviceId, Error as ClientError};
use crate::ops::groups::{CommunityCall, GroupAnswer, GroupCall, LinkedGroup, ParticipantAction};

/// WhatsApp's refusal of a community request; `what` says which, for the sentence.
fn community_error(error: ClientError, what: Request) -> ApiError {
    let ClientError::Rejected { code, text } = error else {
        return error.into();
    };
    let (api, message) = match (code, what) {
        (409, _) => (
            ErrorCode::GroupAlreadyLinked,
            "the group already belongs to a community; unlink it there first",
        ),
        (406, Request::List) => (ErrorCode::CommunityRefused, "this group is not a community"),
        (406, Request::Link) => (
            ErrorCode::CommunityRefused,
            "WhatsApp refused the link: the group in the path is not a community, or the \
             group to link is a community itself",
        ),
        (406, Request::Unlink) => (
            ErrorCode::CommunityRefused,
            "WhatsApp refused the unlink: the group in the path is not a community, or this is \
             the community's announcement group, which cannot be unlinked",
        ),
        _ => return group_error(ClientError::Rejected { code, text }, false),
    };
    ApiError::Group {
        code: api,
        message: message.to_owned(),
        whatsapp_code: code,
        whatsapp_text: text,
        extra: None,
    }
}

/// Which community request, for its error sentences.
#[derive(Clone, Copy, Debug)]
enum Request {
    List,
    Link,
    Unlink,
}

async fn call(
    state: &AppState,
    device: DeviceId,
    request: CommunityCall,
    what: Request,
) -> Result<GroupAnswer, Failure> {
    state
        .devices
        .group(device, GroupCall::Community(request))
        .await
        .map_err(|e| Failure::of(e, |e| community_error(e, what)))
}

fn linked_view(g: &LinkedGroup) -> Value {
    json!({
        "jid": g.jid.to_string(),
        "name": g.subject,
        "is_announcement": g.is_announcement,
    })
}

/// `POST /communities`: `{name, description?, participants?}` →
/// `201 {success, community:{...as GET /groups/{jid}, not_added, announcement_group}}`.
/// The announcement group is read back from the community's groups; should that read fail,
/// the community exists all the same and `announcement_group` is `null`.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (request, key) = checked(validate::create_community(&body), &headers)?;
    let hash = idempotency::request_hash(device.device, &request);
    let work = async {
        let requested = request.participants.clone();
        let info = state
            .devices
            .create_group(device.device, request)
            .await
            .map_err(|e| Failure::of(e, ApiError::from))?;
        tracing::info!(community = %info.jid, "community created");
        let list = CommunityCall::SubGroups {
            community: info.jid.clone(),
        };
        let announcement = match call(&state, device.device, list, Request::List).await {
            Ok(GroupAnswer::SubGroups(groups)) => {
                groups.iter().find(|g| g.is_announcement).map(linked_view)
            }
            Ok(_) | Err(_) => {
                tracing::warn!(community = %info.jid, "its announcement group could not be read");
                None
            }
        };
        let mut community = detail(&info);
        community["not_added"] = json!(not_added(&info, &requested));
        community["announcement_group"] = json!(announcement);
        render(
            state.config.response_style,
            StatusCode::CREATED,
            "Community created successfully",
            json!({ "community": community }),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}

/// `POST /communities/{jid}/participants` (default `add`).
pub(crate) async fn add_participants(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let route = "/communities/{jid}/participants";
    change_participants(
        state,
        target,
        jid,
        headers,
        body,
        ParticipantAction::Add,
        route,
    )
    .await
}

/// `DELETE /communities/{jid}/participants` (default `remove`).
pub(crate) async fn remove_participants(
    State(state): State<Arc<AppState>>,
    target: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let route = "/communities/{jid}/participants";
    let remove = ParticipantAction::Remove;
    change_participants(state, target, jid, headers, body, remove, route).await
}

/// `GET /communities/{jid}/groups`: `{success, community_jid, groups:[{jid, name,
/// is_announcement}]}`, the announcement group first.
pub(crate) async fn groups(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
) -> Result<Response, ApiError> {
    let request = GroupCall::Community(CommunityCall::SubGroups {
        community: bodies::path_group(&jid),
    });
    let GroupCall::Community(request) =
        bodies::checked(request, Vec::new()).map_err(ApiError::Validation)?
    else {
        return Err(ApiError::internal(
            "a community request read as another call",
        ));
    };
    let community = request.community().to_string();
    let work = async {
        let GroupAnswer::SubGroups(list) =
            call(&state, device.device, request, Request::List).await?
        else {
            return Err(ApiError::internal("a sub-groups query answered something else").into());
        };
        let list: Vec<Value> = list.iter().map(linked_view).collect();
        render(
            state.config.response_style,
            StatusCode::OK,
            "Community groups retrieved successfully",
            json!({"community_jid": community, "groups": list}),
        )
    };
    run_keyed(&state, &device.user, None, [0; 32], work).await
}

/// `POST /communities/{jid}/groups`: `{group_jid}` links an existing group (admins of both):
/// `{success, community_jid, group_jid}`.
pub(crate) async fn link(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let community = bodies::path_group(&jid);
    let (group, violations) = match Object::new(&body, &["group_jid"]) {
        Err(violations) => (None, violations),
        Ok(mut object) => {
            let group = object.string("group_jid").map(bodies::path_group);
            (group, object.violations)
        }
    };
    // A missing group is listed as such; the rules then only speak of the path.
    let request = GroupCall::Community(CommunityCall::Link {
        group: group.unwrap_or_else(|| community.clone()),
        community,
    });
    let (request, key) = checked(bodies::checked(request, violations), &headers)?;
    change(&state, device, request, key, Request::Link).await
}

/// `DELETE /communities/{jid}/groups/{group_jid}`: `{success, community_jid, group_jid}`.
pub(crate) async fn unlink(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path((jid, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = GroupCall::Community(CommunityCall::Unlink {
        community: bodies::path_group(&jid),
        group: bodies::path_group(&group),
    });
    let (request, key) = checked(bodies::checked(request, Vec::new()), &headers)?;
    change(&state, device, request, key, Request::Unlink).await
}

/// Runs a link or unlink under its idempotency key.
async fn change(
    state: &Arc<AppState>,
    device: wuts_store::gateway::GatewayDevice,
    request: GroupCall,
    key: Option<wuts_store::gateway::IdempotencyKey>,
    what: Request,
) -> Result<Response, ApiError> {
    let GroupCall::Community(
        request @ (CommunityCall::Link { community, group }
        | CommunityCall::Unlink { community, group }),
    ) = &request
    else {
        return Err(ApiError::internal("a link read as another call"));
    };
    let (community, group, request) = (community.to_string(), group.to_string(), request.clone());
    let route = match what {
        Request::Link => "POST /communities/{jid}/groups",
        _ => "DELETE /communities/{jid}/groups/{group_jid}",
    };
    let hash = idempotency::hash_of(device.device, route, &json!([community, group]));
    let work = async {
        call(state, device.device, request, what).await?;
        let message = match what {
            Request::Link => "Group linked to the community successfully",
            _ => "Group unlinked from the community successfully",
        };
        render(
            state.config.response_style,
            StatusCode::OK,
            message,
            json!({"community_jid": community, "group_jid": group}),
        )
    };
    run_keyed(state, &device.user, key, hash, work).await
}
