//! `GET /events`: the user's events as server-sent events, from the outbox. Each carries
//! `id:` (its sequence number), `event:` (its name) and `data:` (the envelope, as webhooks get
//! it). A client that reconnects with `Last-Event-ID` (or `?last_event_id=`) gets every event
//! after that one, then the live ones, without gaps. Without either it starts with new events.
//!
//! Auth: the user token, or `?ticket=` from `POST /events/ticket` (for browsers, whose
//! `EventSource` cannot send headers): one use, two minutes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use wuts_store::gateway::UserId;
use wuts_store::gateway::outbox::StoredEvent;

use super::auth::UserAuth;
use super::error::rfc3339;
use super::{ApiError, AppState, unix_now};
use crate::events::Live;

/// A server-sent event stream as the event routes answer it.
pub(crate) type EventStream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// Events read from the outbox at a time.
const PAGE: usize = 100;

/// `?format=`, `?last_event_id=`, `?ticket=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormatQuery {
    pub(crate) format: Option<String>,
    pub(crate) last_event_id: Option<u64>,
    pub(crate) ticket: Option<String>,
}

/// Where to resume: the `Last-Event-ID` header, else the query, else `None` (new events only).
pub(crate) fn resume_point(
    headers: &HeaderMap,
    query: Option<u64>,
) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .map(str::trim)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid("Last-Event-ID", "must be an event id from this stream")
            }),
        None => Ok(query),
    }
}

/// `GET /events`.
pub(crate) async fn stream_user(
    State(state): State<Arc<AppState>>,
    auth: Result<UserAuth, ApiError>,
    Query(q): Query<FormatQuery>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    let user = match (auth, q.ticket.as_deref()) {
        (Ok(UserAuth(user)), _) => user.id,
        (Err(_), Some(ticket)) => state
            .tickets
            .redeem(ticket, unix_now())
            .filter(|id| state.store.user(id).ok().flatten().is_some())
            .ok_or(ApiError::Unauthorized)?,
        (Err(e), None) => return Err(e),
    };
    let after = resume_point(&headers, q.last_event_id)?;
    Ok(outbox_sse(&state, user, after))
}

/// `POST /events/ticket`: a one-use ticket for `GET /events?ticket=`.
pub(crate) async fn issue_ticket(
    State(state): State<Arc<AppState>>,
    UserAuth(user): UserAuth,
) -> Json<Value> {
    let (ticket, expires) = state.tickets.issue(&user.id, unix_now(), rand::random());
    Json(json!({
        "success": true,
        "ticket": ticket,
        "expires_at": rfc3339(expires),
        "expires_in": crate::events::ticket::TICKET_TTL.as_secs(),
    }))
}

/// How often a caught-up stream reads the shared outbox again in cluster mode, where the
/// node running the device (not necessarily this one) appends its events.
const CLUSTER_POLL: std::time::Duration = std::time::Duration::from_secs(1);

struct Cursor {
    state: Arc<AppState>,
    user: UserId,
    /// The last sequence number sent (or skipped to).
    last: Option<u64>,
    buffer: VecDeque<StoredEvent>,
    live: tokio::sync::broadcast::Receiver<Live>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// The outbox stream of `user`, after `after` (`None`: from now on).
pub(crate) fn outbox_sse(state: &Arc<AppState>, user: UserId, after: Option<u64>) -> EventStream {
    // Subscribe before reading, so nothing falls between.
    let cursor = Cursor {
        live: state.events.subscribe(),
        stop: state.shutdown.subscribe(),
        state: state.clone(),
        user,
        last: after,
        buffer: VecDeque::new(),
    };
    let stream = stream::unfold(cursor, next).map(Ok).boxed();
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn next(mut c: Cursor) -> Option<(Event, Cursor)> {
    loop {
        if let Some(stored) = c.buffer.pop_front() {
            c.last = Some(stored.seq);
            return Some((to_event(&stored), c));
        }
        let user = c.user.clone();
        let hub = c.state.events.clone();
        let last = match c.last {
            Some(last) => last,
            None => {
                let read =
                    tokio::task::spawn_blocking(move || hub.store().outbox().last_seq(&user)).await;
                match read {
                    Ok(Ok(seq)) => {
                        c.last = Some(seq);
                        continue;
                    }
                    _ => return None,
                }
            }
        };
        let read = tokio::task::spawn_blocking(move || hub.events_after(&user, last, PAGE)).await;
        match read {
            Ok(Ok(page)) if !page.is_empty() => {
                c.buffer.extend(page);
                continue;
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "the event stream could not read the outbox");
                return None;
            }
            Err(_) => return None,
        }
        // Caught up: wait for a new event of this user (or a gap: read again). In cluster
        // mode another node may append it, unseen here: read again every second as well.
        let poll = async {
            match c.state.config.cluster_lease {
                Some(_) => tokio::time::sleep(CLUSTER_POLL).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(poll);
        loop {
            tokio::select! {
                _ = c.stop.wait_for(|stopping| *stopping) => return None,
                () = &mut poll => break,
                got = c.live.recv() => match got {
                    Ok(live) if live.user == c.user => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn to_event(stored: &StoredEvent) -> Event {
    let name = serde_json::from_slice::<Value>(&stored.body)
        .ok()
        .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned());
    Event::default()
        .id(stored.seq.to_string())
        .event(name)
        .data(String::from_utf8_lossy(&stored.body))
}
