//! `POST /groups/{jid}/picture`: `{image_base64}` (a JPEG; a `data:image/jpeg;base64,` prefix
//! is allowed). The picture is checked and, when too large, resized and re-encoded by
//! [`picture::prepare`] before anything is sent; a bad one is 400 with the reason. Answers
//! `{success, group_jid, picture_id, width, height, resized}`. Its body may be larger than
//! other routes' ([`BODY_LIMIT`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::devices::Target;
use super::group_admin::{call, checked, render};
use super::group_bodies as bodies;
use super::idempotency::{self, run_keyed};
use super::validate::Object;
use super::{ApiError, AppState, Violation};
use crate::ops::groups::picture::{self, MAX_UPLOAD_BYTES};
use crate::ops::groups::{GroupAnswer, GroupCall};

/// Largest body of this route: the largest upload in base64, and room for the JSON around it.
pub(crate) const BODY_LIMIT: usize = MAX_UPLOAD_BYTES / 3 * 4 + 64 * 1024;

/// Reads `{image_base64}` into the picture to send, or lists what is wrong.
fn read(body: &Value) -> Result<picture::Picture, Vec<Violation>> {
    let mut object = Object::new(body, &["image_base64"])?;
    let text = object.string("image_base64").unwrap_or_default();
    let mut violations = object.violations;
    if !violations.is_empty() {
        return Err(violations);
    }
    let data = text
        .strip_prefix("data:image/jpeg;base64,")
        .unwrap_or(text)
        .trim();
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => bytes,
        Err(_) => {
            violations.push(Violation::new("image_base64", "must be base64 (RFC 4648)"));
            return Err(violations);
        }
    };
    picture::prepare(&bytes).map_err(|p| vec![Violation::new("image_base64", p.to_string())])
}

/// The handler.
pub(crate) async fn set(
    State(state): State<Arc<AppState>>,
    Target { device, .. }: Target,
    Path(jid): Path<String>,
    headers: HeaderMap,
    super::body::JsonBody(body): super::body::JsonBody<Value>,
) -> Result<Response, ApiError> {
    let group = bodies::path_group(&jid);
    // Decoding and resizing take CPU: off the async workers.
    let prepared = tokio::task::spawn_blocking(move || read(&body))
        .await
        .map_err(ApiError::internal)?;
    let (prepared, violations) = match prepared {
        Ok(p) => (Some(p), Vec::new()),
        Err(v) => (None, v),
    };
    let request = GroupCall::Picture {
        group,
        picture: prepared.clone().unwrap_or_else(|| picture::Picture {
            jpeg: Vec::new(),
            width: 0,
            height: 0,
            reencoded: false,
        }),
    };
    let (request, key) = checked(bodies::checked(request, violations), &headers)?;
    let GroupCall::Picture { group, picture } = &request else {
        return Err(ApiError::internal("a picture read as another call"));
    };
    let digest: String = Sha256::digest(&picture.jpeg)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (group, width, height, resized) = (
        group.to_string(),
        picture.width,
        picture.height,
        picture.reencoded,
    );
    let hash = idempotency::hash_of(
        device.device,
        "POST /groups/{jid}/picture",
        &json!([group, digest]),
    );
    let work = async {
        let GroupAnswer::Picture(id) = call(&state, device.device, request).await? else {
            return Err(ApiError::internal("a picture change answered something else").into());
        };
        render(
            state.config.response_style,
            StatusCode::OK,
            "Group picture updated successfully",
            json!({"group_jid": group, "picture_id": id, "width": width, "height": height,
                   "resized": resized}),
        )
    };
    run_keyed(&state, &device.user, key, hash, work).await
}
