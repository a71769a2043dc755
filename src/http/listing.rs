//! `GET /admin/tenants` and `GET /admin/users`: filtered and paged listings.
//!
//! Both answer a JSON array, oldest interface kept; a page that is not the last carries
//! `X-Next-Cursor`, to pass back as `?cursor=`. A cursor is the last id of the page: records
//! come in id order, so a page stays correct while records are added or deleted. Unknown query
//! parameters are refused (400), so a misspelt filter never silently lists everything.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::admin::{TenantView, user_view};
use super::auth::AdminAuth;
use super::{ApiError, AppState};

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;
/// Header naming the next page's cursor.
const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// `?tenant_id=&q=&limit=&cursor=` (`tenant_id` for users only).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    tenant_id: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantQuery {
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn read<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
}

fn limit(text: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Whether `needle` (lower case) is in the id or the name.
fn matches(needle: &Option<String>, id: &str, name: &str) -> bool {
    needle
        .as_deref()
        .is_none_or(|n| id.contains(n) || name.to_lowercase().contains(n))
}

/// One page of `items` (already filtered and in id order) after `cursor`.
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| cursor.is_none_or(|c| id(item) > c))
        .collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = more
        .then(|| rest.last().map(|item| id(item).to_owned()))
        .flatten();
    (rest, next)
}

fn with_cursor(body: impl IntoResponse, next: Option<String>) -> Response {
    let mut response = body.into_response();
    if let Some(value) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(NEXT_CURSOR, value);
    }
    response
}

fn needle(q: Option<String>) -> Option<String> {
    q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty())
}

/// `GET /admin/tenants`.
pub(crate) async fn list_tenants(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = read(query)?;
    let limit = limit(query.limit.as_deref())?;
    let needle = needle(query.q);
    let mut tenants = state.store.tenants()?;
    tenants.retain(|t| matches(&needle, t.id.as_str(), &t.name));
    tenants.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let (tenants, next) = page(tenants, |t| t.id.as_str(), query.cursor.as_deref(), limit);
    let views: Vec<TenantView> = tenants.into_iter().map(TenantView::from).collect();
    Ok(with_cursor(Json(views), next))
}

/// `GET /admin/users`.
pub(crate) async fn list_users(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = read(query)?;
    let limit = limit(query.limit.as_deref())?;
    let needle = needle(query.q);
    let tenant = query.tenant_id.as_deref().map(str::trim);
    let mut users = state.store.users()?;
    users.retain(|u| {
        tenant.is_none_or(|t| u.tenant.as_str() == t) && matches(&needle, u.id.as_str(), &u.name)
    });
    users.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let (users, next) = page(users, |u| u.id.as_str(), query.cursor.as_deref(), limit);
    let views: Vec<_> = users.into_iter().map(|u| user_view(&state, u)).collect();
    Ok(with_cursor(Json(views), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let ids: Vec<String> = (0..7).map(|i| format!("id{i}")).collect();
        let (first, next) = page(ids.clone(), |s| s.as_str(), None, 3);
        assert_eq!(first, ["id0", "id1", "id2"]);
        let (second, next) = page(ids.clone(), |s| s.as_str(), next.as_deref(), 3);
        assert_eq!(second, ["id3", "id4", "id5"]);
        let (last, next) = page(ids, |s| s.as_str(), next.as_deref(), 3);
        assert_eq!((last, next), (vec!["id6".to_owned()], None));
        assert!(limit(Some("0")).is_err());
        assert!(limit(Some("1001")).is_err());
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
    }
}
