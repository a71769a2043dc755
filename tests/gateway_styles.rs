//! The `status` response style (document 002) for `POST /groups`, success and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use gateway_support::{GROUP_CREATED_AT, own_jid, status_json};
use serde_json::json;
use wuts::client::api::Error;
use wuts::http::{GatewayConfig, ResponseStyle};
use wuts::ops::groups::ParticipantOutcome;

async fn start_status() -> gateway_support::FakeGateway {
    gateway_support::start(GatewayConfig {
        response_style: ResponseStyle::Status,
        ..GatewayConfig::default()
    })
    .await
}

#[tokio::test]
async fn success_uses_document_002_envelope() {
    let gw = start_status().await;
    let user = gw.connected_user().await;
    gw.devices.set_outcome(
        "6289876543210@s.whatsapp.net",
        ParticipantOutcome::Failed {
            code: 409,
            invite: None,
        },
    );
    let response = gw
        .http
        .post(format!("{}/groups", gw.url))
        .header("authorization", &user.token)
        .json(&json!({"name": "My Group", "participants": ["6281234567890@s.whatsapp.net", "6289876543210"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200);
    let owner = own_jid(user.device).to_string();
    assert_eq!(
        body,
        json!({
            "status": true,
            "code": 200,
            "message": "Group created successfully",
            "data": {
                "jid": "120363039000000000@g.us",
                "name": "My Group",
                "description": "",
                "owner": owner,
                "created_at": GROUP_CREATED_AT,
                "participant_count": 2,
                "participants": [
                    {"jid": owner, "is_admin": true, "is_super_admin": true},
                    {"jid": "6281234567890@s.whatsapp.net", "is_admin": false, "is_super_admin": false}
                ],
                "not_added": [
                    {"jid": "6289876543210@s.whatsapp.net", "phone_number": "6289876543210@s.whatsapp.net",
                     "error_code": 409, "reason": "already a member", "invite_required": false, "invite": null}
                ]
            }
        })
    );
    gw.stop().await;
}

#[tokio::test]
async fn errors_use_document_002_envelope() {
    let gw = start_status().await;
    let user = gw.connected_user().await;

    let (status, body) = status_json(
        gw.groups(&user.token)
            .json(&json!({"participants": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], false);
    assert_eq!(body["code"], 400);
    assert_eq!(body["message"], "Bad request");
    assert_eq!(body["error"], "name: is required");
    assert_eq!(body["error_code"], "VALIDATION_ERROR");

    let response = gw
        .http
        .post(format!("{}/groups", gw.url))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, &body["code"], &body["message"]),
        (401, &json!(401), &json!("Unauthorized"))
    );
    assert_eq!(body["status"], false);

    gw.devices.push_group_result(Err(Error::Rejected {
        code: 403,
        text: "forbidden".into(),
    }));
    let (status, body) = status_json(
        gw.groups(&user.token)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["message"], "Bad gateway");
    assert_eq!(body["whatsapp_code"], 403);

    let (status, body) = status_json(
        gw.groups(&user.token)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["status"].clone()), (400, json!(false)));
    assert_eq!(body["error_code"], "INVALID_JSON");

    // The admin API keeps the gateway's own envelope whatever the style.
    let (status, body) = status_json(
        gw.http
            .get(format!("{}/admin/users", gw.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["success"].clone()), (401, json!(false)));
    gw.stop().await;
}
