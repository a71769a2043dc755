//! The JSON control API under `/control`: a thin layer over the same operations as the Rust
//! API ([`SandboxHandle`](super::SandboxHandle)). Each handler extracts, calls one operation
//! and maps the result; errors are `{"error": "<kind>", "message": "…"}` with one status table
//! ([`status`]).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::Error;
use super::group_ops;
use super::model::{Fault, PhoneBehaviour, StreamError};
use super::pairing::PairingError;
use super::prekeys;
use super::shared::Shared;
use super::shared::unix_now;

/// What the control handlers need; its own type (not the listener's) so that `server` nests
/// this router without the two modules importing each other.
#[derive(Clone)]
pub(crate) struct ControlState {
    pub shared: Arc<Shared>,
    /// What `GET /control/info` answers: the same object `wuts sim` prints.
    pub info: Arc<serde_json::Value>,
}

/// The control routes, with their state already applied (so they nest into any router).
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: ControlState) -> Router<S> {
    Router::new()
        .route("/info", get(info))
        .route("/scan", post(scan))
        .route("/paircode", post(paircode))
        .route("/devices", get(devices))
        .route("/devices/{jid}", delete(remove_device))
        .route("/groups", get(groups))
        .route("/notifications", get(notifications))
        .route("/group-action", post(group_action))
        .route("/join-request", post(join_request))
        .route("/phones/{phone}", put(set_phone).get(get_phone))
        .route("/faults", post(inject))
        .route("/logins", get(logins))
        .route("/kicks", get(kicks))
        .route("/prekeys", get(key_bundle).post(key_fault))
        .with_state(state)
}

/// `GET /control/logins`: every accepted login (the cluster checker's record).
async fn logins(State(app): State<ControlState>) -> Response {
    Json(app.shared.audit.logins()).into_response()
}

/// `GET /control/kicks`: every `replaced` kick, naming both connections.
async fn kicks(State(app): State<ControlState>) -> Response {
    Json(app.shared.audit.kicks()).into_response()
}

async fn info(State(app): State<ControlState>) -> Response {
    Json(app.info.as_ref().clone()).into_response()
}

/// `POST /control/scan` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    qr: String,
    phone: String,
}

async fn scan(
    State(app): State<ControlState>,
    body: Result<Json<ScanRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    match app.shared.scan(&req.qr, &req.phone).await {
        Ok(paired) => Json(paired).into_response(),
        Err(e) => error(&Error::Pairing(e)),
    }
}

/// `POST /control/paircode` body: the code typed on the phone of `phone`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    phone: String,
    code: String,
}

async fn paircode(
    State(app): State<ControlState>,
    body: Result<Json<CodeRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    match app.shared.type_code(&req.phone, &req.code).await {
        Ok(paired) => Json(paired).into_response(),
        Err(e) => error(&Error::Pairing(e)),
    }
}

async fn devices(State(app): State<ControlState>) -> Response {
    Json(app.shared.devices()).into_response()
}

async fn remove_device(State(app): State<ControlState>, Path(jid): Path<String>) -> Response {
    match app.shared.remove_device(&jid).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

async fn groups(State(app): State<ControlState>) -> Response {
    Json(app.shared.groups()).into_response()
}

/// `GET /control/notifications?jid=DEVICE`: the notifications sent to that device, oldest
/// first (the last 256).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsQuery {
    jid: String,
}

async fn notifications(
    State(app): State<ControlState>,
    query: Result<
        axum::extract::Query<NotificationsQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let Ok(axum::extract::Query(q)) = query else {
        let body = json!({ "error": "bad_query", "message": "give the device as ?jid=" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    Json(app.shared.notifications(&q.jid)).into_response()
}

/// `POST /control/group-action`: a simulated member acts on a group, under the same rules and
/// with the same notifications as a device. 200 `{"reply": "<iq …>"}`, or WhatsApp's refusal
/// as `{"error": "refused", "code", "text"}` with the matching status.
async fn group_action(
    State(app): State<ControlState>,
    body: Result<Json<group_ops::Action>, JsonRejection>,
) -> Response {
    let Json(action) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    let iq = match group_ops::action_iq(&action) {
        Ok(iq) => iq,
        Err(message) => {
            let body = json!({ "error": "bad_action", "message": message });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let phone = action.actor_phone.trim_start_matches('+');
    match group_ops::run(&app.shared, phone, &iq, unix_now()) {
        Some((_, Ok(children))) => {
            let reply: Vec<String> = children.iter().map(ToString::to_string).collect();
            Json(json!({ "reply": reply })).into_response()
        }
        Some((_, Err(e))) => refused(e),
        None => {
            let body = json!({ "error": "bad_action", "message": "not a group request" });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// `POST /control/join-request` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequestBody {
    group: String,
    phone: String,
}

/// `POST /control/join-request`: `phone` asks to join `group` as if by its link:
/// `{"pending": true}` in a join-approval group (admins are notified), else added.
async fn join_request(
    State(app): State<ControlState>,
    body: Result<Json<JoinRequestBody>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    let phone = req.phone.trim_start_matches('+');
    match group_ops::join_request(&app.shared, &req.group, phone, unix_now()) {
        Ok(pending) => Json(json!({ "pending": pending })).into_response(),
        Err(e) => refused(e),
    }
}

/// `?jid=DEVICE` of `GET /control/prekeys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JidQuery {
    jid: String,
}

/// `GET /control/prekeys?jid=DEVICE`: the key bundle the server holds for the device.
async fn key_bundle(
    State(app): State<ControlState>,
    query: Result<axum::extract::Query<JidQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(q)) = query else {
        let body = json!({ "error": "bad_query", "message": "give the device as ?jid=" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    match prekeys::bundle_info(&app.shared, &q.jid) {
        Some(info) => Json(info).into_response(),
        None => error(&Error::UnknownDevice(q.jid)),
    }
}

/// `POST /control/prekeys` body: `{"jid", "fault": "corrupt_signed" | "drop" | "consume",
/// "count"}`.
#[derive(Deserialize)]
struct KeyFaultRequest {
    jid: String,
    #[serde(flatten)]
    fault: prekeys::KeyFault,
}

/// `POST /control/prekeys`: a fault on the server's copy of a device's keys; answers what the
/// server holds afterwards.
async fn key_fault(
    State(app): State<ControlState>,
    body: Result<Json<KeyFaultRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    match prekeys::inject(&app.shared, &req.jid, req.fault) {
        Some(info) => Json(info).into_response(),
        None => error(&Error::UnknownDevice(req.jid)),
    }
}

/// WhatsApp's refusal of a control action: its code as the status where one fits.
fn refused(e: super::stanzas::IqError) -> Response {
    let status = match e.code {
        400 => StatusCode::BAD_REQUEST,
        401 | 403 => StatusCode::FORBIDDEN,
        404 => StatusCode::NOT_FOUND,
        410 => StatusCode::GONE,
        _ => StatusCode::CONFLICT,
    };
    let body = json!({ "error": "refused", "code": e.code, "text": e.text });
    (status, Json(body)).into_response()
}

async fn set_phone(
    State(app): State<ControlState>,
    Path(phone): Path<String>,
    body: Result<Json<PhoneBehaviour>, JsonRejection>,
) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    match app.shared.set_phone_behaviour(&phone, b) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

async fn get_phone(State(app): State<ControlState>, Path(phone): Path<String>) -> Response {
    Json(app.shared.lock().behaviour(&phone)).into_response()
}

async fn inject(
    State(app): State<ControlState>,
    body: Result<Json<FaultBody>, JsonRejection>,
) -> Response {
    let Json(fault) = match body {
        Ok(b) => b,
        Err(e) => return rejection(e),
    };
    match fault.apply(&app.shared).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

/// `POST /control/faults` body: a [`Fault`] whose `device` may be left out. Without it, the
/// fault is for every device connected at that moment (an operator with one device need not
/// look its JID up; with several, "drop everyone" is the outage one wants to rehearse), except
/// that `clear_iq_faults` then clears every device's rules and `reject_next_login` refuses the
/// next login of any device.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultBody {
    Drop {
        #[serde(default)]
        device: Option<String>,
    },
    StreamError {
        #[serde(default)]
        device: Option<String>,
        error: StreamError,
    },
    DelayIq {
        #[serde(default)]
        device: Option<String>,
        millis: u64,
        #[serde(default)]
        xmlns: Option<String>,
        #[serde(default)]
        count: Option<u32>,
    },
    WithholdIq {
        #[serde(default)]
        device: Option<String>,
        #[serde(default)]
        xmlns: Option<String>,
        #[serde(default)]
        count: Option<u32>,
    },
    ClearIqFaults {
        #[serde(default)]
        device: Option<String>,
    },
    RejectNextLogin {
        #[serde(default)]
        device: Option<String>,
        #[serde(default)]
        reason: Option<u16>,
    },
}

impl FaultBody {
    async fn apply(self, shared: &Shared) -> Result<(), Error> {
        match self {
            Self::ClearIqFaults { device: None } => {
                shared.clear_all_iq_faults();
                Ok(())
            }
            Self::RejectNextLogin { device, reason } => {
                let fault = Fault::RejectNextLogin {
                    device,
                    reason: reason.unwrap_or(Fault::DEFAULT_REJECT_REASON),
                };
                shared.inject(fault).await
            }
            body => match body.device() {
                Some(device) => shared.inject(body.for_device(device.to_owned())).await,
                None => shared
                    .inject_connected(|device| body.for_device(device))
                    .await
                    .map(|_| ()),
            },
        }
    }

    fn device(&self) -> Option<&str> {
        match self {
            Self::Drop { device }
            | Self::StreamError { device, .. }
            | Self::DelayIq { device, .. }
            | Self::WithholdIq { device, .. }
            | Self::ClearIqFaults { device }
            | Self::RejectNextLogin { device, .. } => device.as_deref(),
        }
    }

    /// The same fault for `device`.
    fn for_device(&self, device: String) -> Fault {
        match self.clone() {
            Self::Drop { .. } => Fault::Drop { device },
            Self::StreamError { error, .. } => Fault::StreamError { device, error },
            Self::DelayIq {
                millis,
                xmlns,
                count,
                ..
            } => Fault::DelayIq {
                device,
                millis,
                xmlns,
                count,
            },
            Self::WithholdIq { xmlns, count, .. } => Fault::WithholdIq {
                device,
                xmlns,
                count,
            },
            Self::ClearIqFaults { .. } => Fault::ClearIqFaults { device },
            Self::RejectNextLogin { reason, .. } => Fault::RejectNextLogin {
                device: Some(device),
                reason: reason.unwrap_or(Fault::DEFAULT_REJECT_REASON),
            },
        }
    }
}

/// The one table from errors to HTTP status and error kind.
pub(crate) fn status(e: &Error) -> (StatusCode, &'static str) {
    use PairingError as P;
    match e {
        Error::Pairing(p) => match p {
            P::BadQr(_) => (StatusCode::BAD_REQUEST, "bad_qr"),
            P::BadPhone(_) => (StatusCode::BAD_REQUEST, "bad_phone"),
            P::PhoneNotOnWhatsApp(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_on_whatsapp"),
            P::UnknownRef => (StatusCode::NOT_FOUND, "unknown_ref"),
            P::RefExpired => (StatusCode::GONE, "ref_expired"),
            P::NoiseKeyMismatch => (StatusCode::CONFLICT, "noise_key_mismatch"),
            P::IdentityKeyMismatch => (StatusCode::CONFLICT, "identity_key_mismatch"),
            P::Refused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused_by_companion"),
            P::ConnectionClosed => (StatusCode::CONFLICT, "connection_closed"),
            P::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            P::BadCode => (StatusCode::BAD_REQUEST, "bad_code"),
            P::NoPairingCode(_) => (StatusCode::NOT_FOUND, "no_pairing_code"),
            P::CodeExpired => (StatusCode::GONE, "code_expired"),
            P::WrongCode => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_code"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "pairing_failed"),
        },
        Error::UnknownDevice(_) => (StatusCode::NOT_FOUND, "unknown_device"),
        Error::NotConnected(_) | Error::NothingConnected => (StatusCode::CONFLICT, "not_connected"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn error(e: &Error) -> Response {
    let (status, kind) = status(e);
    let body = json!({ "error": kind, "message": e.to_string() });
    (status, Json(body)).into_response()
}

fn rejection(e: JsonRejection) -> Response {
    let body = json!({ "error": "bad_json", "message": e.body_text() });
    (e.status(), Json(body)).into_response()
}
