//! `GET /admin/users/{id}/events`: a device's events as server-sent events.
//!
//! The stream opens with a `state` event (the device's state and JID now) and, while pairing,
//! the current `qr`; then, in the order the device emits them: `qr`, `pairing_timed_out`,
//! `paired`, `connected`, `disconnected`, `logged_out`, and `group` (a change to a group the
//! account is in: `ops::groups::GroupEvent` as JSON). A client too slow to keep up gets a
//! `lagged` event saying how many it missed. Every `data` is a JSON object. The stream ends
//! when the device is removed or the gateway stops.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::admin::load_user;
use super::auth::AdminAuth;
use super::{ApiError, AppState};
use crate::client::api::{DeviceEvent, DeviceStatus, QrCode, Reason};

/// The handler.
pub(crate) async fn stream_events(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user = load_user(&state, &id)?;
    // Subscribe before reading the status, so nothing falls between the two.
    let receiver = state.devices.subscribe(user.device)?;
    let status = state.devices.status(user.device)?;
    let stop = state.shutdown.subscribe();
    let stream = stream::iter(opening(&status).into_iter().map(Ok))
        .chain(stream::unfold((receiver, stop), next_event));
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

/// A device event as an SSE event.
pub(crate) fn to_event(device_event: &DeviceEvent) -> Event {
    match device_event {
        DeviceEvent::Qr(qr) => qr_event(qr),
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
