//! Browser sessions of the console: a cookie instead of an `Authorization` header, so an
//! `<img>` can show a QR code and an `EventSource` can follow a device.
//!
//! The cookie holds only a random session id (256 bits); the token the operator typed is
//! checked once at sign-in and never kept, in the browser or here. Sessions live in memory: a
//! restart signs everyone out, which is the safe direction. The cookie is `HttpOnly` (scripts
//! cannot read it), `SameSite=Strict` (other sites cannot send it) and `Secure` when the request
//! came over TLS (`X-Forwarded-Proto: https` from the proxy in front). Requests that change
//! something must also carry the session's CSRF token in `X-CSRF-Token`, which only the
//! console's own script can read (from the sign-in answer): a double check against
//! cross-site requests beside `SameSite`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wuts_store::gateway::{TokenHash, UserId};

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "wuts_session";
/// Header carrying the CSRF token on requests that change state.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Header by which an admin session acts on one user's device routes (`/groups`, ...).
pub(crate) const ACT_AS_HEADER: &str = "x-wuts-user";
/// How long a session lasts from sign-in.
pub(crate) const TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    /// With the admin token.
    Admin,
    /// With this user's token (hash kept to end the session when the token is rotated).
    User { id: UserId, token: TokenHash },
}

struct Session {
    principal: Principal,
    csrf: String,
    expires: Instant,
}

/// The live sessions, by the SHA-256 of their id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// A session found for a request.
pub(crate) struct Found {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    pub(crate) id: String,
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session; returns its id (for the cookie) and CSRF token (for the script).
    pub(crate) fn create(&self, principal: Principal) -> (String, String) {
        let (id, csrf) = (random_text(), random_text());
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            key(&id),
            Session {
                principal,
                csrf: csrf.clone(),
                expires: now + TTL,
            },
        );
        (id, csrf)
    }

    /// The live session named by `id`.
    fn get(&self, id: &str) -> Option<(Principal, String)> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let k = key(id);
        match map.get(&k) {
            Some(s) if s.expires > Instant::now() => Some((s.principal.clone(), s.csrf.clone())),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub(crate) fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(id));
    }

    /// The session of a request's cookie, if any and live.
    pub(crate) fn of(&self, headers: &HeaderMap) -> Option<Found> {
        let id = cookie(headers)?;
        let (principal, csrf) = self.get(&id)?;
        Some(Found {
            principal,
            csrf,
            id,
        })
    }

    /// The session of a request that authenticates by cookie: found, and for a method that
    /// changes state, carrying the matching CSRF token. `None` means "not signed in this way".
    pub(crate) fn authenticate(&self, parts: &Parts) -> Option<Found> {
        let found = self.of(&parts.headers)?;
        csrf_ok(&parts.method, &parts.headers, &found.csrf).then_some(found)
    }
}

/// Whether a request may act on a session whose CSRF token is `csrf`: reads always may; writes
/// must echo the token in [`CSRF_HEADER`].
pub(crate) fn csrf_ok(method: &Method, headers: &HeaderMap, csrf: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    headers
        .get(CSRF_HEADER)
        .map(|v| bool::from(v.as_bytes().ct_eq(csrf.as_bytes())))
        .unwrap_or(false)
}

/// The session id in a `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value starting a session.
pub(crate) fn set_cookie(id: &str, headers: &HeaderMap) -> String {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        TTL.as_secs()
    )
}

/// The `Set-Cookie` value ending one.
pub(crate) fn clear_cookie(headers: &HeaderMap) -> String {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, Request};

    use super::*;

    fn parts(method: Method, cookie: Option<&str>, csrf: Option<&str>) -> Parts {
        let mut builder = Request::builder().method(method);
        if let Some(c) = cookie {
            builder = builder.header(header::COOKIE, format!("other=1; {COOKIE}={c}"));
        }
        if let Some(t) = csrf {
            builder = builder.header(CSRF_HEADER, t);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn sessions_need_the_cookie_and_writes_the_csrf_token() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create(Principal::Admin);
        assert!(
            sessions
                .authenticate(&parts(Method::GET, Some(&id), None))
                .is_some()
        );
        assert!(
            sessions
                .authenticate(&parts(Method::POST, Some(&id), None))
                .is_none()
        );
        assert!(
            sessions
                .authenticate(&parts(Method::POST, Some(&id), Some("guess")))
                .is_none()
        );
        let found = sessions.authenticate(&parts(Method::DELETE, Some(&id), Some(&csrf)));
        assert_eq!(found.unwrap().principal, Principal::Admin);
        assert!(
            sessions
                .authenticate(&parts(Method::GET, Some("forged"), None))
                .is_none()
        );
        sessions.remove(&id);
        assert!(
            sessions
                .authenticate(&parts(Method::GET, Some(&id), None))
                .is_none()
        );
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_tls() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie("abc", &headers);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(set_cookie("abc", &headers).ends_with("; Secure"));
        assert!(clear_cookie(&headers).contains("Max-Age=0"));
    }
}
