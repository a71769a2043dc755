//! Middleware: a request id and span per request with one log line at the end and its metrics
//! (`observe`), the `status` error envelope for `POST /groups` (`restyle_errors`), and the
//! fallbacks for unknown routes and methods.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
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

/// The method as a metric label: a closed set, so made-up methods cannot grow `/metrics`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
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
    let method = method_label(request.method());
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
    state.metrics.observe_request(&route, method, status, took);
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        // Probes come every few seconds from orchestrators and scrapers: at INFO they would
        // bury every other line.
        if is_probe(&route) {
            tracing::debug!(status, latency_us, "request finished");
        } else {
            tracing::info!(status, latency_us, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Liveness, readiness and metrics scrapes.
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// Routes still served past `max_connections`: operators must be able to look and act on an
/// overloaded gateway, and orchestrators to probe it.
fn is_reserved(route: &str) -> bool {
    route.starts_with("/admin") || is_probe(route)
}

/// Turns requests away when the gateway is over its connection limit (except the admin API and
/// probes), and answers in-flight requests 503 once the shutdown deadline has passed.
pub(crate) async fn admission(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let limits = &state.config.limits;
    if state.connections.open() > limits.max_connections && !is_reserved(&route) {
        return ApiError::ServerBusy.into_response();
    }
    let mut hard_stop = state.hard_stop.subscribe();
    tokio::select! {
        response = next.run(request) => response,
        _ = hard_stop.wait_for(|stop| *stop) => ApiError::ShuttingDown.into_response(),
    }
}

/// Puts every error the gateway answers in the JSON envelope, including rejections that did
/// not come through [`ApiError`] (axum's own extractor rejections, such as a path that is not
/// UTF-8): clients can always read `error_code`.
pub(crate) async fn envelope_errors(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || response.extensions().get::<ErrorReport>().is_some()
    {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such resource".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: state.config.body_limit,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        s if s.is_client_error() => ApiError::invalid(
            "request",
            "the request is malformed (its path, query or headers could not be read)",
        ),
        _ => ApiError::internal(format!("unenveloped {status} response")),
    };
    let mut enveloped = error.into_response();
    *enveloped.status_mut() = status;
    enveloped
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
