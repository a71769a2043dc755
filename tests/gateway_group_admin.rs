//! Group administration after create, end to end over real HTTP against the in-process
//! sandbox: listing, reading and updating a group (with the refusals of a non-admin and the
//! notifications the other member hears), and the status response style. Participants,
//! invites and joining are in `gateway_group_members.rs`, the simulated members in
//! `gateway_group_control.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod gateway_group_support;

use gateway_group_support::*;
use serde_json::{Value, json};
use wuts::http::ResponseStyle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_read_update_and_notifications() {
    let w = world(21, ResponseStyle::Wuts).await;
    let jid = team(&w).await;
    let mut bruno_events = w.gw.events(&w.bruno).await;
    let get = reqwest::Method::GET;
    let patch = reqwest::Method::PATCH;

    // Listed for both members, without participants.
    for user in [&w.ana, &w.bruno] {
        let (status, body) = call(&w.gw, user, get.clone(), "/groups", None, None).await;
        assert_eq!(status, 200, "{body}");
        let groups = body["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{body}");
        assert_eq!(groups[0]["jid"], jid.as_str());
        assert_eq!(groups[0]["members_count"], 3);
        assert!(groups[0].get("participants").is_none());
    }

    // Read back with participants and roles.
    let path = format!("/groups/{jid}");
    let (status, body) = call(&w.gw, &w.bruno, get.clone(), &path, None, None).await;
    assert_eq!(status, 200, "{body}");
    let group = &body["group"];
    assert_eq!(group["name"], "Team");
    assert_eq!(group["owner"], pn(ANA).as_str());
    let roles: Vec<(String, bool, bool)> = group["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["jid"].as_str().unwrap().to_owned(),
                p["is_admin"].as_bool().unwrap(),
                p["is_super_admin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (pn(ANA), true, true),
            (pn(BRUNO), false, false),
            (pn("5511777770000"), false, false)
        ]
    );

    // The admin changes several fields at once; each is applied and the member hears of it.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        patch.clone(),
        &path,
        Some(json!({"member_add_mode": "admin", "name": "Team 2", "topic": "About us", "announcement": true})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["applied"],
        json!(["name", "topic", "announcement", "member_add_mode"])
    );
    let group = &body["group"];
    assert_eq!(group["name"], "Team 2");
    assert_eq!(group["topic"], "About us");
    assert_eq!(group["is_announce"], true);
    assert_eq!(group["member_add_mode"], "admin");
    let subject = group_event(&mut bruno_events, "subject").await;
    assert_eq!(subject["subject"], "Team 2");
    assert_eq!(subject["actor"], pn(ANA).as_str());
    assert_eq!(subject["group"], jid.as_str());
    let description = group_event(&mut bruno_events, "description").await;
    assert_eq!(description["description"], "About us");
    assert_eq!(
        group_event(&mut bruno_events, "announce").await["enabled"],
        true
    );
    assert_eq!(
        group_event(&mut bruno_events, "member_add_mode").await["member_add_mode"],
        "admin"
    );

    // A second description change names the first (WhatsApp's `prev`), so it is accepted.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        patch.clone(),
        &path,
        Some(json!({"description": "v2"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["group"]["description"], "v2");

    // A member who is not an admin: the name goes through (the group is not locked), the
    // announcement switch is refused, and the answer says which did what.
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        patch.clone(),
        &path,
        Some(json!({"name": "Bruno's", "announcement": false, "locked": true})),
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_GROUP_ADMIN");
    assert_eq!(body["whatsapp_code"], 401);
    assert_eq!(body["applied"], json!(["name"]));
    assert_eq!(body["refused"], "announcement");
    assert_eq!(body["not_attempted"], json!(["locked"]));
    let record = w.sim.groups().into_iter().find(|g| g.jid == jid).unwrap();
    assert_eq!(record.subject, "Bruno's");
    assert!(record.announcement && !record.locked);

    // Bad input: every violation listed, nothing sent.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        patch.clone(),
        "/groups/not-a-group",
        Some(json!({"name": "", "colour": 1})),
        None,
    )
    .await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["jid", "colour", "name"]);
    let (status, body) = call(&w.gw, &w.ana, patch.clone(), &path, Some(json!({})), None).await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");
    assert_eq!(
        w.sim
            .groups()
            .into_iter()
            .find(|g| g.jid == jid)
            .unwrap()
            .subject,
        "Bruno's"
    );

    // An unknown group.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        get.clone(),
        "/groups/120363999999999999@g.us",
        None,
        None,
    )
    .await;
    expect_error(status, &body, 404, "GROUP_NOT_FOUND");
    assert_eq!(body["whatsapp_code"], 404);

    // A retry with the same key replays; the same key with another body is refused.
    let body = json!({"locked": true});
    let first = call(
        &w.gw,
        &w.ana,
        patch.clone(),
        &path,
        Some(body.clone()),
        Some("lock-1"),
    )
    .await;
    assert_eq!(first.0, 200, "{}", first.1);
    let response =
        w.gw.http
            .patch(format!("{}{path}", w.gw.url))
            .bearer_auth(&w.ana.token)
            .header("Idempotency-Key", "lock-1")
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.json::<Value>().await.unwrap(), first.1);
    let (status, reused) = call(
        &w.gw,
        &w.ana,
        patch,
        &path,
        Some(json!({"locked": false})),
        Some("lock-1"),
    )
    .await;
    expect_error(status, &reused, 422, "IDEMPOTENCY_KEY_REUSED");

    // What the sandbox sent Bruno's device, as the control API shows it.
    let bruno_device = w
        .sim
        .devices()
        .into_iter()
        .find(|d| d.phone == BRUNO)
        .unwrap();
    let sent: Value = reqwest::get(format!(
        "{}/notifications?jid={}",
        w.sim.control_url(),
        bruno_device.jid
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let sent = sent.as_array().unwrap();
    assert!(
        sent.iter()
            .all(|n| n["kind"] == "w:gp2" && n["from"] == jid.as_str()),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|n| n["stanza"].as_str().unwrap().contains("<locked/>"))
    );
    w.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_style_answers_in_its_envelope() {
    let w = world(23, ResponseStyle::Status).await;
    let (status, body) =
        w.gw.create(
            &w.ana.token,
            json!({"name": "Team", "participants": [BRUNO]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let jid = body["data"]["jid"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        reqwest::Method::GET,
        &format!("/groups/{jid}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], true);
    assert_eq!(body["code"], 200);
    assert_eq!(
        body["data"]["group"]["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        reqwest::Method::GET,
        &format!("/groups/{jid}/invite"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["status"], false);
    assert_eq!(body["error_code"], "NOT_GROUP_ADMIN");
    w.gw.stop().await;
}

/// Sends `raw` (JSON text, kept byte for byte) with an `Idempotency-Key`.
async fn raw(
    w: &World,
    method: reqwest::Method,
    path: &str,
    raw: &str,
    key: &str,
) -> (u16, bool, Value) {
    let response =
        w.gw.http
            .request(method, format!("{}{path}", w.gw.url))
            .bearer_auth(&w.ana.token)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(raw.to_owned())
            .send()
            .await
            .unwrap();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let status = response.status().as_u16();
    (status, replayed, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_fingerprints_the_normalised_request_not_its_text() {
    let w = world(25, ResponseStyle::Wuts).await;
    let jid = team(&w).await;
    let path = format!("/groups/{jid}");
    let patch = reqwest::Method::PATCH;

    // The same fields in another order (and spacing) are the same request: replayed.
    let first = raw(
        &w,
        patch.clone(),
        &path,
        r#"{"name":"Equipe","locked":true}"#,
        "p-1",
    )
    .await;
    assert_eq!((first.0, first.1), (200, false), "{}", first.2);
    let again = raw(
        &w,
        patch.clone(),
        &path,
        r#"{ "locked": true, "name": " Equipe " }"#,
        "p-1",
    )
    .await;
    assert_eq!((again.0, again.1), (200, true), "{}", again.2);
    assert_eq!(again.2, first.2);
    // Another value under the same key is refused, whatever the order.
    let other = raw(&w, patch, &path, r#"{"locked":true,"name":"Outra"}"#, "p-1").await;
    expect_error(other.0, &other.2, 422, "IDEMPOTENCY_KEY_REUSED");

    // A join: the link and its bare code are the same request; another code is not.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::GET,
        &format!("{path}/invite"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let link = body["invite_link"].as_str().unwrap().to_owned();
    let code = link.rsplit('/').next().unwrap().to_owned();
    let post = reqwest::Method::POST;
    let joined = raw(
        &w,
        post.clone(),
        "/groups/join",
        &json!({"link": link}).to_string(),
        "j-1",
    )
    .await;
    assert_eq!((joined.0, joined.1), (200, false), "{}", joined.2);
    let again = raw(
        &w,
        post.clone(),
        "/groups/join",
        &json!({"link": code}).to_string(),
        "j-1",
    )
    .await;
    assert_eq!((again.0, again.1, &again.2), (200, true, &joined.2));
    let other = raw(&w, post, "/groups/join", r#"{"link":"AbCdEf"}"#, "j-1").await;
    expect_error(other.0, &other.2, 422, "IDEMPOTENCY_KEY_REUSED");
    w.gw.stop().await;
}
