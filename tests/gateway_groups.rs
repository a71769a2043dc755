//! `POST /groups` over real HTTP against a recording fake registry: shapes, options,
//! validation (nothing sent), auth and isolation, error mapping.
//!
//! End-to-end twins against the in-process sandbox come when the engine lands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::time::Duration;

use gateway_support::{GROUP_CREATED_AT, own_jid, start_default, status_json};
use serde_json::{Value, json};
use wuts::client::api::{DeviceState, Error};
use wuts::ops::groups::{AddRequest, ParticipantOutcome};

#[tokio::test]
async fn creates_a_group_in_document_000_shape() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let (status, body) = status_json(
        gw.groups(&user.token)
            .json(&json!({
                "name": "WUTS Launch",
                "participants": ["5511999999999@s.whatsapp.net", "5511888888888@s.whatsapp.net"],
                "options": {"announcement": false, "locked": false, "join_approval": true, "community": false}
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let owner = own_jid(user.device).to_string();
    assert_eq!(
        body,
        json!({
            "success": true,
            "group": {
                "jid": "120363039000000000@g.us",
                "name": "WUTS Launch",
                "owner": owner,
                "created_at": "2026-06-15T10:00:00Z",
                "is_announce": false,
                "is_locked": false,
                "join_approval": true,
                "members_count": 3,
                "participants": [
                    {"jid": owner, "phone_number": owner, "is_admin": true, "is_super_admin": true},
                    {"jid": "5511999999999@s.whatsapp.net", "phone_number": "5511999999999@s.whatsapp.net",
                     "is_admin": false, "is_super_admin": false},
                    {"jid": "5511888888888@s.whatsapp.net", "phone_number": "5511888888888@s.whatsapp.net",
                     "is_admin": false, "is_super_admin": false}
                ],
                "not_added": []
            }
        })
    );
    assert_eq!(GROUP_CREATED_AT, 1_781_517_600);
    gw.stop().await;
}

#[tokio::test]
async fn every_option_reaches_the_engine() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let cases = [
        json!({"announcement": true}),
        json!({"locked": true}),
        json!({"join_approval": true}),
        json!({"community": true}),
        json!({"parent_jid": "120363000000000001@g.us"}),
    ];
    for options in &cases {
        let response = gw
            .groups(&user.token)
            .json(&json!({"name": "Opts", "description": "About", "options": options}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{options}");
        let body: Value = response.json().await.unwrap();
        let group = &body["group"];
        assert_eq!(group["is_announce"], options["announcement"] == true);
        assert_eq!(group["is_locked"], options["locked"] == true);
        assert_eq!(group["join_approval"], options["join_approval"] == true);
    }
    let calls = gw.devices.group_calls();
    assert_eq!(calls.len(), cases.len());
    let requests: Vec<_> = calls.into_iter().map(|(_, r)| r).collect();
    assert!(requests[0].announcement && !requests[0].locked);
    assert!(requests[1].locked && !requests[1].announcement);
    assert!(requests[2].join_approval);
    assert!(requests[3].community && requests[3].parent.is_none());
    assert_eq!(
        requests[4]
            .parent
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("120363000000000001@g.us")
    );
    assert!(
        requests
            .iter()
            .all(|r| r.description.as_deref() == Some("About"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn participants_are_normalised_and_deduplicated() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let response = gw
        .groups(&user.token)
        .json(&json!({"name": "N", "participants": [
            "+55 11 99999-0001", "5511999990001@s.whatsapp.net", "5511999990001@c.us",
            "(55) 11 99999 0002", "100000000000002@lid"
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, request) = gw.devices.group_calls().pop().unwrap();
    let sent: Vec<String> = request
        .participants
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        sent,
        [
            "5511999990001@s.whatsapp.net",
            "5511999990002@s.whatsapp.net",
            "100000000000002@lid"
        ]
    );
    gw.stop().await;
}

#[tokio::test]
async fn participants_not_added_are_listed_with_their_outcome() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    gw.devices.set_outcome(
        "5511999990001@s.whatsapp.net",
        ParticipantOutcome::Failed {
            code: 403,
            invite: Some(AddRequest {
                code: "INVITE123".into(),
                expiration: GROUP_CREATED_AT + 3600,
            }),
        },
    );
    gw.devices.set_outcome(
        "5511999990002@s.whatsapp.net",
        ParticipantOutcome::Failed {
            code: 408,
            invite: None,
        },
    );
    let (status, body) = status_json(
        gw.groups(&user.token)
            .json(&json!({"name": "Partial", "participants": [
                "5511999990001", "5511999990002", "5511999990003"
            ]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let group = &body["group"];
    assert_eq!(group["members_count"], 2, "creator and 0003");
    assert_eq!(group["participants"].as_array().unwrap().len(), 2);
    assert_eq!(
        group["not_added"],
        json!([
            {"jid": "5511999990001@s.whatsapp.net", "phone_number": "5511999990001@s.whatsapp.net",
             "error_code": 403, "reason": "privacy settings forbid a direct add; send the invite instead",
             "invite_required": true,
             "invite": {"code": "INVITE123", "expires_at": "2026-06-15T11:00:00Z", "expiration": GROUP_CREATED_AT + 3600}},
            {"jid": "5511999990002@s.whatsapp.net", "phone_number": "5511999990002@s.whatsapp.net",
             "error_code": 408, "reason": "left the group recently and cannot be re-added yet",
             "invite_required": false, "invite": null}
        ])
    );
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_lists_every_violation_and_sends_nothing() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let (status, body) = status_json(
        gw.groups(&user.token)
            .header("Idempotency-Key", "has space")
            .json(&json!({
                "name": "x".repeat(101),
                "participants": ["12", "5511999990001:2@s.whatsapp.net", "120363000000000001@g.us", true],
                "description": "d".repeat(2049),
                "options": {"announcement": "yes", "community": true, "parent_jid": "120363000000000001@g.us", "colour": 1},
                "extra": 1
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);
    assert_eq!(body["error_code"], "VALIDATION_ERROR");
    assert_eq!(body["error"], "validation failed");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "Idempotency-Key",
            "extra",
            "name",
            "participants[0]",
            "participants[1]",
            "participants[2]",
            "participants[3]",
            "description",
            "options.colour",
            "options.announcement",
            "options.parent_jid"
        ]
    );
    for body in [
        json!({}),
        json!({"name": "   "}),
        json!({"name": 5}),
        json!({"name": "a", "participants": "5511999990001"}),
        json!({"name": "a", "options": []}),
        json!(["not", "an", "object"]),
    ] {
        let response = gw.groups(&user.token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    assert!(
        gw.devices.group_calls().is_empty(),
        "nothing reached the device"
    );
    gw.stop().await;
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_get_the_envelope() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        gw.groups(&user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = status_json(
        send(b"{\"name\": \"a\",".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    assert!(body["error"].as_str().unwrap().contains("line 1"));

    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(70 * 1024));
    let (status, body) =
        status_json(send(huge.into_bytes(), "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    assert_eq!(body["success"], false);

    let (status, body) = status_json(
        send(b"name=a".to_vec(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    assert!(gw.devices.group_calls().is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn tokens_are_required_and_bare_tokens_accepted() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let body = json!({"name": "Auth"});
    let url = format!("{}/groups", gw.url);
    for auth in [None, Some("Bearer nope"), Some("Basic abc"), Some("")] {
        let mut request = gw.http.post(&url).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, envelope) = status_json(response).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(envelope["error_code"], "UNAUTHORIZED");
    }
    // The admin token is not a user token.
    let response = gw
        .groups(gateway_support::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Document 002's clients send the token without "Bearer".
    let response = gw
        .http
        .post(&url)
        .header("authorization", &user.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(gw.devices.group_calls().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_token_only_reaches_its_own_device() {
    let gw = start_default().await;
    let tenant_a = gw.tenant("A").await;
    let tenant_b = gw.tenant("B").await;
    let a = gw.user_in(&tenant_a, "a").await;
    let a2 = gw.user_in(&tenant_a, "a2").await;
    let b = gw.user_in(&tenant_b, "b").await;
    for user in [&a, &a2, &b] {
        gw.devices.connect(user.device);
    }
    for (user, name) in [(&b, "from b"), (&a, "from a"), (&a2, "from a2")] {
        let response = gw
            .groups(&user.token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let routed: Vec<_> = gw
        .devices
        .group_calls()
        .into_iter()
        .map(|(device, request)| (device, request.subject))
        .collect();
    assert_eq!(
        routed,
        [
            (b.device, "from b".to_owned()),
            (a.device, "from a".to_owned()),
            (a2.device, "from a2".to_owned())
        ]
    );
    // A's device disconnects: B is unaffected, A gets 503 and nothing reaches B's device.
    gw.devices.set_state(a.device, DeviceState::Disconnected);
    let response = gw
        .groups(&a.token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(gw.devices.group_calls().last().unwrap().0, a.device);
    gw.stop().await;
}

#[tokio::test]
async fn device_and_whatsapp_errors_map_to_stable_codes() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    let cases: Vec<(Error, u16, &str)> = vec![
        (Error::NotPaired, 409, "DEVICE_NOT_PAIRED"),
        (Error::NotConnected, 503, "DEVICE_OFFLINE"),
        (Error::Closed, 503, "DEVICE_OFFLINE"),
        (Error::Timeout(Duration::from_secs(75)), 504, "TIMEOUT"),
        (
            Error::Rejected {
                code: 406,
                text: "not-acceptable".into(),
            },
            502,
            "WHATSAPP_ERROR",
        ),
        (
            Error::Malformed(wuts::ops::ParseError::Missing("group")),
            502,
            "WHATSAPP_ERROR",
        ),
        (
            Error::Invalid(vec![wuts::ops::FieldError::new(
                "participants",
                wuts::ops::Problem::TooManyMembers {
                    max: 1024,
                    got: 1024,
                },
            )]),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Error::Store(wuts_store::Error::DeviceIdsExhausted),
            500,
            "INTERNAL_ERROR",
        ),
    ];
    for (error, want_status, want_code) in cases {
        let shown = error.to_string();
        gw.devices.push_group_result(Err(error));
        let (status, body) = status_json(
            gw.groups(&user.token)
                .json(&json!({"name": "E"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (want_status, Some(want_code)),
            "{shown}"
        );
        assert_eq!(body["success"], false);
        if want_code == "INTERNAL_ERROR" {
            assert_eq!(body["error"], "internal error", "no details leak");
        }
        if status == 502 && shown.contains("406") {
            assert_eq!(body["whatsapp_code"], 406);
            assert_eq!(body["whatsapp_text"], "not-acceptable");
        }
    }
    // The fake's own state logic: an unpaired device.
    let tenant = gw.tenant("T").await;
    let fresh = gw.user_in(&tenant, "new").await;
    let response = gw
        .groups(&fresh.token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    gw.stop().await;
}

#[tokio::test]
async fn invisible_names_are_refused_and_names_are_trimmed() {
    let gw = start_default().await;
    let user = gw.connected_user().await;
    for name in [
        "\u{200B}",
        " \u{202E}\u{200B} ",
        "\u{2060}\u{FEFF}",
        "\u{3164}",
    ] {
        let (status, body) = gw.create(&user.token, json!({ "name": name })).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert_eq!(body["details"][0]["field"], "name", "{body}");
        assert_eq!(
            body["details"][0]["message"], "must contain a visible character",
            "{body}"
        );
    }
    assert!(
        gw.devices.group_calls().is_empty(),
        "nothing reached WhatsApp"
    );
    let (status, body) = gw.create(&user.token, json!({"name": "  Feira  "})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(gw.devices.group_calls()[0].1.subject, "Feira");
    gw.stop().await;
}
