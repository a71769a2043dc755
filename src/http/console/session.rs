//! Browser sessions of the console: a cookie instead of an `Authorization` header, so an
//! `<img>` can show a QR code and an `EventSource` can follow a device.
//!
//! The cookie holds only a random session id (256 bits); the token the operator typed is
//! checked once at sign-in and never kept, in the browser or here. Sessions are kept in memory
//! and written to the store under the SHA-256 of their id (never the id), with their expiry,
//! so a restart keeps operators signed in; all of them are read back when the gateway starts.
//! A sign-out is flushed before it is answered, so a crash cannot bring a session back; a
//! sign-in that a crash loses only means signing in again. The cookie is `HttpOnly` (scripts
//! cannot read it), `SameSite=Strict` (other sites cannot send it) and `Secure` when the request
//! came over TLS (`X-Forwarded-Proto: https` from the proxy in front). Requests that change
//! something must also carry the session's CSRF token in `X-CSRF-Token`, which only the
//! console's own script can read (from the sign-in answer): a double check against
//! cross-site requests beside `SameSite`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wuts_store::gateway::{GatewayStore, TokenHash, UserId};

use crate::http::unix_now;

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
    /// Unix seconds.
    expires: u64,
}

/// A session as the store keeps it (JSON; `v` for a later change of shape).
#[derive(Serialize, Deserialize)]
struct Record {
    v: u8,
    /// `None` for the admin.
    user: Option<String>,
    /// The user's token hash at sign-in, base64.
    token: Option<String>,
    csrf: String,
    expires: u64,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

impl Session {
    fn encode(&self) -> Vec<u8> {
        let (user, token) = match &self.principal {
            Principal::Admin => (None, None),
            Principal::User { id, token } => (
                Some(id.as_str().to_owned()),
                Some(B64.encode(token.as_bytes())),
            ),
        };
        let record = Record {
            v: 1,
            user,
            token,
            csrf: self.csrf.clone(),
            expires: self.expires,
        };
        serde_json::to_vec(&record).unwrap_or_default()
    }

    /// A stored session; `None` for one this build cannot read (it is dropped: sign in again).
    fn decode(bytes: &[u8]) -> Option<Self> {
        let record: Record = serde_json::from_slice(bytes).ok()?;
        if record.v != 1 {
            return None;
        }
        let principal = match (record.user, record.token) {
            (None, None) => Principal::Admin,
            (Some(id), Some(token)) => {
                let bytes: [u8; 32] = B64.decode(token).ok()?.try_into().ok()?;
                Principal::User {
                    id: UserId::new(id).ok()?,
                    token: TokenHash::from_bytes(bytes),
                }
            }
            _ => return None,
        };
        Some(Session {
            principal,
            csrf: record.csrf,
            expires: record.expires,
        })
    }
}

/// The live sessions, by the SHA-256 of their id; the store holds the same set.
pub(crate) struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    store: Arc<dyn GatewayStore>,
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

/// Drops expired sessions and, beyond [`MAX_SESSIONS`], the oldest; returns the keys dropped.
fn prune(map: &mut HashMap<[u8; 32], Session>, now: u64, room_for: usize) -> Vec<[u8; 32]> {
    let mut gone: Vec<[u8; 32]> = map
        .iter()
        .filter(|(_, s)| s.expires <= now)
        .map(|(k, _)| *k)
        .collect();
    for k in &gone {
        map.remove(k);
    }
    let limit = MAX_SESSIONS.saturating_sub(room_for);
    if map.len() > limit {
        let mut by_age: Vec<([u8; 32], u64)> = map.iter().map(|(k, s)| (*k, s.expires)).collect();
        by_age.sort_by_key(|(_, expires)| *expires);
        for (k, _) in by_age.into_iter().take(map.len() - limit) {
            map.remove(&k);
            gone.push(k);
        }
    }
    gone
}

impl Sessions {
    /// The sessions kept in `store` that have not expired (expired and unreadable ones are
    /// deleted). A store that cannot be read starts with none: everyone signs in again.
    pub(crate) fn new(store: Arc<dyn GatewayStore>) -> Self {
        let mut map = HashMap::new();
        let mut gone = Vec::new();
        match store.console_sessions() {
            Ok(records) => {
                for stored in records {
                    match Session::decode(&stored.record) {
                        Some(session) => {
                            map.insert(stored.key, session);
                        }
                        None => gone.push(stored.key),
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "console sessions not restored"),
        }
        gone.extend(prune(&mut map, unix_now(), 0));
        let sessions = Self {
            map: Mutex::new(map),
            store,
        };
        sessions.forget(&gone);
        sessions
    }

    fn forget(&self, keys: &[[u8; 32]]) {
        for k in keys {
            if let Err(error) = self.store.save_console_session(k, None) {
                tracing::warn!(%error, "an ended console session stays in the store");
            }
        }
    }

    /// Starts a session; returns its id (for the cookie) and CSRF token (for the script).
    pub(crate) fn create(&self, principal: Principal) -> (String, String) {
        let (id, csrf) = (random_text(), random_text());
        let now = unix_now();
        let session = Session {
            principal,
            csrf: csrf.clone(),
            expires: now + TTL.as_secs(),
        };
        let (k, record) = (key(&id), session.encode());
        let gone = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            let gone = prune(&mut map, now, 1);
            map.insert(k, session);
            gone
        };
        self.forget(&gone);
        // Not flushed: a sign-in lost in a crash only means signing in again.
        if let Err(error) = self.store.save_console_session(&k, Some(&record)) {
            tracing::warn!(%error, "console session kept in memory only");
        }
        (id, csrf)
    }

    /// The live session named by `id`.
    fn get(&self, id: &str) -> Option<(Principal, String)> {
        let k = key(id);
        let now = unix_now();
        let expired = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get(&k) {
                Some(s) if s.expires > now => return Some((s.principal.clone(), s.csrf.clone())),
                Some(_) => map.remove(&k).is_some(),
                None => false,
            }
        };
        if expired {
            self.forget(&[k]);
        }
        None
    }

    /// Ends a session, in memory and in the store (the caller flushes the store before it
    /// answers).
    pub(crate) fn remove(&self, id: &str) -> Result<(), wuts_store::Error> {
        let k = key(id);
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&k);
        self.store.save_console_session(&k, None)
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
    use wuts_store::gateway::MemGatewayStore;

    use super::*;

    fn sessions_over(store: &Arc<MemGatewayStore>) -> Sessions {
        Sessions::new(store.clone())
    }

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
        let sessions = sessions_over(&Arc::new(MemGatewayStore::new()));
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
        sessions.remove(&id).unwrap();
        assert!(
            sessions
                .authenticate(&parts(Method::GET, Some(&id), None))
                .is_none()
        );
    }

    #[test]
    fn sessions_outlive_a_restart_but_not_a_sign_out_or_their_expiry() {
        let store = Arc::new(MemGatewayStore::new());
        let before = sessions_over(&store);
        let user = Principal::User {
            id: UserId::new("ana").unwrap(),
            token: TokenHash::from_bytes([5; 32]),
        };
        let (admin_id, admin_csrf) = before.create(Principal::Admin);
        let (user_id, user_csrf) = before.create(user.clone());
        let (gone_id, _) = before.create(Principal::Admin);
        before.remove(&gone_id).unwrap();
        // The store holds hashes of the ids, never the ids.
        let stored = store.console_sessions().unwrap();
        assert_eq!(stored.len(), 2);
        for s in &stored {
            let text = String::from_utf8_lossy(&s.record);
            assert!(!text.contains(&admin_id) && !text.contains(&user_id));
            assert!(s.key == key(&admin_id) || s.key == key(&user_id));
        }
        // An expired record is neither restored nor kept.
        let old = Session {
            principal: Principal::Admin,
            csrf: "x".into(),
            expires: unix_now() - 1,
        };
        store
            .save_console_session(&key("old"), Some(&old.encode()))
            .unwrap();
        store
            .save_console_session(&key("junk"), Some(b"not json"))
            .unwrap();

        let after = sessions_over(&store);
        let found = after
            .authenticate(&parts(Method::POST, Some(&admin_id), Some(&admin_csrf)))
            .unwrap();
        assert_eq!(found.principal, Principal::Admin);
        let found = after
            .authenticate(&parts(Method::POST, Some(&user_id), Some(&user_csrf)))
            .unwrap();
        assert_eq!(found.principal, user);
        assert!(
            after
                .of(&parts(Method::GET, Some(&gone_id), None).headers)
                .is_none()
        );
        assert!(
            after
                .of(&parts(Method::GET, Some("old"), None).headers)
                .is_none()
        );
        assert_eq!(store.console_sessions().unwrap().len(), 2);
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
