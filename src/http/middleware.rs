//! Middleware: a request id and span per request with one log line at the end and its metrics
//! (`observe`), the `status` error envelope for `POST /groups` (`restyle_errors`), and the
//! fallbacks for unknown routes and methods.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::error::ErrorReport;
use super::{ApiError, AppState, ResponseStyle};

/// The request-id header, read from the client when sane and always sent back.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client-supplied id is reused when it is 1 to 128 visible ASCII characters, so ids can be
/// followed across a proxy; otherwise a fresh one is made.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7E).contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Request id, span, log line and metrics for every request.
pub(crate) async fn observe(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        user = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe_request(&route, method.as_str(), status, took);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Re-renders error responses in document 002's envelope when the server is set to the
/// `status` style. Errors carry an [`ErrorReport`] extension (see `ApiError::into_response`),
/// so rejections from extractors are restyled too.
pub(crate) async fn restyle_errors(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if state.config.response_style != ResponseStyle::Status {
        return response;
    }
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(report.status_style().to_string()))
}

/// Fallback for routes that do not exist.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route (see /docs)".to_owned())
}

/// Fallback for a known route with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
