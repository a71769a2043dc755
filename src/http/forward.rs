//! Cluster mode: any node answers any call. A request whose device runs on another node is
//! passed there whole and the owner's answer is returned as it came, so the caller cannot tell
//! which node owns the device.
//!
//! The handler finds out (its device call fails with `NotHere` before it changed anything:
//! `devices::resolve` asks first, ahead of any idempotency record), and this middleware,
//! which kept the request's bytes, replays it to the owner signed with the cluster secret,
//! within the caller's deadline. A forwarded request is never forwarded again: if the device
//! moved meanwhile, the answer is `DEVICE_FAILOVER` with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::AppState;
use super::error::{ApiError, ForwardTo};
use crate::client::api::Placement;
use crate::cluster::forward::{ClusterSecret, ForwardMeta};
use crate::node::forward::{
    ForwardError, Outgoing, check_forwarded, forward as send, forward_stream, unix_ms,
};

tokio::task_local! {
    /// Set while serving a request another node forwarded here.
    static FORWARDED: bool;
}

/// Whether the request being served was forwarded by another node.
pub(crate) fn is_forwarded() -> bool {
    FORWARDED.try_with(|f| *f).unwrap_or(false)
}

/// Cluster mode's forwarding settings.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// The secret every node signs forwarded requests with (kept in the cluster database).
    pub secret: Arc<ClusterSecret>,
    /// How long a forwarded call may take in all (the WhatsApp request timeout and a margin).
    pub deadline: Duration,
}

/// The middleware; a no-op outside cluster mode.
pub(crate) async fn forward(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(settings) = state.config.forward.clone() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let limit = state.config.body_limit;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError::PayloadTooLarge { limit }.into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let (method, headers) = (parts.method.clone(), parts.headers.clone());
    let checked = check_forwarded(
        &settings.secret,
        &method,
        &path,
        &headers,
        &bytes,
        unix_ms(),
    );
    match checked {
        Err(refusal) => {
            tracing::warn!(%refusal, "a forwarded request was refused");
            return ApiError::Unauthorized.into_response();
        }
        Ok(Some(_)) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            return FORWARDED.scope(true, next.run(request)).await;
        }
        Ok(None) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    let Some(ForwardTo(device)) = response.extensions().get::<ForwardTo>().copied() else {
        return response;
    };
    let (addr, epoch) = match state.devices.locate(device).await {
        Placement::Owner { addr, epoch } => (addr, epoch),
        Placement::Failover { retry_after } => {
            return failover(retry_after.as_secs().max(1));
        }
        // Started here meanwhile (just claimed): the caller's retry lands.
        Placement::Here => return failover(1),
    };
    let meta = ForwardMeta {
        device: device.get(),
        epoch,
        deadline_ms: unix_ms()
            .saturating_add(u64::try_from(settings.deadline.as_millis()).unwrap_or(u64::MAX)),
        hops: 1,
    };
    let outgoing = Outgoing {
        method: method.clone(),
        path,
        headers,
        body: bytes,
    };
    state.metrics.forwarded();
    if method == Method::GET
        && outgoing
            .path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/events"))
    {
        // An event stream: passed through as it flows, not collected.
        return match forward_stream(&settings.secret, addr, &outgoing, &meta).await {
            Ok(answer) => {
                let (parts, body) = answer.into_parts();
                let mut response = Response::new(Body::new(body));
                *response.status_mut() = parts.status;
                copy_end_to_end(&parts.headers, &mut response);
                response
            }
            Err(_) => failover(1),
        };
    }
    match send(&settings.secret, addr, &outgoing, &meta).await {
        Ok(answer) => answer_response(answer.status, &answer.headers, answer.body),
        Err(ForwardError::Connect { .. }) => failover(1),
        Err(error @ (ForwardError::Timeout | ForwardError::Exchange(_))) => {
            tracing::warn!(%error, %device, "forwarding failed after the request left");
            let broken = matches!(error, ForwardError::Exchange(_));
            if matches!(method, Method::GET | Method::HEAD)
                || (broken && never_began(&state, &outgoing.headers).await)
            {
                failover(1)
            } else {
                // The owner may have acted: never retried blindly.
                ApiError::OutcomeUnknown.into_response()
            }
        }
        Err(error) => ApiError::internal(error).into_response(),
    }
}

/// Whether a keyed request whose exchange broke off provably never reached WhatsApp: the
/// owner records the `Idempotency-Key` (shared by every node) before it sends anything, and
/// a broken connection cancels its handler, so no record means nothing was sent and the
/// caller may simply retry. A timeout is not asked about: the owner may still be working.
async fn never_began(state: &Arc<AppState>, headers: &HeaderMap) -> bool {
    let Ok(Some(key)) = super::idempotency::key_of(headers) else {
        return false;
    };
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers = headers.clone();
    let Ok(super::auth::UserAuth(user)) =
        <super::auth::UserAuth as axum::extract::FromRequestParts<_>>::from_request_parts(
            &mut parts, state,
        )
        .await
    else {
        return false;
    };
    let state = state.clone();
    let stored = tokio::task::spawn_blocking(move || state.store.stored_response(&user.id, &key));
    matches!(stored.await, Ok(Ok(None)))
}

fn failover(retry_after_secs: u64) -> Response {
    ApiError::DeviceFailover { retry_after_secs }.into_response()
}

/// The owner's answer as ours: its status, body and end-to-end headers.
fn answer_response(status: axum::http::StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    copy_end_to_end(headers, &mut response);
    response
}

/// The owner's headers that describe the answer itself (not its connection or framing).
fn copy_end_to_end(headers: &HeaderMap, response: &mut Response) {
    for (name, value) in headers {
        let hop_by_hop = name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name == header::CONTENT_LENGTH
            || name == header::DATE
            || name.as_str() == "keep-alive";
        if !hop_by_hop {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}
