//! `JsonBody<T>`: axum's `Json`, with its rejections in our envelope.
//!
//! A wrong content type is 415, a body over the limit ([`DefaultBodyLimit`], set in `router`)
//! is 413, text that is not JSON is 400 `INVALID_JSON` with where it broke, and JSON of the
//! wrong shape is 400 `VALIDATION_ERROR`.
//!
//! [`DefaultBodyLimit`]: axum::extract::DefaultBodyLimit

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Whether the request declares a JSON body (`application/json`, any parameters, or a
/// `+json` suffix type).
fn is_json(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T> FromRequest<Arc<AppState>> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(
        request: Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if !is_json(&request) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = state.config.body_limit;
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
                    _ => ApiError::InvalidJson(rejection.body_text()),
                })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a body, telling syntax errors (not JSON) from shape errors (JSON, wrong fields).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => ApiError::invalid("body", error.to_string()),
            Category::Syntax | Category::Eof | Category::Io => ApiError::InvalidJson(format!(
                "the body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_shape_errors_differ() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Named {
            #[allow(dead_code)]
            name: String,
        }
        assert!(matches!(
            parse::<Named>(b"{\"name\": "),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse::<Named>(b"{\"name\": \"a\", \"x\": 1}"),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn json_content_types() {
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            let request = Request::builder()
                .header(CONTENT_TYPE, value)
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(is_json(&request), ok, "{value}");
        }
    }
}
