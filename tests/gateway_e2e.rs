//! The gateway end to end over real HTTP against the in-process sandbox: pairing through the
//! admin API and the sandbox's phone, groups with every option, a restart without pairing
//! again, both response styles, idempotent retries, tenant isolation, bad inputs that never
//! reach WhatsApp, device and WhatsApp failures mapped to their codes, and logout on delete.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use std::time::Duration;

use gateway_e2e_support::{E2eGateway, Options, WAIT, sandbox, start, status_json};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use wuts::http::ResponseStyle;
use wuts::sim::{AddRule, Fault, PhoneBehaviour, SandboxHandle, SimEvent, StreamError};

fn rule(on_add: AddRule) -> PhoneBehaviour {
    PhoneBehaviour {
        on_add,
        ..PhoneBehaviour::default()
    }
}

/// The account JID of a device JID (`5511...:3@s.whatsapp.net` -> `5511...@s.whatsapp.net`).
fn account(device_jid: &str) -> String {
    let (user, server) = device_jid.split_once('@').unwrap();
    let phone = user.split(':').next().unwrap();
    format!("{phone}@{server}")
}

/// Asserts the body is document 000's error envelope with `code`.
fn wuts_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["error"].is_string() && body["timestamp"].is_string(),
        "{body}"
    );
}

/// No group was created since `events` subscribed.
fn no_group_created(events: &mut broadcast::Receiver<SimEvent>) {
    loop {
        match events.try_recv() {
            Ok(SimEvent::GroupCreated { jid }) => panic!("a group reached WhatsApp: {jid}"),
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_creates_with_every_option_restarts_and_logs_out_on_delete() {
    let sim = sandbox(11).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Padaria").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let jid = gw.pair(&sim, &ana, "5511999990000").await;
    let owner = account(&jid);

    // Options and participant outcomes, document 000's shape, and what WhatsApp recorded.
    sim.set_phone_behaviour("5511777777777", rule(AddRule::InviteOnly))
        .unwrap();
    sim.set_phone_behaviour("5511666666666", rule(AddRule::NotOnWhatsApp))
        .unwrap();
    let (status, body) = gw
        .create(
            &ana.token,
            json!({
                "name": "WUTS Launch",
                "participants": ["+55 11 88888-8888", "5511777777777", "5511666666666@s.whatsapp.net"],
                "description": "hello\nworld",
                "options": {"announcement": true, "locked": true, "join_approval": true}
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["success"], true);
    let group = &body["group"];
    let group_jid = group["jid"].as_str().unwrap().to_owned();
    assert!(group_jid.starts_with("120363") && group_jid.ends_with("@g.us"));
    assert_eq!(group["name"], "WUTS Launch");
    assert_eq!(group["owner"], owner.as_str());
    assert!(group["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (
            &group["is_announce"],
            &group["is_locked"],
            &group["join_approval"]
        ),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(group["members_count"], 2);
    let members = group["participants"].as_array().unwrap();
    assert_eq!(members[0]["jid"], owner.as_str());
    assert_eq!(members[0]["is_super_admin"], true);
    assert_eq!(members[1]["jid"], "5511888888888@s.whatsapp.net");
    assert_eq!(members[1]["is_admin"], false);
    let not_added = group["not_added"].as_array().unwrap();
    assert_eq!(not_added.len(), 2, "{body}");
    let invite_only = not_added
        .iter()
        .find(|p| p["jid"] == "5511777777777@s.whatsapp.net")
        .unwrap();
    assert_eq!(invite_only["error_code"], 403);
    assert_eq!(invite_only["invite_required"], true);
    assert!(!invite_only["invite"]["code"].as_str().unwrap().is_empty());
    assert!(invite_only["invite"]["expiration"].as_u64().unwrap() > 0);
    let absent = not_added
        .iter()
        .find(|p| p["jid"] == "5511666666666@s.whatsapp.net")
        .unwrap();
    assert_eq!(absent["error_code"], 404);
    assert_eq!(absent["invite"], Value::Null);
    let recorded = sim.groups();
    assert_eq!(recorded.len(), 1);
    let record = &recorded[0];
    assert_eq!(record.jid, group_jid);
    assert_eq!(record.subject, "WUTS Launch");
    assert_eq!(record.description.as_deref(), Some("hello\nworld"));
    assert!(record.announcement && record.locked && record.join_approval);
    assert!(!record.community && record.linked_parent.is_none());
    assert_eq!(record.created_by, jid);
    assert_eq!(record.creator, owner);
    assert_eq!(record.failed.len(), 2);

    // A community, then a group inside it.
    let (status, body) = gw
        .create(
            &ana.token,
            json!({"name": "Comunidade", "options": {"community": true}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let community = body["group"]["jid"].as_str().unwrap().to_owned();
    assert!(sim.groups()[1].community);
    let (status, body) = gw
        .create(
            &ana.token,
            json!({"name": "Sub", "participants": ["5511888888888"], "options": {"parent_jid": community}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // [2] is the community's announcement group, which WhatsApp creates with it.
    let groups = sim.groups();
    assert!(groups[2].default_sub_group);
    let sub = &groups[3];
    assert_eq!(sub.jid, body["group"]["jid"].as_str().unwrap());
    assert_eq!(sub.linked_parent.as_deref(), Some(community.as_str()));

    // What only WhatsApp can refuse comes back as WHATSAPP_ERROR with WhatsApp's code.
    for (parent, code) in [
        ("120363000000000001@g.us", 404), // no such community
        (group_jid.as_str(), 406),        // a group that is not a community
    ] {
        let (status, body) = gw
            .create(
                &ana.token,
                json!({"name": "Orphan", "options": {"parent_jid": parent}}),
            )
            .await;
        wuts_error(status, &body, 502, "WHATSAPP_ERROR");
        assert_eq!(body["whatsapp_code"], code, "{body}");
    }
    assert_eq!(sim.groups().len(), 4);

    // Restart: stop the gateway and every device cleanly, reopen the same data directory.
    gw.stop().await;
    let gw = start(&sim, dir.path(), Options::default()).await;
    gw.connected(&ana).await;
    let (status, body) = gw
        .create(&ana.token, json!({"name": "After restart"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["group"]["owner"], owner.as_str());
    assert_eq!(sim.groups().len(), 5);
    assert_eq!(sim.groups()[4].created_by, jid);

    // Deleting the user logs the device out: WhatsApp shows it removed, the token is dead.
    let response = gw
        .admin(reqwest::Method::DELETE, &format!("/admin/users/{}", ana.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let device = sim.devices().into_iter().find(|d| d.jid == jid).unwrap();
    assert!(device.removed, "{device:?}");
    let (status, body) = gw.create(&ana.token, json!({"name": "Gone"})).await;
    wuts_error(status, &body, 401, "UNAUTHORIZED");
    assert_eq!(sim.groups().len(), 5);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_style_wraps_success_and_errors_as_document_002() {
    let sim = sandbox(12).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        style: ResponseStyle::Status,
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("Loja").await;
    let user = gw.user_in(&tenant, "Bia").await;
    let jid = gw.pair(&sim, &user, "5511999990010").await;
    let owner = account(&jid);
    sim.set_phone_behaviour("5511777777770", rule(AddRule::InviteOnly))
        .unwrap();

    let (status, body) = gw
        .create(
            &user.token,
            json!({"name": "My Group", "description": "desc", "participants": ["6281234567890", "5511777777770"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], true);
    assert_eq!(body["code"], 200);
    assert_eq!(body["message"], "Group created successfully");
    let data = &body["data"];
    assert_eq!(data["jid"], sim.groups()[0].jid.as_str());
    assert_eq!(data["name"], "My Group");
    assert_eq!(data["description"], "desc");
    assert_eq!(data["owner"], owner.as_str());
    assert!(data["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(data["participant_count"], 2);
    assert_eq!(
        data["participants"],
        json!([
            {"jid": owner, "is_admin": true, "is_super_admin": true},
            {"jid": "6281234567890@s.whatsapp.net", "is_admin": false, "is_super_admin": false}
        ])
    );
    assert_eq!(data["not_added"][0]["error_code"], 403);

    let (status, body) = gw.create(&user.token, json!({"participants": []})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["status"], false);
    assert_eq!(body["code"], 400);
    assert_eq!(body["message"], "Bad request");
    assert_eq!(body["error_code"], "VALIDATION_ERROR");
    assert!(body["error"].as_str().unwrap().contains("name"), "{body}");
    assert_eq!(sim.groups().len(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_idempotent_and_a_token_only_reaches_its_own_device() {
    let sim = sandbox(13).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let (tenant_a, tenant_b) = (gw.tenant("A").await, gw.tenant("B").await);
    let a = gw.user_in(&tenant_a, "Ana").await;
    let b = gw.user_in(&tenant_b, "Bruno").await;
    let jid_a = gw.pair(&sim, &a, "5511999990020").await;
    let jid_b = gw.pair(&sim, &b, "5511999990021").await;

    let body = json!({"name": "Retry me", "participants": ["5511888888888"]});
    let send = |token: &str, key: &str, body: &Value| {
        gw.groups(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    let first = send(&a.token, "order-42", &body).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.unwrap();
    let again = send(&a.token, "order-42", &body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first, "the same bytes");
    assert_eq!(sim.groups().len(), 1, "WhatsApp saw one create");

    let other = json!({"name": "Something else"});
    let (status, refused) = status_json(send(&a.token, "order-42", &other).await.unwrap()).await;
    wuts_error(status, &refused, 422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(sim.groups().len(), 1);

    // Keys belong to a user: B's same key and body create B's own group on B's device.
    let (status, created) = status_json(send(&b.token, "order-42", &body).await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["group"]["owner"], account(&jid_b).as_str());
    let groups = sim.groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].created_by, jid_a);
    assert_eq!(groups[1].created_by, jid_b);
    assert_eq!(groups[1].jid, created["group"]["jid"].as_str().unwrap());

    // Without a key every request goes out; each token to its own device only.
    for _ in 0..2 {
        let (status, _) = gw.create(&b.token, json!({"name": "B only"})).await;
        assert_eq!(status, 201);
    }
    let by = |device: &str| {
        sim.groups()
            .iter()
            .filter(|g| g.created_by == device)
            .count()
    };
    assert_eq!((by(&jid_a), by(&jid_b)), (1, 3));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_before_anything_reaches_whatsapp() {
    let sim = sandbox(14).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "Caio").await;
    gw.pair(&sim, &user, "5511999990030").await;
    let mut sim_events = sim.subscribe();

    let bodies = [
        (json!({"participants": []}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "ok\u{0007}"}), "name"),
        (json!({"name": 42}), "name"),
        (
            json!({"name": "ok", "participants": ["abc"]}),
            "participants[0]",
        ),
        (
            json!({"name": "ok", "participants": ["0119999"]}),
            "participants[0]",
        ),
        (
            json!({"name": "ok", "participants": ["5511999990001:2@s.whatsapp.net"]}),
            "participants[0]",
        ),
        (
            json!({"name": "ok", "participants": "5511999990001"}),
            "participants",
        ),
        (
            json!({"name": "ok", "description": "d".repeat(2049)}),
            "description",
        ),
        (json!({"name": "ok", "subject": "typo"}), "subject"),
        (
            json!({"name": "ok", "options": {"annoucement": true}}),
            "options.annoucement",
        ),
        (
            json!({"name": "ok", "options": {"locked": "yes"}}),
            "options.locked",
        ),
        (
            json!({"name": "ok", "options": {"parent_jid": "not-a-jid"}}),
            "options.parent_jid",
        ),
        (
            json!({"name": "ok", "options": {"community": true, "parent_jid": "120363000000000001@g.us"}}),
            "options.parent_jid",
        ),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, field) in bodies {
        let (status, answer) = gw.create(&user.token, body.clone()).await;
        wuts_error(status, &answer, 400, "VALIDATION_ERROR");
        let fields: Vec<&str> = answer["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body} -> {answer}");
    }
    // More participants than a group holds.
    let crowd: Vec<String> = (0..1100).map(|i| format!("55119{i:08}")).collect();
    let (status, answer) = gw
        .create(&user.token, json!({"name": "ok", "participants": crowd}))
        .await;
    wuts_error(status, &answer, 400, "VALIDATION_ERROR");

    let raw = |body: Vec<u8>, content_type: &str| {
        gw.groups(&user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, answer) = status_json(
        raw(b"{\"name\": ".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    wuts_error(status, &answer, 400, "INVALID_JSON");
    let (status, answer) = status_json(
        raw(b"{\"name\": \"ok\"}".to_vec(), "text/plain")
            .await
            .unwrap(),
    )
    .await;
    wuts_error(status, &answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    let mut big = b"{\"name\": \"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    big.extend_from_slice(b"\"}");
    let (status, answer) = status_json(raw(big, "application/json").await.unwrap()).await;
    wuts_error(status, &answer, 413, "PAYLOAD_TOO_LARGE");
    let (status, answer) = status_json(
        gw.groups(&user.token)
            .header("Idempotency-Key", "")
            .json(&json!({"name": "ok"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    wuts_error(status, &answer, 400, "VALIDATION_ERROR");
    let (status, answer) = gw.create("not-a-token", json!({"name": "ok"})).await;
    wuts_error(status, &answer, 401, "UNAUTHORIZED");

    assert!(sim.groups().is_empty());
    no_group_created(&mut sim_events);

    // The same pipe carries a valid request: the next thing WhatsApp sees is its group.
    let (status, answer) = gw.create(&user.token, json!({"name": "ok"})).await;
    assert_eq!(status, 201, "{answer}");
    let created = tokio::time::timeout(WAIT, async {
        loop {
            if let SimEvent::GroupCreated { jid } = sim_events.recv().await.unwrap() {
                return jid;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(created, answer["group"]["jid"].as_str().unwrap());
    assert_eq!(sim.groups().len(), 1);
    gw.stop().await;
}

/// Waits until the device's link is down, through its event stream.
async fn disconnected(gw: &E2eGateway, user: &gateway_e2e_support::User) {
    let mut events = gw.events(user).await;
    let (_, state) = events.next().await;
    if state["state"] != "disconnected" {
        events.wait_for("disconnected").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_whatsapp_failures_map_to_their_codes() {
    let sim: SandboxHandle = sandbox(15).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        iq_timeout: Duration::from_secs(3),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let tenant = gw.tenant("T").await;

    // Never paired.
    let unpaired = gw.user_in(&tenant, "Nobody").await;
    let (status, body) = gw.create(&unpaired.token, json!({"name": "x"})).await;
    wuts_error(status, &body, 409, "DEVICE_NOT_PAIRED");

    let user = gw.user_in(&tenant, "Duda").await;
    let jid = gw.pair(&sim, &user, "5511999990040").await;

    // WhatsApp never answers the create: TIMEOUT after the engine's IQ timeout. (The
    // sandbox did create the group; only the reply was lost, as on the real service.)
    sim.inject(Fault::WithholdIq {
        device: jid.clone(),
        xmlns: Some("w:g2".into()),
        count: Some(1),
    })
    .await
    .unwrap();
    let (status, body) = gw.create(&user.token, json!({"name": "lost"})).await;
    wuts_error(status, &body, 504, "TIMEOUT");
    // The connection survives; the next create goes through.
    let (status, body) = gw.create(&user.token, json!({"name": "next"})).await;
    assert_eq!(status, 201, "{body}");

    // WhatsApp refuses (a parent that does not exist): 502 with its code.
    let (status, body) = gw
        .create(
            &user.token,
            json!({"name": "x", "options": {"parent_jid": "120363000000000009@g.us"}}),
        )
        .await;
    wuts_error(status, &body, 502, "WHATSAPP_ERROR");
    assert_eq!(body["whatsapp_code"], 404);

    // Another session took over: the device stays offline and says so.
    sim.inject(Fault::StreamError {
        device: jid.clone(),
        error: StreamError::Replaced,
    })
    .await
    .unwrap();
    disconnected(&gw, &user).await;
    let groups = sim.groups().len();
    let (status, body) = gw.create(&user.token, json!({"name": "offline"})).await;
    wuts_error(status, &body, 503, "DEVICE_OFFLINE");
    assert_eq!(gw.show_user(&user).await["state"], "disconnected");
    assert_eq!(sim.groups().len(), groups);
    gw.stop().await;
}
