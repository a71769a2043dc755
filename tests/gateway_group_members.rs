//! Participants, invite links, the disappearing timer, leaving and joining, end to end over
//! real HTTP against the in-process sandbox: per-participant outcomes, the creator untouchable,
//! a revoked link, idempotent retries, and bad input that never reaches WhatsApp.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod gateway_group_support;

use gateway_group_support::*;
use serde_json::json;
use wuts::http::ResponseStyle;
use wuts::sim::{AddRule, PhoneBehaviour};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_invites_ephemeral_leave_and_join() {
    let w = world(22, ResponseStyle::Wuts).await;
    let jid = team(&w).await;
    let rule = |on_add| PhoneBehaviour {
        on_add,
        ..PhoneBehaviour::default()
    };
    w.sim
        .set_phone_behaviour("5511666660000", rule(AddRule::InviteOnly))
        .unwrap();
    w.sim
        .set_phone_behaviour("5511555550000", rule(AddRule::NotOnWhatsApp))
        .unwrap();
    let mut bruno_events = w.gw.events(&w.bruno).await;
    let (post, delete, get, put) = (
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::GET,
        reqwest::Method::PUT,
    );
    let members = format!("/groups/{jid}/participants");

    // Adding: one added, one privacy-restricted (403 + invite), one not on WhatsApp, one
    // already in.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        &members,
        Some(json!({"participants": ["5511444440000", "5511666660000", "5511555550000", BRUNO]})),
        Some("add-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "add");
    assert_eq!(body["jid"], jid.as_str());
    let statuses: Vec<u64> = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403, 404, 409], "{body}");
    let invite = &body["participants"][1]["invite"];
    assert!(
        invite["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    let added = group_event(&mut bruno_events, "add").await;
    assert_eq!(added["participants"], json!([pn("5511444440000")]));

    // Promote Bruno; he then may switch the announcement mode.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        &members,
        Some(json!({"participants": [BRUNO], "action": "promote"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participants"][0]["is_admin"], true);
    assert_eq!(
        group_event(&mut bruno_events, "promote").await["participants"],
        json!([pn(BRUNO)])
    );

    // Nobody but the creator touches the creator.
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        delete.clone(),
        &members,
        Some(json!({"participants": [ANA]})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participants"][0]["status"], 401, "{body}");

    // Removing someone who is not in the group is that participant's 404.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        delete.clone(),
        &members,
        Some(json!({"participants": ["5511555550000"]})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participants"][0]["status"], 404);

    // Demote Bruno back; a non-admin cannot remove.
    call(
        &w.gw,
        &w.ana,
        post.clone(),
        &members,
        Some(json!({"participants": [BRUNO], "action": "demote"})),
        None,
    )
    .await;
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        delete.clone(),
        &members,
        Some(json!({"participants": ["5511444440000"]})),
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_GROUP_ADMIN");

    // Invite link: read, reset (the old one is revoked).
    let (status, body) = call(
        &w.gw,
        &w.ana,
        get.clone(),
        &format!("/groups/{jid}/invite"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let old_link = body["invite_link"].as_str().unwrap().to_owned();
    assert!(
        old_link.starts_with("https://chat.whatsapp.com/"),
        "{old_link}"
    );
    let (status, again) = call(
        &w.gw,
        &w.ana,
        get.clone(),
        &format!("/groups/{jid}/invite"),
        None,
        None,
    )
    .await;
    assert_eq!((status, &again["invite_link"]), (200, &body["invite_link"]));
    let (status, body) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        &format!("/groups/{jid}/invite/reset"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new_link = body["invite_link"].as_str().unwrap().to_owned();
    assert_ne!(new_link, old_link);
    assert!(body["reset_at"].is_string());
    assert_eq!(
        group_event(&mut bruno_events, "invite").await["invite_code"],
        new_link.trim_start_matches("https://chat.whatsapp.com/")
    );
    // Bruno is not an admin: no link for him.
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        get.clone(),
        &format!("/groups/{jid}/invite"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_GROUP_ADMIN");

    // Disappearing messages.
    let timer = format!("/groups/{jid}/ephemeral");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        put.clone(),
        &timer,
        Some(json!({"duration_seconds": 604800})),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["duration_seconds"]),
        (200, &json!(604800)),
        "{body}"
    );
    assert_eq!(
        group_event(&mut bruno_events, "ephemeral").await["ephemeral_seconds"],
        604800
    );
    let (status, body) = call(
        &w.gw,
        &w.ana,
        put,
        &timer,
        Some(json!({"duration_seconds": 60})),
        None,
    )
    .await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");

    // Bruno leaves; he is then not a participant.
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        delete.clone(),
        &format!("/groups/{jid}/leave"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let left = group_event(&mut bruno_events, "leave").await;
    assert_eq!(left["participants"], json!([pn(BRUNO)]));
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        get.clone(),
        &format!("/groups/{jid}"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_A_PARTICIPANT");
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        delete,
        &format!("/groups/{jid}/leave"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_A_PARTICIPANT");

    // Joining: the revoked link is refused, a made-up one is invalid, the new one works.
    let join = |link: &str| json!({ "link": link });
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        post.clone(),
        "/groups/join",
        Some(join(&old_link)),
        None,
    )
    .await;
    expect_error(status, &body, 410, "INVITE_REVOKED");
    assert_eq!(body["whatsapp_code"], 410);
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        post.clone(),
        "/groups/join",
        Some(join("https://chat.whatsapp.com/Nope123")),
        None,
    )
    .await;
    expect_error(status, &body, 404, "INVITE_INVALID");
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        post.clone(),
        "/groups/join",
        Some(join("not a link")),
        None,
    )
    .await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        post.clone(),
        "/groups/join",
        Some(join(&new_link)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "pending_approval": false, "group_jid": jid})
    );
    let joined = group_event(&mut bruno_events, "add").await;
    assert_eq!(
        (joined["reason"].as_str(), &joined["participants"]),
        (Some("invite"), &json!([pn(BRUNO)]))
    );

    // With join approval on, joining leaves a pending request instead.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::PATCH,
        &format!("/groups/{jid}"),
        Some(json!({"join_approval": true})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    call(
        &w.gw,
        &w.bruno,
        reqwest::Method::DELETE,
        &format!("/groups/{jid}/leave"),
        None,
        None,
    )
    .await;
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        post,
        "/groups/join",
        Some(join(&new_link)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pending_approval"], true);
    let record = w.sim.groups().into_iter().find(|g| g.jid == jid).unwrap();
    assert_eq!(record.requests.len(), 1);
    assert!(!record.participants.iter().any(|m| m.jid == pn(BRUNO)));
    w.gw.stop().await;
}
