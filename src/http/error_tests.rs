//! Tests of the error table and envelopes.

use std::time::Duration;

use super::*;
use crate::client::api::DeviceId;

#[test]
fn client_errors_map_to_the_documented_codes() {
    let cases = [
        (ClientError::NotPaired, "DEVICE_NOT_PAIRED", 409),
        (ClientError::NotConnected, "DEVICE_OFFLINE", 503),
        (ClientError::Closed, "DEVICE_OFFLINE", 503),
        (ClientError::Timeout(Duration::from_secs(1)), "TIMEOUT", 504),
        (
            ClientError::Rejected {
                code: 406,
                text: "not-acceptable".into(),
            },
            "WHATSAPP_ERROR",
            502,
        ),
        (
            ClientError::Malformed(crate::ops::ParseError::Missing("group")),
            "WHATSAPP_ERROR",
            502,
        ),
        (
            ClientError::Invalid(vec![crate::ops::FieldError::new(
                "name",
                crate::ops::Problem::Empty,
            )]),
            "VALIDATION_ERROR",
            400,
        ),
        (ClientError::AlreadyPaired, "DEVICE_ALREADY_PAIRED", 409),
        (ClientError::Pairing, "DEVICE_PAIRING", 409),
        (
            ClientError::UnknownDevice(DeviceId::new(1)),
            "NOT_FOUND",
            404,
        ),
    ];
    for (error, code, status) in cases {
        let api = ApiError::from(error);
        assert_eq!(api.code().as_str(), code);
        assert_eq!(api.code().status().as_u16(), status);
    }
}

#[test]
fn internal_errors_hide_their_detail() {
    let body = ApiError::Internal("disk on fire".into())
        .report()
        .wuts_style();
    assert_eq!(body["error"], "internal error");
    assert_eq!(body["error_code"], "INTERNAL_ERROR");
    assert!(!body.to_string().contains("disk"));
}

#[test]
fn status_style_lists_violations_in_its_error_text() {
    let error = ApiError::Validation(vec![
        Violation::new("name", "is required"),
        Violation::new("participants[0]", "is not a phone number"),
    ]);
    let body = error.report().status_style();
    assert_eq!(body["status"], false);
    assert_eq!(body["code"], 400);
    assert_eq!(body["message"], "Bad request");
    assert_eq!(
        body["error"],
        "name: is required; participants[0]: is not a phone number"
    );
}

#[test]
fn rfc3339_has_whole_seconds_and_z() {
    assert_eq!(rfc3339(1_781_517_600), "2026-06-15T10:00:00Z");
}
