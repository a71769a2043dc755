//! Group administration after create, end to end over real HTTP against the in-process
//! sandbox: two paired accounts (Ana, who creates, and Bruno, a member), every route with its
//! refusals (a non-admin's change, the creator untouchable, an unknown group, a revoked link,
//! a non-participant), per-participant outcomes, `w:gp2` notifications arriving on the other
//! member's event stream, idempotent retries, and bad input that never reaches WhatsApp.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use gateway_e2e_support::{E2eGateway, Events, Options, User, sandbox, start, status_json};
use serde_json::{Value, json};
use wuts::http::ResponseStyle;
use wuts::sim::{AddRule, PhoneBehaviour, SandboxHandle};

const ANA: &str = "5511999990000";
const BRUNO: &str = "5511888880000";

fn pn(phone: &str) -> String {
    format!("{phone}@s.whatsapp.net")
}

/// A request with the user's token; `body` is sent as JSON when given.
async fn call(
    gw: &E2eGateway,
    user: &User,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = gw
        .http
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(&user.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    status_json(request.send().await.unwrap()).await
}

fn expect_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
}

/// Waits for the next `group` event of `kind` on a device's stream.
async fn group_event(events: &mut Events, kind: &str) -> Value {
    loop {
        let data = events.wait_for("group").await;
        if data["kind"] == kind {
            return data;
        }
    }
}

struct World {
    sim: SandboxHandle,
    gw: E2eGateway,
    ana: User,
    bruno: User,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64, style: ResponseStyle) -> World {
    let sim = sandbox(seed).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        &sim,
        dir.path(),
        Options {
            style,
            ..Options::default()
        },
    )
    .await;
    let tenant = gw.tenant("Padaria").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let bruno = gw.user_in(&tenant, "Bruno").await;
    gw.pair(&sim, &ana, ANA).await;
    gw.pair(&sim, &bruno, BRUNO).await;
    World {
        sim,
        gw,
        ana,
        bruno,
        _dir: dir,
    }
}

/// Ana's group with Bruno and Carla (a number nobody paired).
async fn team(w: &World) -> String {
    let (status, body) =
        w.gw.create(
            &w.ana.token,
            json!({"name": "Team", "participants": [BRUNO, "5511777770000"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["group"]["jid"].as_str().unwrap().to_owned()
}

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

/// POSTs JSON to the sandbox's control API.
async fn control(sim: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.control_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

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
