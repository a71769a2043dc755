//! `GET /admin/users/{id}/events`: a device's events as server-sent events.
//!
//! The stream opens with a `state` event (the device's state and JID now) and, while pairing,
//! the current `qr` and `pair_code`; then, in the order the device emits them: `qr`,
//! `pair_code`, `pairing_timed_out`, `paired`, `connected`, `disconnected`, `logged_out`, and
//! `group` (a change to a group the account is in: `ops::groups::GroupEvent` as JSON). A client
//! too slow to keep up gets a `lagged` event saying how many it missed. Every `data` is a JSON
//! object. The stream ends
//! when the device is removed or the gateway stops.
//!
//! With `?format=envelope` (or a `Last-Event-ID` header) it is instead the user's outbox
//! stream, the same as `GET /events` serves the user (`stream.rs`): every event with its `id:`,
//! resumable.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::admin::load_user;
use super::auth::AdminAuth;
use super::{ApiError, AppState};
use crate::client::api::{DeviceEvent, DeviceId, DeviceStatus, PairCodeInfo, QrCode, Reason};

/// The handler.
pub(crate) async fn stream_events(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    Query(q): Query<super::stream::FormatQuery>,
    headers: HeaderMap,
) -> Result<super::stream::EventStream, ApiError> {
    let user = load_user(&state, &id)?;
    if q.format.as_deref() == Some("envelope") || headers.contains_key("last-event-id") {
        let after = super::stream::resume_point(&headers, q.last_event_id)?;
        return Ok(super::stream::outbox_sse(&state, user.id, after));
    }
    device_stream(&state, user.device)
}

/// The event stream of one device.
pub(crate) fn device_stream(
    state: &AppState,
    device: DeviceId,
) -> Result<super::stream::EventStream, ApiError> {
    // Subscribe before reading the status, so nothing falls between the two.
    let receiver = state.devices.subscribe(device)?;
    let status = state.devices.status(device)?;
    let stop = state.shutdown.subscribe();
    let stream = stream::iter(opening(&status).into_iter().map(Ok))
        .chain(stream::unfold((receiver, stop), next_event))
        .boxed();
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The events a new stream starts with.
fn opening(status: &DeviceStatus) -> Vec<Event> {
    let mut events = vec![event(
        "state",
        json!({
            "state": status.state.as_str(),
            "jid": status.jid.as_ref().map(ToString::to_string),
            "reason": status.reason.as_ref().map(|r| r.code),
            "message": status.reason.as_ref().map(|r| &r.message),
        }),
    )];
    if let Some(qr) = &status.qr {
        events.push(qr_event(qr));
    }
    if let Some(code) = &status.pair_code {
        events.push(pair_code_event(code));
    }
    events
}

/// The next event of the device, or the end of the stream.
async fn next_event(
    (mut receiver, mut stop): (broadcast::Receiver<DeviceEvent>, watch::Receiver<bool>),
) -> Option<(
    Result<Event, Infallible>,
    (broadcast::Receiver<DeviceEvent>, watch::Receiver<bool>),
)> {
    let event = tokio::select! {
        // A dropped sender means the state is gone: stop as well.
        _ = stop.wait_for(|stopping| *stopping) => return None,
        received = receiver.recv() => match received {
            Ok(device_event) => to_event(&device_event),
            Err(RecvError::Lagged(missed)) => event("lagged", json!({ "missed": missed })),
            Err(RecvError::Closed) => return None,
        },
    };
    Some((Ok(event), (receiver, stop)))
}

fn event(name: &str, data: Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn qr_event(qr: &QrCode) -> Event {
    event(
        "qr",
        json!({ "code": qr.code, "expires_at": qr.expires_at, "ttl": qr.ttl.as_secs() }),
    )
}

fn pair_code_event(code: &PairCodeInfo) -> Event {
    event(
        "pair_code",
        json!({ "code": code.code, "phone": code.phone, "expires_at": code.expires_at }),
    )
}

/// A device event as an SSE event.
pub(crate) fn to_event(device_event: &DeviceEvent) -> Event {
    match device_event {
        DeviceEvent::Qr(qr) => qr_event(qr),
        DeviceEvent::PairCode(code) => pair_code_event(code),
        DeviceEvent::PairingTimedOut => event("pairing_timed_out", json!({})),
        DeviceEvent::Paired {
            jid,
            business_name,
            platform,
        } => event(
            "paired",
            json!({ "jid": jid.to_string(), "business_name": business_name, "platform": platform }),
        ),
        DeviceEvent::Connected => event("connected", json!({})),
        DeviceEvent::PairingFailed { reason } => event("pairing_failed", reason_json(reason)),
        DeviceEvent::Disconnected { reason } => event("disconnected", reason_json(reason)),
        DeviceEvent::LoggedOut { reason } => event("logged_out", reason_json(reason)),
        DeviceEvent::Error { reason } => event("error", reason_json(reason)),
        DeviceEvent::Group(change) => event(
            "group",
            serde_json::to_value(change.as_ref()).unwrap_or_else(|_| json!({})),
        ),
    }
}

/// `{"reason": "device_removed", "message": "the phone unlinked this device"}`: a stable code to
/// branch on and a sentence to show.
pub(crate) fn reason_json(reason: &Reason) -> Value {
    json!({ "reason": reason.code, "message": reason.message })
}
