//! Simulated members acting through the sandbox's control API (`POST /control/group-action`,
//! `POST /control/join-request`): the same rules and notifications as a real device, and the
//! join requests an admin then approves over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod gateway_group_support;

use gateway_group_support::*;
use serde_json::{Value, json};
use wuts::http::ResponseStyle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_members_act_through_the_control_api() {
    let w = world(24, ResponseStyle::Wuts).await;
    let jid = team(&w).await;
    let carla = "5511777770000";
    let mut ana_events = w.gw.events(&w.ana).await;
    let mut bruno_events = w.gw.events(&w.bruno).await;

    // Carla is only a member: she may not switch the announcement mode.
    let (status, body) = control(
        &w.sim,
        "/group-action",
        json!({"group": jid, "actor_phone": carla, "action": "announce", "value": true}),
    )
    .await;
    assert_eq!((status, &body["code"]), (403, &json!(401)), "{body}");

    // Promoted, she renames the group; both devices hear it, with her as the actor.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::POST,
        &format!("/groups/{jid}/participants"),
        Some(json!({"participants": [carla], "action": "promote"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = control(
        &w.sim,
        "/group-action",
        json!({"group": jid, "actor_phone": carla, "action": "subject", "value": "Carla's"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for events in [&mut ana_events, &mut bruno_events] {
        let renamed = group_event(events, "subject").await;
        assert_eq!(renamed["subject"], "Carla's");
        assert_eq!(renamed["actor"], pn(carla).as_str());
    }
    // And removes Bruno, who hears it too.
    let (status, body) = control(
        &w.sim,
        "/group-action",
        json!({"group": jid, "actor_phone": carla, "action": "remove", "participants": [BRUNO]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let removed = group_event(&mut bruno_events, "remove").await;
    assert_eq!(removed["participants"], json!([pn(BRUNO)]));

    // A join request in a join-approval group reaches the admins.
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
    let (status, body) = control(
        &w.sim,
        "/join-request",
        json!({"group": jid, "phone": "5511333330000"}),
    )
    .await;
    assert_eq!((status, &body["pending"]), (200, &json!(true)), "{body}");
    let request = group_event(&mut ana_events, "join_request").await;
    assert_eq!(request["participants"], json!([pn("5511333330000")]));

    // The admin lists and approves it; someone who did not ask is that participant's 404.
    let requests = format!("/groups/{jid}/requests");
    let (status, body) = call(&w.gw, &w.ana, reqwest::Method::GET, &requests, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"][0]["jid"], pn("5511333330000").as_str());
    assert!(body["requests"][0]["requested_at"].is_string());
    let (status, body) = call(&w.gw, &w.bruno, reqwest::Method::GET, &requests, None, None).await;
    expect_error(status, &body, 403, "NOT_A_PARTICIPANT");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::POST,
        &requests,
        Some(json!({"action": "approve", "participants": ["5511333330000", "5511222220000"]})),
        Some("approve-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&Value> = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(statuses, [&json!(200), &json!(404)], "{body}");
    assert_eq!(
        group_event(&mut ana_events, "add").await["participants"],
        json!([pn("5511333330000")])
    );
    let record = w.sim.groups().into_iter().find(|g| g.jid == jid).unwrap();
    assert!(record.requests.is_empty());
    assert!(
        record
            .participants
            .iter()
            .any(|m| m.jid == pn("5511333330000"))
    );
    let (status, body) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::POST,
        &requests,
        Some(json!({"action": "maybe"})),
        None,
    )
    .await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");
    let (status, _) = control(
        &w.sim,
        "/join-request",
        json!({"group": "120363999999999999@g.us", "phone": "5511333330000"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = control(
        &w.sim,
        "/group-action",
        json!({"group": jid, "actor_phone": carla, "action": "dance"}),
    )
    .await;
    assert_eq!(status, 400);
    w.gw.stop().await;
}
