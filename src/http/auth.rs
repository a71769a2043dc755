//! Who is calling: the admin token and per-user API tokens.
//!
//! Tokens are never stored, only their SHA-256 ([`hash_token`]). A token is a UUID v4 (122
//! random bits), so a fast unsalted hash is enough: there is nothing to brute-force. Hashes are
//! compared with `subtle` so the comparison's timing says nothing about how close a guess was.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wuts_store::gateway::{GatewayStore, TokenHash, User, UserId};

use super::console::session::{ACT_AS_HEADER, Principal};
use super::{ApiError, AppState};

/// SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash::from_bytes(Sha256::digest(token.as_bytes()).into())
}

/// Decides the admin token at start-up and returns its hash, plus the token itself when it was
/// generated now (to be printed once; it cannot be recovered later).
///
/// `from_env` (`WUTS_ADMIN_TOKEN`) wins and replaces any stored hash; otherwise the stored hash
/// is kept; otherwise a new token is generated and its hash stored.
pub fn resolve_admin_token(
    store: &dyn GatewayStore,
    from_env: Option<&str>,
) -> Result<(TokenHash, Option<String>), wuts_store::Error> {
    if let Some(token) = from_env.map(str::trim).filter(|t| !t.is_empty()) {
        let hash = hash_token(token);
        if store.admin_token()? != Some(hash) {
            store.set_admin_token(&hash)?;
        }
        return Ok((hash, None));
    }
    if let Some(hash) = store.admin_token()? {
        return Ok((hash, None));
    }
    let token = format!("wuts_admin_{}", uuid::Uuid::new_v4().simple());
    let hash = hash_token(&token);
    store.set_admin_token(&hash)?;
    Ok((hash, Some(token)))
}

/// Constant-time equality of two hashes.
fn same(a: &TokenHash, b: &TokenHash) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The token of an `Authorization` header: `Bearer <token>`, or (when `bare_ok`) the token
/// alone, as clients of document 002 send it.
fn token_of(parts: &Parts, bare_ok: bool) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let mut words = value.split_whitespace();
    let first = words.next()?;
    let token = if first.eq_ignore_ascii_case("bearer") {
        words.next()?
    } else if bare_ok {
        first
    } else {
        return None;
    };
    // Anything after the token (a second word) means this is not a token we issued.
    words.next().is_none().then_some(token)
}

/// Proof that the request carries the admin token.
#[derive(Debug)]
pub struct AdminAuth;

impl FromRequestParts<Arc<AppState>> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = token_of(parts, false) else {
            // No header: the console's cookie session, if it is an admin one.
            return match state.sessions.authenticate(parts) {
                Some(found) if found.principal == Principal::Admin => Ok(AdminAuth),
                _ => Err(ApiError::Unauthorized),
            };
        };
        if same(&hash_token(token), &state.admin_token) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// The user whose token the request carries. A user token reaches only this user's device.
#[derive(Debug)]
pub struct UserAuth(pub User);

impl FromRequestParts<Arc<AppState>> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = token_of(parts, true) else {
            return session_user(parts, state).map(UserAuth);
        };
        let hash = hash_token(token);
        match state.store.user_by_token(&hash)? {
            // The index lookup found the user by hash; confirm in constant time anyway, so
            // trust never rests on a variable-time comparison.
            Some(user) if same(&user.token_hash, &hash) => {
                tracing::Span::current().record("user", user.id.as_str());
                Ok(UserAuth(user))
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The user a console session acts for: a user session's own user while its token is still the
/// one signed in with (rotating the token ends the session), or for an admin session the user
/// named in `X-WUTS-User` (an admin can already rotate any token and act as that user, so this
/// grants nothing new; it only spares the console from handling user tokens).
fn session_user(parts: &Parts, state: &AppState) -> Result<User, ApiError> {
    let found = state
        .sessions
        .authenticate(parts)
        .ok_or(ApiError::Unauthorized)?;
    let user = match found.principal {
        Principal::User { id, token } => state
            .store
            .user(&id)?
            .filter(|user| same(&user.token_hash, &token)),
        Principal::Admin => {
            let id = parts
                .headers
                .get(ACT_AS_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| UserId::new(v.trim()).ok())
                .ok_or(ApiError::Unauthorized)?;
            state.store.user(&id)?
        }
    };
    let user = user.ok_or(ApiError::Unauthorized)?;
    tracing::Span::current().record("user", user.id.as_str());
    Ok(user)
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use wuts_store::gateway::MemGatewayStore;

    use super::*;

    fn parts(authorization: Option<&str>) -> Parts {
        let mut builder = Request::builder();
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_and_bare_tokens_are_read() {
        assert_eq!(token_of(&parts(Some("Bearer abc")), false), Some("abc"));
        assert_eq!(token_of(&parts(Some("bearer  abc ")), false), Some("abc"));
        assert_eq!(token_of(&parts(Some("abc")), true), Some("abc"));
        assert_eq!(token_of(&parts(Some("abc")), false), None);
        assert_eq!(token_of(&parts(Some("Basic abc")), true), None);
        assert_eq!(token_of(&parts(Some("Bearer ")), true), None);
        assert_eq!(token_of(&parts(Some("Bearer a b")), true), None);
        assert_eq!(token_of(&parts(None), true), None);
    }

    #[test]
    fn admin_token_is_generated_once_then_kept() {
        let store = MemGatewayStore::new();
        let (hash, shown) = resolve_admin_token(&store, None).unwrap();
        let shown = shown.unwrap();
        assert_eq!(hash, hash_token(&shown));
        let (again, none) = resolve_admin_token(&store, None).unwrap();
        assert_eq!((again, none), (hash, None));
        let (from_env, none) = resolve_admin_token(&store, Some("operator-set")).unwrap();
        assert_eq!((from_env, none), (hash_token("operator-set"), None));
        assert_eq!(store.admin_token().unwrap(), Some(from_env));
    }
}
