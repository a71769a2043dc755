//! `GET /admin/users/{id}/qr`: the current pairing QR code as JSON, PNG, SVG or terminal text.
//!
//! The code changes every 20 s (60 s for the first), so responses are `no-store`.

use std::io::Cursor;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use qrcode::render::svg;
use serde::{Deserialize, Serialize};

use super::admin::load_user;
use super::auth::AdminAuth;
use super::{ApiError, AppState, ErrorCode};
use crate::client::api::{DeviceId, DeviceState, DeviceStatus, QrCode};

/// Side of the PNG and SVG images, in pixels (a phone reads it from a screen at arm's length).
const IMAGE_SIZE: u32 = 320;

/// The query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QrQuery {
    format: Option<String>,
}

/// The JSON form.
#[derive(Serialize)]
struct QrView<'a> {
    code: &'a str,
    /// Unix seconds.
    expires_at: u64,
    /// Seconds the code is valid from when it was issued.
    ttl: u64,
}

/// The handler.
pub(crate) async fn show_qr(
    State(state): State<Arc<AppState>>,
    _: AdminAuth,
    Path(id): Path<String>,
    query: Result<Query<QrQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = load_user(&state, &id)?;
    let pair = format!("/admin/users/{}/pair", user.id);
    respond(&state, user.device, query, &pair)
}

/// The current QR code of `device` in the format asked for; `pair` is the route that starts
/// pairing it, named when there is no code to show.
pub(crate) fn respond(
    state: &AppState,
    device: DeviceId,
    query: Result<Query<QrQuery>, QueryRejection>,
    pair: &str,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let status = state.devices.status(device)?;
    let Some(qr) = status.qr else {
        return Err(no_qr(&status, pair));
    };
    let mut response = match query.format.as_deref().unwrap_or("json") {
        "json" => Json(QrView {
            code: &qr.code,
            expires_at: qr.expires_at,
            ttl: qr.ttl.as_secs(),
        })
        .into_response(),
        "png" => with_type(png(&qr)?, "image/png"),
        "svg" => with_type(svg(&qr)?.into_bytes(), "image/svg+xml"),
        "txt" => with_type(text(&qr)?.into_bytes(), "text/plain; charset=utf-8"),
        _ => {
            return Err(ApiError::invalid("format", "must be json, png, svg or txt"));
        }
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-qr-expires-at"),
        HeaderValue::from(qr.expires_at),
    );
    Ok(response)
}

fn with_type(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn encode(qr: &QrCode) -> Result<qrcode::QrCode, ApiError> {
    qrcode::QrCode::new(qr.code.as_bytes()).map_err(ApiError::internal)
}

/// A PNG, black on white, with the quiet zone.
pub(crate) fn png(qr: &QrCode) -> Result<Vec<u8>, ApiError> {
    let image = encode(qr)?
        .render::<image::Luma<u8>>()
        .min_dimensions(IMAGE_SIZE, IMAGE_SIZE)
        .build();
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(ApiError::internal)?;
    Ok(out.into_inner())
}

/// An SVG document.
pub(crate) fn svg(qr: &QrCode) -> Result<String, ApiError> {
    Ok(encode(qr)?
        .render::<svg::Color<'_>>()
        .min_dimensions(IMAGE_SIZE, IMAGE_SIZE)
        .build())
}

/// Modules of white space around the code: the QR standard's quiet zone, which scanners need.
const QUIET_ZONE: usize = 4;
/// Black text on a bright white background, whatever the terminal's own colours.
const TEXT_COLOURS: &str = "\x1b[30;107m";
const TEXT_RESET: &str = "\x1b[0m";

/// Text for a terminal: two module rows per line in half blocks, dark modules drawn in black on
/// an explicit white background with the quiet zone, so `curl .../qr?format=txt` scans from a
/// light or a dark terminal alike.
pub(crate) fn text(qr: &QrCode) -> Result<String, ApiError> {
    let code = encode(qr)?;
    let width = code.width();
    let colours = code.to_colors();
    let side = width + 2 * QUIET_ZONE;
    let dark = |x: usize, y: usize| -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        x < width && y < width && colours.get(y * width + x) == Some(&qrcode::Color::Dark)
    };
    let mut text = String::new();
    for y in (0..side).step_by(2) {
        text.push_str(TEXT_COLOURS);
        for x in 0..side {
            text.push(match (dark(x, y), dark(x, y + 1)) {
                (true, true) => '\u{2588}',
                (true, false) => '\u{2580}',
                (false, true) => '\u{2584}',
                (false, false) => ' ',
            });
        }
        text.push_str(TEXT_RESET);
        text.push('\n');
    }
    Ok(text)
}

/// Why there is no QR code to show: still coming (404, retry), or the state says there will be
/// none (409 with what to do).
fn no_qr(status: &DeviceStatus, pair: &str) -> ApiError {
    let conflict = |code, message: String| ApiError::Conflict { code, message };
    match status.state {
        DeviceState::Pairing => {
            ApiError::NotFound("no QR code yet: the device is connecting to pair".to_owned())
        }
        DeviceState::Connecting | DeviceState::Connected | DeviceState::Disconnected => conflict(
            ErrorCode::DeviceAlreadyPaired,
            "the device is already paired: there is no QR code to show".to_owned(),
        ),
        state => {
            let why = status
                .reason
                .as_ref()
                .map(|r| format!(" ({}: {})", r.code, r.message))
                .unwrap_or_default();
            conflict(
                ErrorCode::DeviceNotPairing,
                format!(
                    "the device is {}{why}: start pairing with POST {pair}",
                    state.as_str()
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample() -> QrCode {
        QrCode {
            code: "2@abc,def,ghi,jkl,1".into(),
            expires_at: 1_700_000_060,
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn renders_every_format() {
        let png = png(&sample()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(svg(&sample()).unwrap().contains("<svg"));
        let text = text(&sample()).unwrap();
        assert!(text.lines().count() > 10);
        assert!(text.contains('\u{2588}') || text.contains('\u{2580}'));
    }

    /// The text reads back as the same code with its quiet zone, every line in explicit colours.
    #[test]
    fn terminal_text_is_the_code_with_quiet_zone_and_colours() {
        let code = encode(&sample()).unwrap();
        let width = code.width();
        let colours = code.to_colors();
        let text = text(&sample()).unwrap();
        let side = width + 2 * QUIET_ZONE;
        let mut rows = vec![vec![false; side]; side + 1];
        for (line_no, line) in text.lines().enumerate() {
            let glyphs = line
                .strip_prefix(TEXT_COLOURS)
                .and_then(|l| l.strip_suffix(TEXT_RESET))
                .expect("every line coloured");
            assert_eq!(glyphs.chars().count(), side);
            for (x, glyph) in glyphs.chars().enumerate() {
                let (top, bottom) = match glyph {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                rows[2 * line_no][x] = top;
                rows[2 * line_no + 1][x] = bottom;
            }
        }
        for (y, row) in rows.iter().enumerate().take(side) {
            for (x, dark) in row.iter().enumerate() {
                let inside = (QUIET_ZONE..QUIET_ZONE + width).contains(&x)
                    && (QUIET_ZONE..QUIET_ZONE + width).contains(&y);
                let expected = inside
                    && colours[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == qrcode::Color::Dark;
                assert_eq!(*dark, expected, "module {x},{y}");
            }
        }
    }
}
