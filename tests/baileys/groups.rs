//! Baileys' own group calls against the sandbox (a module of `sim_baileys.rs`): Baileys, paired
//! by the simulated phone, creates a group and runs groupParticipantsUpdate (add, promote,
//! demote, remove), groupInviteCode and groupRevokeInvite, groupUpdateSubject,
//! groupUpdateDescription (twice: the second names the first as `prev`), groupSettingUpdate,
//! groupToggleEphemeral, groupMemberAddMode, groupJoinApprovalMode, groupMetadata,
//! groupFetchAllParticipating, groupRequestParticipantsList and groupLeave (`tests/baileys/
//! groups.mjs`). Each answer is read by Baileys' own parsers and checked here against what the
//! sandbox stored. Then simulated members act through the control API and Baileys' events
//! (`group-participants.update`, `groups.update`) must fire from the sandbox's notifications.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};
use wuts::sim::{Sandbox, SandboxConfig, SandboxHandle};

use super::{next, probe, script, until_open};

const PHONE: &str = "5511999990555";
/// Simulated people (nobody paired them): the sandbox adds them.
const MEMBER: &str = "5511777770001";
const OTHER: &str = "5511777770002";

fn pn(phone: &str) -> String {
    format!("{phone}@s.whatsapp.net")
}

async fn control(sb: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sb.control_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// The next line that is not an event of Baileys' own start-up (`open`).
async fn line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    loop {
        let v = next(rx).await;
        if v["event"] != "open" {
            return v;
        }
    }
}

/// The next step's line (events in between, as Baileys hears its own changes, skipped).
async fn next_step(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    loop {
        let v = line(rx).await;
        if v.get("step").is_some() {
            return v;
        }
    }
}

/// The result of step `name` (the steps come in order), failing on a refusal.
async fn step(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, name: &str) -> Value {
    let v = next_step(rx).await;
    assert_eq!(v["step"], name, "{v}");
    assert!(v.get("error").is_none(), "Baileys' {name} failed: {v}");
    v["result"].clone()
}

/// The next Baileys event of `kind`, other events skipped.
async fn event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, kind: &str) -> Value {
    loop {
        let v = line(rx).await;
        if v["event"] == kind {
            return v["data"].clone();
        }
    }
}

fn statuses(result: &Value) -> Vec<(String, String)> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["jid"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub async fn run(dir: PathBuf) {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let auth = tempfile::tempdir().unwrap();
    // Paired first, by the QR code, as in the pairing proof.
    let (mut child, mut rx) = probe(&dir, &sb, auth.path(), &[]);
    let qr = next(&mut rx).await;
    assert_eq!(qr["event"], "qr", "{qr}");
    sb.scan(qr["qr"].as_str().unwrap(), PHONE).await.unwrap();
    until_open(&mut rx).await;
    let _ = child.wait();

    let (mut child, mut rx) = script(&dir, &sb, auth.path(), "groups.mjs", &[MEMBER, OTHER]);
    let mut stdin = child.stdin.take().unwrap();
    let created = step(&mut rx, "groupCreate").await;
    let jid = created["id"].as_str().unwrap().to_owned();
    let summary = step(&mut rx, "created").await;
    assert_eq!(summary["subject"], "Baileys group");
    assert_eq!(summary["owner"], pn(PHONE).as_str());
    assert_eq!(
        summary["participants"],
        json!([{"id": pn(PHONE), "admin": "superadmin"}, {"id": pn(MEMBER), "admin": null}])
    );

    // Per-participant outcomes as Baileys reads them: OTHER added, MEMBER already in (409).
    let added = step(&mut rx, "groupParticipantsUpdate.add").await;
    assert_eq!(
        statuses(&added),
        [
            (pn(OTHER), "200".to_owned()),
            (pn(MEMBER), "409".to_owned())
        ]
    );
    let promoted = step(&mut rx, "groupParticipantsUpdate.promote").await;
    assert_eq!(statuses(&promoted), [(pn(MEMBER), "200".to_owned())]);
    let demoted = step(&mut rx, "groupParticipantsUpdate.demote").await;
    assert_eq!(statuses(&demoted), [(pn(OTHER), "200".to_owned())]);
    let removed = step(&mut rx, "groupParticipantsUpdate.remove").await;
    assert_eq!(statuses(&removed), [(pn(OTHER), "200".to_owned())]);

    // The link: read twice the same, revoked into a new one.
    let code = step(&mut rx, "groupInviteCode").await;
    let revoked = step(&mut rx, "groupRevokeInvite").await;
    let after = step(&mut rx, "groupInviteCode.after").await;
    assert!(code.as_str().is_some_and(|c| !c.is_empty()), "{code}");
    assert_ne!(code, revoked);
    assert_eq!(revoked, after);

    for name in [
        "groupUpdateSubject",
        "groupUpdateDescription",
        "groupUpdateDescription.again",
        "groupSettingUpdate.announcement",
        "groupSettingUpdate.locked",
        "groupSettingUpdate.not_announcement",
        "groupToggleEphemeral",
        "groupMemberAddMode",
        "groupJoinApprovalMode",
    ] {
        step(&mut rx, name).await;
    }
    // Baileys' own reading of the metadata agrees with what the sandbox stored.
    let meta = step(&mut rx, "groupMetadata").await;
    let record = sb.groups().into_iter().find(|g| g.jid == jid).unwrap();
    assert_eq!(meta["subject"], "Renamed by Baileys");
    assert_eq!(record.subject, "Renamed by Baileys");
    assert_eq!(meta["desc"], "Described twice");
    assert_eq!(record.description.as_deref(), Some("Described twice"));
    assert_eq!(meta["descId"].as_str(), record.description_id.as_deref());
    assert_eq!(
        (&meta["announce"], &meta["restrict"]),
        (&json!(false), &json!(true))
    );
    assert!(!record.announcement && record.locked);
    assert_eq!(meta["ephemeral"], 604_800);
    assert_eq!(record.ephemeral, 604_800);
    assert_eq!(
        (&meta["joinApprovalMode"], &meta["memberAddMode"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(record.member_add_mode, "admin_add");
    assert_eq!(
        meta["participants"],
        json!([{"id": pn(PHONE), "admin": "superadmin"}, {"id": pn(MEMBER), "admin": "admin"}])
    );
    let all = step(&mut rx, "groupFetchAllParticipating").await;
    assert_eq!(
        all,
        json!([{"id": jid, "subject": "Renamed by Baileys", "size": 2}])
    );
    assert_eq!(
        step(&mut rx, "groupRequestParticipantsList").await,
        json!([])
    );
    // A refusal reaches Baileys as WhatsApp's code.
    let unknown = next_step(&mut rx).await;
    assert_eq!(unknown["step"], "groupMetadata.unknown", "{unknown}");
    assert_eq!(unknown["code"], 404, "{unknown}");
    let ready = loop {
        let v = line(&mut rx).await;
        if v["event"] == "ready" {
            break v;
        }
    };
    assert_eq!(ready["group"], jid.as_str());

    // A simulated admin acts: Baileys' events fire from the sandbox's notifications.
    let (status, body) = control(
        &sb,
        "/group-action",
        json!({"group": jid, "actor_phone": MEMBER, "action": "add", "participants": [OTHER]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let update = event(&mut rx, "group-participants.update").await;
    assert_eq!(update["id"], jid.as_str(), "{update}");
    assert_eq!(update["action"], "add", "{update}");
    assert_eq!(update["author"], pn(MEMBER).as_str(), "{update}");
    assert_eq!(
        update["participants"][0]["id"],
        pn(OTHER).as_str(),
        "{update}"
    );
    let (status, body) = control(
        &sb,
        "/group-action",
        json!({"group": jid, "actor_phone": MEMBER, "action": "subject", "value": "Set by a member"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let update = event(&mut rx, "groups.update").await;
    assert_eq!(update[0]["id"], jid.as_str(), "{update}");
    assert_eq!(update[0]["subject"], "Set by a member", "{update}");
    assert_eq!(update[0]["author"], pn(MEMBER).as_str(), "{update}");

    // Someone asks to join: Baileys lists the request.
    let (status, body) = control(
        &sb,
        "/join-request",
        json!({"group": jid, "phone": "5511333330000"}),
    )
    .await;
    assert_eq!((status, &body["pending"]), (200, &json!(true)), "{body}");
    writeln!(stdin, "requests").unwrap();
    let v = next_step(&mut rx).await;
    assert_eq!(v["step"], "groupRequestParticipantsList.later", "{v}");
    assert_eq!(v["result"][0]["jid"], pn("5511333330000").as_str(), "{v}");

    // Baileys leaves; the sandbox no longer lists it.
    writeln!(stdin, "leave").unwrap();
    let v = next_step(&mut rx).await;
    assert_eq!(v["step"], "groupLeave", "{v}");
    assert!(v.get("error").is_none(), "{v}");
    let record = sb.groups().into_iter().find(|g| g.jid == jid).unwrap();
    assert!(!record.participants.iter().any(|m| m.jid == pn(PHONE)));
    writeln!(stdin, "exit").unwrap();
    let _ = child.wait();
}
