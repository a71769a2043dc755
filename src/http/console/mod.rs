//! The operator's console at `/console` (`/` leads there): static HTML, CSS and JavaScript
//! compiled into the binary (no CDN, no build step), over the same API every client uses.
//!
//! Sign-in (`POST /console/session`) trades the admin token or a user token for a cookie
//! session (`session.rs`); the script keeps only the session's CSRF token, in memory. Every
//! console and docs response carries a strict Content-Security-Policy (scripts and styles from
//! this origin only, nothing inline), `X-Content-Type-Options: nosniff` and
//! `frame-ancestors 'none'`.

pub(crate) mod session;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use self::session::{Principal, clear_cookie, csrf_ok, set_cookie};
use super::auth::hash_token;
use super::body::JsonBody;
use super::validate::Object;
use super::{ApiError, AppState};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const DEVICES_JS: &str = include_str!("assets/devices.js");
const GROUPS_JS: &str = include_str!("assets/groups.js");
const COMMUNITIES_JS: &str = include_str!("assets/communities.js");
const WEBHOOKS_JS: &str = include_str!("assets/webhooks.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Scripts, styles, images and connections from this origin only (QR images also as `data:`
/// and `blob:` URLs the script makes); no framing, no plugins, no `<base>` tricks.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The console's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route(
            "/console",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/devices.js",
            get(|| async { page(DEVICES_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/groups.js",
            get(|| async { page(GROUPS_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/communities.js",
            get(|| async { page(COMMUNITIES_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/webhooks.js",
            get(|| async { page(WEBHOOKS_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/app.css",
            get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/session",
            get(show_session).post(sign_in).delete(sign_out),
        )
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds the security headers to console and docs responses.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let applies = path == "/" || path.starts_with("/console") || path.starts_with("/docs");
    let mut response = next.run(request).await;
    if applies {
        let headers = response.headers_mut();
        headers.insert("content-security-policy", HeaderValue::from_static(CSP));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    }
    // Everywhere: no response of ours is to be sniffed into another type.
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// What the script learns about its session.
fn describe(state: &AppState, principal: &Principal, csrf: &str) -> Result<Value, ApiError> {
    Ok(match principal {
        Principal::Admin => json!({ "role": "admin", "csrf": csrf }),
        Principal::User { id, .. } => {
            let user = state.store.user(id)?.ok_or(ApiError::Unauthorized)?;
            json!({ "role": "user", "csrf": csrf, "user_id": user.id.as_str(), "name": user.name })
        }
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /console/session {"token"}`: signs in with the admin token or a user token.
async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut object = Object::new(&body, &["token"]).map_err(ApiError::Validation)?;
    let token = object.string("token").map(str::trim).unwrap_or_default();
    if !object.violations.is_empty() {
        return Err(ApiError::Validation(object.violations));
    }
    let hash = hash_token(token);
    let principal = if bool::from(hash.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        Principal::Admin
    } else {
        match state.store.user_by_token(&hash)? {
            Some(user) if bool::from(user.token_hash.as_bytes().ct_eq(hash.as_bytes())) => {
                Principal::User {
                    id: user.id,
                    token: hash,
                }
            }
            _ => return Err(ApiError::Unauthorized),
        }
    };
    let (id, csrf) = state.sessions.create(principal.clone());
    let described = describe(&state, &principal, &csrf)?;
    tracing::info!(role = %described["role"], "console sign-in");
    let mut response = no_store((StatusCode::CREATED, Json(described)).into_response());
    if let Ok(value) = HeaderValue::from_str(&set_cookie(&id, &headers)) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /console/session`: the session of the cookie (after a reload), with its CSRF token.
async fn show_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = state.sessions.of(&headers).ok_or(ApiError::Unauthorized)?;
    let described = describe(&state, &found.principal, &found.csrf)?;
    Ok(no_store(Json(described).into_response()))
}

/// `DELETE /console/session`: signs out (needs the CSRF token, so no other site can); 401
/// without a live session.
async fn sign_out(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = state.sessions.of(&headers).ok_or(ApiError::Unauthorized)?;
    if !csrf_ok(&method, &headers, &found.csrf) {
        return Err(ApiError::Unauthorized);
    }
    state.sessions.remove(&found.id)?;
    // Flushed before the answer: after a crash the session must not come back.
    super::durably(&state, |store| store.flush_gateway()).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&clear_cookie(&headers)) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}
