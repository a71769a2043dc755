//! `POST /admin/backup {"dest"}`: a copy of the live data directory, written by the gateway
//! itself (it holds the store open, so no other process can read it consistently). `wuts store
//! backup` calls this when the gateway is running.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::AdminAuth;
use super::body::JsonBody;
use super::validate::Object;
use super::{ApiError, AppState, durably};

/// The handler.
pub(crate) async fn backup(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut object = Object::new(&body, &["dest"]).map_err(ApiError::Validation)?;
    let dest = object.string("dest").map(PathBuf::from);
    if let Some(dest) = &dest {
        if !dest.is_absolute() {
            object.push("dest", "must be an absolute path on the gateway's machine");
        } else if std::fs::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some()) {
            object.push("dest", "must not exist yet, or be an empty directory");
        }
    }
    let (Some(dest), true) = (dest, object.violations.is_empty()) else {
        return Err(ApiError::Validation(object.violations));
    };
    let target = dest.clone();
    // A store that kept changing through every attempt is busy, not broken: 503, try again.
    match durably(&state, move |store| Ok(store.backup_to(&target))).await? {
        Ok(()) => {}
        Err(wuts_store::Error::BackupUnsettled { attempts }) => {
            tracing::warn!(attempts, "backup not taken: the store kept changing");
            return Err(ApiError::ServerBusy);
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(dest = %dest.display(), "backup written");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "dest": dest.display().to_string() })),
    )
        .into_response())
}
