//! Communities end to end over real HTTP against the in-process sandbox: Ana creates one (with
//! its announcement group), adds Bruno, links and unlinks groups, and every refusal WhatsApp's
//! server makes (a member who is not an admin, a group already in a community, a community to
//! link, the announcement group to unlink, an unknown group, a group that is not a community)
//! comes back with its code while nothing changes. Members hear `link` / `unlink`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod gateway_group_support;

use gateway_group_support::*;
use reqwest::Method;
use serde_json::{Value, json};
use wuts::http::ResponseStyle;

async fn create_community(w: &World, body: Value, key: Option<&str>) -> (u16, Value) {
    call(&w.gw, &w.ana, Method::POST, "/communities", Some(body), key).await
}

fn linked(body: &Value) -> Vec<(String, bool)> {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["jid"].as_str().unwrap().to_owned(),
                g["is_announcement"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_link_unlink_and_refusals() {
    let w = world(31, ResponseStyle::Wuts).await;

    // Bad input is listed and nothing reaches WhatsApp.
    let before = w.sim.groups().len();
    let (status, body) = create_community(
        &w,
        json!({"name": " ", "participants": ["abc"], "options": {"community": true}}),
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
    assert_eq!(fields, ["options", "name", "participants[0]"], "{body}");
    assert_eq!(w.sim.groups().len(), before);

    // Created, with its announcement group; a retry with the key replays it.
    let request = json!({"name": "Bairro", "description": "Vizinhos", "participants": [BRUNO]});
    let (status, body) = create_community(&w, request.clone(), Some("c-1")).await;
    assert_eq!(status, 201, "{body}");
    let community = &body["community"];
    let cjid = community["jid"].as_str().unwrap().to_owned();
    assert_eq!(community["name"], "Bairro");
    assert_eq!(community["description"], "Vizinhos");
    assert_eq!(community["is_community"], true);
    assert_eq!(community["members_count"], 2);
    assert_eq!(community["not_added"], json!([]));
    let news = community["announcement_group"]["jid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(community["announcement_group"]["is_announcement"], true);
    assert_ne!(news, cjid);
    let (status, again) = create_community(&w, request, Some("c-1")).await;
    assert_eq!((status, &again), (201, &body));
    let records = w.sim.groups();
    assert_eq!(
        records.len(),
        before + 2,
        "one community, one announcement group"
    );
    let record = records.iter().find(|g| g.jid == news).unwrap();
    assert!(record.announcement && record.default_sub_group);
    assert_eq!(record.linked_parent.as_deref(), Some(cjid.as_str()));

    // Its participants change as a group's do.
    let participants = format!("/communities/{cjid}/participants");
    let carla = "5511777770000";
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &participants,
        Some(json!({"participants": [carla, BRUNO]})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&Value> = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(statuses, [&json!(200), &json!(409)], "{body}");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::DELETE,
        &participants,
        Some(json!({"participants": [carla]})),
        None,
    )
    .await;
    assert_eq!((status, &body["action"]), (200, &json!("remove")), "{body}");

    // Ana links her team; Bruno (a member of both) hears it from the community.
    let team = team(&w).await;
    let mut bruno_events = w.gw.events(&w.bruno).await;
    let groups = format!("/communities/{cjid}/groups");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &groups,
        Some(json!({"group_jid": team})),
        Some("link-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["community_jid"], cjid.as_str());
    assert_eq!(body["group_jid"], team.as_str());
    let heard = group_event(&mut bruno_events, "link").await;
    assert_eq!(heard["group"], cjid.as_str());
    assert_eq!(heard["linked_group"], team.as_str());
    assert_eq!(heard["actor"], pn(ANA).as_str());
    let (status, body) = call(&w.gw, &w.bruno, Method::GET, &groups, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(linked(&body), [(news.clone(), true), (team.clone(), false)]);
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        Method::GET,
        &format!("/groups/{team}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        body["group"]["parent_jid"],
        cjid.as_str(),
        "{status} {body}"
    );

    // Refusals, each leaving everything as it was.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &groups,
        Some(json!({"group_jid": team})),
        None,
    )
    .await;
    expect_error(status, &body, 409, "GROUP_ALREADY_LINKED");
    assert_eq!(body["whatsapp_code"], 409, "{body}");
    let (status, body) = call(
        &w.gw,
        &w.bruno,
        Method::DELETE,
        &format!("{groups}/{team}"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 403, "NOT_GROUP_ADMIN");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::DELETE,
        &format!("{groups}/{news}"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 422, "COMMUNITY_REFUSED");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::GET,
        &format!("/communities/{team}/groups"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 422, "COMMUNITY_REFUSED");
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &groups,
        Some(json!({"group_jid": "120363999999999999@g.us"})),
        None,
    )
    .await;
    expect_error(status, &body, 404, "GROUP_NOT_FOUND");
    let (status, body) = create_community(&w, json!({"name": "Outro"}), None).await;
    assert_eq!(status, 201, "{body}");
    let other = body["community"]["jid"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &groups,
        Some(json!({"group_jid": other})),
        None,
    )
    .await;
    expect_error(status, &body, 422, "COMMUNITY_REFUSED");
    // A group already in a community cannot go to another.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &format!("/communities/{other}/groups"),
        Some(json!({"group_jid": team})),
        None,
    )
    .await;
    expect_error(status, &body, 409, "GROUP_ALREADY_LINKED");
    let team_record = w.sim.groups().into_iter().find(|g| g.jid == team).unwrap();
    assert_eq!(team_record.linked_parent.as_deref(), Some(cjid.as_str()));

    // Bad paths and bodies never reach WhatsApp.
    let sent = w.sim.groups();
    for (method, path, body) in [
        (Method::POST, groups.clone(), json!({})),
        (Method::POST, groups.clone(), json!({"group_jid": cjid})),
        (
            Method::POST,
            groups.clone(),
            json!({"group_jid": "5511@s.whatsapp.net"}),
        ),
        (
            Method::POST,
            "/communities/abc/groups".to_owned(),
            json!({"group_jid": team}),
        ),
    ] {
        let (status, answer) = call(&w.gw, &w.ana, method, &path, Some(body.clone()), None).await;
        expect_error(status, &answer, 400, "VALIDATION_ERROR");
        assert_eq!(
            answer["details"][0]["field"],
            if path.contains("abc") {
                "jid"
            } else {
                "group_jid"
            },
            "{body} {answer}"
        );
    }
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::DELETE,
        &format!("{groups}/not-a-group"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 400, "VALIDATION_ERROR");
    assert_eq!(w.sim.groups(), sent);

    // Unlinked: it stays a group, without a parent; members hear it.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::DELETE,
        &format!("{groups}/{team}"),
        None,
        Some("unlink-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let heard = group_event(&mut bruno_events, "unlink").await;
    assert_eq!(heard["linked_group"], team.as_str());
    let (_, body) = call(&w.gw, &w.ana, Method::GET, &groups, None, None).await;
    assert_eq!(linked(&body), [(news.clone(), true)]);
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::GET,
        &format!("/groups/{team}"),
        None,
        None,
    )
    .await;
    assert_eq!((status, &body["group"]["parent_jid"]), (200, &Value::Null));
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::DELETE,
        &format!("{groups}/{team}"),
        None,
        None,
    )
    .await;
    expect_error(status, &body, 404, "GROUP_NOT_FOUND");
    w.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_admin_links_and_a_member_may_not() {
    let w = world(32, ResponseStyle::Status).await;
    let (status, body) =
        create_community(&w, json!({"name": "Bairro", "participants": [BRUNO]}), None).await;
    assert_eq!((status, &body["status"]), (200, &json!(true)), "{body}");
    let cjid = body["data"]["community"]["jid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) =
        w.gw.create(
            &w.ana.token,
            json!({"name": "Team", "participants": [BRUNO]}),
        )
        .await;
    let team = body["data"]["jid"].as_str().unwrap().to_owned();
    let mut ana_events = w.gw.events(&w.ana).await;

    // Bruno is only a member of both: the sandbox refuses him as WhatsApp would.
    let link = json!({"group": cjid, "actor_phone": BRUNO, "action": "link", "value": team});
    let (status, body) = control(&w.sim, "/group-action", link.clone()).await;
    assert_eq!((status, &body["code"]), (403, &json!(401)), "{body}");
    // Promoted in the community only, he still is not an admin of the group.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &format!("/communities/{cjid}/participants"),
        Some(json!({"participants": [BRUNO], "action": "promote"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = control(&w.sim, "/group-action", link.clone()).await;
    assert_eq!((status, &body["code"]), (403, &json!(401)), "{body}");
    // Admin of both, he links it; Ana hears it with him as the actor.
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &format!("/groups/{team}/participants"),
        Some(json!({"participants": [BRUNO], "action": "promote"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = control(&w.sim, "/group-action", link).await;
    assert_eq!(status, 200, "{body}");
    let heard = group_event(&mut ana_events, "link").await;
    assert_eq!(heard["actor"], pn(BRUNO).as_str());
    assert_eq!(heard["linked_group"], team.as_str());
    // In the status style, the list and the refusals keep their envelope.
    let path = format!("/communities/{cjid}/groups");
    let (status, body) = call(&w.gw, &w.ana, Method::GET, &path, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["groups"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    let (status, body) = call(
        &w.gw,
        &w.ana,
        Method::POST,
        &path,
        Some(json!({"group_jid": team})),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], false);
    assert_eq!(body["error_code"], "GROUP_ALREADY_LINKED");
    w.gw.stop().await;
}
