//! `ApiError`: the one table from failures to HTTP statuses and stable error codes, and the two
//! error envelopes (`wuts` and `status`).
//!
//! Every failure a client can see, extractor rejections included, goes through [`ApiError`], so
//! the status, the code and the envelope are decided here and nowhere else. Internal details
//! (storage failures, protocol errors) are logged with the request's span and replaced by a
//! generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::api::Error as ClientError;

/// One problem with a request, named by the field it concerns (`name`, `participants[2]`,
/// `options.parent_jid`, `Idempotency-Key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Where the problem is.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A stable error code: what clients branch on. Statuses are fixed per code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request is invalid; `details` lists every violation.
    ValidationError,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the user has several devices and the request did not say which (`device_id`).
    DeviceIdRequired,
    /// 401: no token, or not a valid one.
    Unauthorized,
    /// 404: no such user, route, QR code or sandbox.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the user's device is not paired (or was logged out).
    DeviceNotPaired,
    /// 409: pairing asked of a device that is paired.
    DeviceAlreadyPaired,
    /// 409: pairing asked of a device that is pairing already.
    DevicePairing,
    /// 409: a QR code asked of a device that is not pairing.
    DeviceNotPairing,
    /// 413: the body is larger than the gateway accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` was reused with a different request.
    IdempotencyKeyReused,
    /// 409: an earlier request with this `Idempotency-Key` ended without a known outcome
    /// (WhatsApp may have acted); it is not sent again.
    OutcomeUnknown,
    /// 409: a request with this `Idempotency-Key` is still running past this one's deadline.
    IdempotencyKeyInUse,
    /// 429: the user holds as many idempotency records as allowed; they expire after 24 h.
    TooManyIdempotencyKeys,
    /// 500: something failed inside the gateway; details are only in the log.
    InternalError,
    /// 502: WhatsApp refused the request (its code is in the body) or answered nonsense.
    WhatsappError,
    /// 503: the device is paired but not connected right now.
    DeviceOffline,
    /// 503: the gateway is at its connection limit; only the admin API and probes are served.
    ServerBusy,
    /// 503: the gateway is stopping and its shutdown deadline passed.
    ShuttingDown,
    /// 504: WhatsApp did not answer in time.
    Timeout,
    /// 404: WhatsApp knows no such group (its 404 `item-not-found`).
    GroupNotFound,
    /// 403: only a group admin may do this (WhatsApp's 401 `not-authorized`).
    NotGroupAdmin,
    /// 403: the account is not a participant of the group (WhatsApp's 403 `forbidden`).
    NotAParticipant,
    /// 404: no group has this invite code (WhatsApp's 406 `not-acceptable`).
    InviteInvalid,
    /// 410: the invite was revoked (the link was reset) or has expired (WhatsApp's 410 `gone`).
    InviteRevoked,
    /// 409: the group already belongs to a community (WhatsApp's 409 `conflict` on a link).
    GroupAlreadyLinked,
    /// 422: WhatsApp refused a community request (its 406 `not-acceptable`): the group in the
    /// path is not a community, the group to link is a community, or it is the community's
    /// announcement group, which cannot be unlinked.
    CommunityRefused,
    /// 503: cluster mode: the device is between owners (its node died or is handing it over);
    /// `Retry-After` says when to try again. Nothing was sent to WhatsApp.
    DeviceFailover,
    /// 503: cluster mode: the shared database did not answer in time; retry after
    /// `Retry-After`. A write may or may not have been saved; with an `Idempotency-Key` the
    /// retry says which.
    StoreUnavailable,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document.
    pub const ALL: [ErrorCode; 31] = [
        ErrorCode::ValidationError,
        ErrorCode::InvalidJson,
        ErrorCode::DeviceIdRequired,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::DeviceNotPaired,
        ErrorCode::DeviceAlreadyPaired,
        ErrorCode::DevicePairing,
        ErrorCode::DeviceNotPairing,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::OutcomeUnknown,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::TooManyIdempotencyKeys,
        ErrorCode::InternalError,
        ErrorCode::WhatsappError,
        ErrorCode::DeviceOffline,
        ErrorCode::ServerBusy,
        ErrorCode::ShuttingDown,
        ErrorCode::Timeout,
        ErrorCode::GroupNotFound,
        ErrorCode::NotGroupAdmin,
        ErrorCode::NotAParticipant,
        ErrorCode::InviteInvalid,
        ErrorCode::InviteRevoked,
        ErrorCode::GroupAlreadyLinked,
        ErrorCode::CommunityRefused,
        ErrorCode::DeviceFailover,
        ErrorCode::StoreUnavailable,
    ];

    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::DeviceIdRequired => "DEVICE_ID_REQUIRED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::DeviceNotPaired => "DEVICE_NOT_PAIRED",
            ErrorCode::DeviceAlreadyPaired => "DEVICE_ALREADY_PAIRED",
            ErrorCode::DevicePairing => "DEVICE_PAIRING",
            ErrorCode::DeviceNotPairing => "DEVICE_NOT_PAIRING",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::TooManyIdempotencyKeys => "TOO_MANY_IDEMPOTENCY_KEYS",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::WhatsappError => "WHATSAPP_ERROR",
            ErrorCode::DeviceOffline => "DEVICE_OFFLINE",
            ErrorCode::ServerBusy => "SERVER_BUSY",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::GroupNotFound => "GROUP_NOT_FOUND",
            ErrorCode::NotGroupAdmin => "NOT_GROUP_ADMIN",
            ErrorCode::NotAParticipant => "NOT_A_PARTICIPANT",
            ErrorCode::InviteInvalid => "INVITE_INVALID",
            ErrorCode::InviteRevoked => "INVITE_REVOKED",
            ErrorCode::GroupAlreadyLinked => "GROUP_ALREADY_LINKED",
            ErrorCode::CommunityRefused => "COMMUNITY_REFUSED",
            ErrorCode::DeviceFailover => "DEVICE_FAILOVER",
            ErrorCode::StoreUnavailable => "STORE_UNAVAILABLE",
        }
    }

    /// The HTTP status that always goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::ValidationError | ErrorCode::InvalidJson | ErrorCode::DeviceIdRequired => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::DeviceNotPaired
            | ErrorCode::DeviceAlreadyPaired
            | ErrorCode::DevicePairing
            | ErrorCode::DeviceNotPairing
            | ErrorCode::OutcomeUnknown
            | ErrorCode::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyIdempotencyKeys => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::WhatsappError => StatusCode::BAD_GATEWAY,
            ErrorCode::DeviceOffline
            | ErrorCode::ServerBusy
            | ErrorCode::ShuttingDown
            | ErrorCode::DeviceFailover
            | ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::GroupNotFound | ErrorCode::InviteInvalid => StatusCode::NOT_FOUND,
            ErrorCode::NotGroupAdmin | ErrorCode::NotAParticipant => StatusCode::FORBIDDEN,
            ErrorCode::InviteRevoked => StatusCode::GONE,
            ErrorCode::GroupAlreadyLinked => StatusCode::CONFLICT,
            ErrorCode::CommunityRefused => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// Everything that can go wrong in a request, as the client will be told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request broke one or more rules; nothing was sent to WhatsApp.
    #[error("validation failed")]
    Validation(Vec<Violation>),
    /// The body is not JSON (the text says where it broke).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The user has several devices; the request must name one.
    #[error("this user has several devices: say which with device_id")]
    DeviceIdRequired,
    /// Missing, malformed or unknown token.
    #[error("missing or invalid token")]
    Unauthorized,
    /// No such thing (the text says what).
    #[error("{0}")]
    NotFound(String),
    /// Wrong method for the route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The device must be paired first.
    #[error("the device is not paired")]
    DeviceNotPaired,
    /// The device's state does not allow this (a 409 with its own code).
    #[error("{message}")]
    Conflict {
        /// `DEVICE_ALREADY_PAIRED`, `DEVICE_PAIRING`, `DEVICE_NOT_PAIRING`.
        code: ErrorCode,
        /// What the state is and what to do.
        message: String,
    },
    /// The body exceeds the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not declared as JSON.
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// The idempotency key was used for another request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// WhatsApp may have acted on an earlier attempt (or on this one) without the gateway
    /// learning the result: not sent again.
    #[error(
        "the outcome of this request is unknown: WhatsApp may have acted on it (a timeout or a \
         lost connection); it was not sent again. Check the account's groups before retrying \
         with a new Idempotency-Key"
    )]
    OutcomeUnknown,
    /// The user's idempotency records are at their cap.
    #[error(
        "too many Idempotency-Keys in use ({limit} at most within 24 hours); send the request \
         without a key or wait for older keys to expire"
    )]
    TooManyIdempotencyKeys {
        /// The cap.
        limit: usize,
    },
    /// Another request with the same key is still running.
    #[error("a request with this Idempotency-Key is still running; retry later")]
    IdempotencyKeyInUse,
    /// The device is not connected (or the gateway is stopping).
    #[error("the device is offline")]
    DeviceOffline,
    /// WhatsApp refused the request.
    #[error("WhatsApp refused the request: {text}")]
    WhatsApp {
        /// WhatsApp's code, when it gave one.
        code: Option<u16>,
        /// WhatsApp's text, or our description.
        text: String,
    },
    /// WhatsApp refused a group request for a reason with its own code (unknown group, not
    /// an admin, not a participant, invalid or revoked invite).
    #[error("{message}")]
    Group {
        /// `GROUP_NOT_FOUND`, `NOT_GROUP_ADMIN`, ...
        code: ErrorCode,
        /// What it means for the caller.
        message: String,
        /// WhatsApp's code.
        whatsapp_code: u16,
        /// WhatsApp's text.
        whatsapp_text: String,
        /// Fields added to the error body (what a partly applied update did).
        extra: Option<Box<Value>>,
    },
    /// WhatsApp did not answer in time.
    #[error("WhatsApp did not answer in time")]
    Timeout,
    /// Too many connections: only the admin API and probes are served.
    #[error("the gateway is at its connection limit; retry shortly")]
    ServerBusy,
    /// The shutdown deadline passed before this request finished.
    #[error("the gateway is shutting down; retry against another instance or after restart")]
    ShuttingDown,
    /// An internal failure; the text goes to the log only.
    #[error("internal error")]
    Internal(String),
    /// Cluster mode: no live node runs the device right now; nothing was sent.
    #[error(
        "the device is moving to another gateway node (its node stopped or is handing it over); \
         retry in {retry_after_secs} s"
    )]
    DeviceFailover {
        /// What `Retry-After` says.
        retry_after_secs: u64,
    },
    /// Cluster mode: another node runs the device. The forwarding middleware passes the
    /// request there; a client never sees this (if it escapes, it reads as a failover).
    #[error("the device is moving to another gateway node; retry in 1 s")]
    NotHere(crate::client::api::DeviceId),
    /// Cluster mode: the shared database did not answer in time (a partition, an overloaded
    /// server).
    #[error("the gateway's database did not answer in time; retry in 1 s")]
    StoreUnavailable,
}

/// On a response: "forward this request to the node that runs this device" (cluster mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForwardTo(pub(crate) crate::client::api::DeviceId);

impl ApiError {
    /// A violation of a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![Violation::new(field, message)])
    }

    /// An internal failure: logs `detail` now (inside the request's span), tells the client
    /// nothing more.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        tracing::error!(error = %detail, "internal error");
        ApiError::Internal(detail)
    }

    /// The code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) => ErrorCode::ValidationError,
            ApiError::InvalidJson(_) => ErrorCode::InvalidJson,
            ApiError::DeviceIdRequired => ErrorCode::DeviceIdRequired,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::DeviceNotPaired => ErrorCode::DeviceNotPaired,
            ApiError::Conflict { code, .. } => *code,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            ApiError::OutcomeUnknown => ErrorCode::OutcomeUnknown,
            ApiError::IdempotencyKeyInUse => ErrorCode::IdempotencyKeyInUse,
            ApiError::TooManyIdempotencyKeys { .. } => ErrorCode::TooManyIdempotencyKeys,
            ApiError::DeviceOffline => ErrorCode::DeviceOffline,
            ApiError::WhatsApp { .. } => ErrorCode::WhatsappError,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::Group { code, .. } => *code,
            ApiError::ServerBusy => ErrorCode::ServerBusy,
            ApiError::ShuttingDown => ErrorCode::ShuttingDown,
            ApiError::Internal(_) => ErrorCode::InternalError,
            ApiError::DeviceFailover { .. } | ApiError::NotHere(_) => ErrorCode::DeviceFailover,
            ApiError::StoreUnavailable => ErrorCode::StoreUnavailable,
        }
    }

    /// What the client is told: never internal details.
    fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// The facts both envelopes are built from.
    pub(crate) fn report(&self) -> ErrorReport {
        let (whatsapp_code, whatsapp_text) = match self {
            ApiError::WhatsApp { code, text } => (*code, Some(text.clone())),
            ApiError::Group {
                whatsapp_code,
                whatsapp_text,
                ..
            } => (Some(*whatsapp_code), Some(whatsapp_text.clone())),
            _ => (None, None),
        };
        ErrorReport {
            code: self.code(),
            message: self.public_message(),
            details: match self {
                ApiError::Validation(violations) => violations.clone(),
                _ => Vec::new(),
            },
            whatsapp_code,
            whatsapp_text,
            extra: match self {
                ApiError::Group { extra, .. } => extra.as_deref().cloned(),
                _ => None,
            },
        }
    }
}

impl From<ClientError> for ApiError {
    /// The client-layer half of the table (STYLE rule 15).
    fn from(error: ClientError) -> Self {
        let conflict = |code, error: &ClientError| ApiError::Conflict {
            code,
            message: error.to_string(),
        };
        match error {
            ClientError::UnknownDevice(id) => ApiError::NotFound(format!("{id} does not exist")),
            ClientError::NotHere(id) => ApiError::NotHere(id),
            ClientError::NotPaired => ApiError::DeviceNotPaired,
            ClientError::AlreadyPaired => conflict(ErrorCode::DeviceAlreadyPaired, &error),
            ClientError::Pairing => conflict(ErrorCode::DevicePairing, &error),
            ClientError::NotConnected | ClientError::Closed => ApiError::DeviceOffline,
            ClientError::Timeout(_) => ApiError::Timeout,
            ClientError::Interrupted => ApiError::OutcomeUnknown,
            ClientError::Rejected { code, text } => ApiError::WhatsApp {
                code: Some(code),
                text,
            },
            ClientError::Invalid(fields) => ApiError::Validation(violations(fields)),
            ClientError::Malformed(detail) => {
                tracing::warn!(error = %detail, "malformed reply from WhatsApp");
                ApiError::WhatsApp {
                    code: None,
                    text: "WhatsApp's reply could not be understood".to_owned(),
                }
            }
            other => ApiError::internal(other),
        }
    }
}

/// `ops`' field errors as the API lists them, field names kept.
pub fn violations(fields: Vec<crate::ops::FieldError>) -> Vec<Violation> {
    fields
        .into_iter()
        .map(|f| Violation::new(f.field, f.problem.to_string()))
        .collect()
}

impl From<wuts_store::Error> for ApiError {
    fn from(error: wuts_store::Error) -> Self {
        match error {
            wuts_store::Error::Unavailable { .. } => {
                tracing::warn!(%error, "the store did not answer");
                ApiError::StoreUnavailable
            }
            error => ApiError::internal(error),
        }
    }
}

/// An error, ready to be rendered in either envelope. Attached to error responses as an
/// extension so the `status` style can re-render them (see [`ErrorReport::status_style`]).
#[derive(Clone, Debug)]
pub(crate) struct ErrorReport {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) details: Vec<Violation>,
    pub(crate) whatsapp_code: Option<u16>,
    pub(crate) whatsapp_text: Option<String>,
    /// Route-specific fields merged into the body (a partly applied group update).
    pub(crate) extra: Option<Value>,
}

impl ErrorReport {
    /// Document 000's envelope: `{success: false, error, error_code, timestamp}`, plus `details`
    /// for validation errors and `whatsapp_code`/`whatsapp_text` for WhatsApp's refusals.
    pub(crate) fn wuts_style(&self) -> Value {
        let mut body = json!({
            "success": false,
            "error": self.message,
            "error_code": self.code.as_str(),
            "timestamp": now_rfc3339(),
        });
        self.add_extras(&mut body);
        body
    }

    /// Document 002's envelope: `{status: false, code, message, error}`, with the same extras
    /// and our `error_code`, so its clients keep working and new ones can branch on the code.
    pub(crate) fn status_style(&self) -> Value {
        let status = self.code.status();
        let error = if self.details.is_empty() {
            self.message.clone()
        } else {
            self.details
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut body = json!({
            "status": false,
            "code": status.as_u16(),
            "message": status.canonical_reason().map(sentence_case).unwrap_or_default(),
            "error": error,
            "error_code": self.code.as_str(),
        });
        self.add_extras(&mut body);
        body
    }

    fn add_extras(&self, body: &mut Value) {
        let Some(map) = body.as_object_mut() else {
            return;
        };
        if !self.details.is_empty() {
            map.insert("details".to_owned(), json!(self.details));
        }
        if let Some(code) = self.whatsapp_code {
            map.insert("whatsapp_code".to_owned(), json!(code));
        }
        if let Some(text) = &self.whatsapp_text {
            map.insert("whatsapp_text".to_owned(), json!(text));
        }
        if let Some(Value::Object(extra)) = &self.extra {
            for (k, v) in extra {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// "Bad Request" -> "Bad request", as document 002 writes its messages.
fn sentence_case(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for (i, word) in reason.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
            out.push_str(&word.to_lowercase());
        } else {
            out.push_str(word);
        }
    }
    out
}

/// The current time as RFC 3339 (UTC, whole seconds).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(crate::http::unix_now())
}

/// Unix seconds as RFC 3339 (UTC), e.g. `2026-06-15T10:00:00Z`.
pub(crate) fn rfc3339(unix: u64) -> String {
    let at = i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = (report.code.status(), Json(report.wuts_style())).into_response();
        if matches!(self, ApiError::Unauthorized) {
            if let Ok(value) = "Bearer".parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, value);
            }
        }
        let retry_after = match &self {
            ApiError::DeviceFailover { retry_after_secs } => Some(*retry_after_secs),
            ApiError::NotHere(_) | ApiError::StoreUnavailable => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let ApiError::NotHere(device) = self {
            response.extensions_mut().insert(ForwardTo(device));
        }
        response.extensions_mut().insert(report);
        response
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
