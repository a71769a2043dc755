//! The sandbox's data directory: each change writes its own record and nothing else (so the
//! cost of a change does not grow with the directory), a restart gets everything back (the
//! offline queue included), a `sandbox.json` of an earlier build is taken over, and one
//! sandbox at a time has the directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::path::Path;

use sim_support::*;
use wuts::binary::{Jid, Node};
use wuts::sim::{
    AddRule, Error, PersistError, PhoneBehaviour, Sandbox, SandboxConfig, SandboxHandle,
    StoreWrites,
};

const PHONE: &str = "5511999999999";

fn config(dir: &Path) -> SandboxConfig {
    SandboxConfig {
        data_dir: Some(dir.to_path_buf()),
        ..SandboxConfig::default()
    }
}

/// A create with a fixed-width subject, so every group record has the same size.
fn create_iq(client: &mut RawClient, n: u64) -> Node {
    let participants = (1..=3).map(|i| {
        let jid: Jid = format!("55110000000{i:02}@s.whatsapp.net").parse().unwrap();
        Node::new("participant").with_attr("jid", jid)
    });
    let create = Node::new("create")
        .with_attr("subject", format!("group {n:06}"))
        .with_children(participants.collect());
    Node::new("iq")
        .with_attr("id", client.new_id())
        .with_attr("xmlns", "w:g2")
        .with_attr("type", "set")
        .with_attr("to", Jid::server_only("g.us"))
        .with_children(vec![create])
}

/// Creates group `n` and returns what the store wrote for it (the reply comes after the write).
async fn create(sb: &SandboxHandle, client: &mut RawClient, n: u64) -> StoreWrites {
    let before = sb.store_writes();
    let iq = create_iq(client, n);
    let reply = client.request(iq).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    let after = sb.store_writes();
    StoreWrites {
        records: after.records - before.records,
        bytes: after.bytes - before.bytes,
    }
}

#[tokio::test]
async fn a_group_writes_one_record_whether_it_is_the_tenth_or_the_thousandth() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let (_, _, mut client) = online(&sb, PHONE).await;
    let mut costs = Vec::new();
    for n in 0..1000 {
        costs.push(create(&sb, &mut client, n).await);
    }
    let (tenth, thousandth) = (costs[9], costs[999]);
    assert_eq!(tenth.records, 1, "the 10th group wrote {tenth:?}");
    // The same record; only its request id (the create IQ's id) grows by a few digits.
    assert_eq!(
        thousandth.records, 1,
        "the 1000th group wrote {thousandth:?}"
    );
    assert!(
        thousandth.bytes <= tenth.bytes + 4,
        "the 1000th group wrote {thousandth:?}, the 10th {tenth:?}"
    );
    assert!(
        tenth.bytes < 1024,
        "one group record, not a file: {tenth:?}"
    );

    // Everything else a change touches is one record too: a second pairing writes the account
    // (its device numbering) and the new device, not the thousand groups.
    let before = sb.store_writes();
    let (_, second) = pair(&sb, PHONE).await;
    let paired = sb.store_writes();
    assert_eq!(second.device, 2);
    assert_eq!(
        paired.records - before.records,
        2,
        "{before:?} -> {paired:?}"
    );
    assert!(
        paired.bytes - before.bytes < 2048,
        "{before:?} -> {paired:?}"
    );
}

#[tokio::test]
async fn a_restart_keeps_root_accounts_devices_phones_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let root = sb.root_public_key();
    let invite_only = PhoneBehaviour {
        on_add: AddRule::InviteOnly,
        ..PhoneBehaviour::default()
    };
    sb.set_phone_behaviour("5511000000002", invite_only)
        .unwrap();
    let (c, paired, mut client) = online(&sb, PHONE).await;
    for n in 0..3 {
        create(&sb, &mut client, n).await;
    }
    let groups = sb.groups();
    drop(client);
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    assert_eq!(sb.root_public_key(), root);
    assert_eq!(sb.groups(), groups, "the same groups in the same order");
    let devices = sb.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].jid, paired.jid);
    let (mut client, success) = login(&sb, &c, &paired.jid).await;
    assert_eq!(success.tag, "success", "{success}");
    // The phone behaviour is back: participant 2 may only be invited.
    create(&sb, &mut client, 3).await;
    let fourth = &sb.groups()[3];
    let failed: Vec<(&str, u16)> = fourth
        .failed
        .iter()
        .map(|f| (f.jid.as_str(), f.code))
        .collect();
    assert_eq!(failed, [("5511000000002@s.whatsapp.net", 403)]);
    // The account keeps numbering its devices.
    let (_, next) = pair(&sb, PHONE).await;
    assert_eq!(next.device, 2);
    drop(client);
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    assert_eq!(sb.groups().len(), 4);
    assert_eq!(sb.groups()[..3], groups[..]);
    assert_eq!(sb.devices().len(), 2);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_sandbox_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Sandbox::start(config(dir.path())).await.unwrap();
    let second = Sandbox::start(config(dir.path())).await;
    assert!(
        matches!(second, Err(Error::Persist(PersistError::Locked { .. }))),
        "{second:?}"
    );
    // Once the first is shut down, the directory is free.
    let root = first.root_public_key();
    first.shutdown().await.unwrap();
    let again = Sandbox::start(config(dir.path())).await.unwrap();
    assert_eq!(again.root_public_key(), root);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A data directory as earlier builds left it: `sandbox.json`, written whole, with one account,
/// `companion` linked to it as device 1, a phone behaviour and a group.
fn earlier_build_dir(dir: &Path, companion: &Companion) -> String {
    let jid = format!("{PHONE}:1@s.whatsapp.net");
    let file = serde_json::json!({
        "version": 1,
        "root_public_key": "informational",
        "root_secret": "11".repeat(32),
        "accounts": {PHONE: {
            "identity_secret": "22".repeat(32), "lid": "100000000000001", "raw_id": 5,
            "next_device": 2, "next_key_index": 2
        }},
        "devices": [{
            "phone": PHONE, "device": 1, "lid": "100000000000001",
            "noise_key": hex(companion.noise.public().as_bytes()),
            "identity_key": hex(companion.identity.public().as_bytes()),
            "registration_id": companion.registration_id, "key_index": 1, "os": "wuts-test",
            "paired_at": 1_700_000_000, "removed": false, "prekeys": 0, "signed_identity": ""
        }],
        "phones": {"5511000000002": {"on_add": "invite_only"}},
        "groups": [{
            "jid": "120363000000000001@g.us", "subject": "Before", "creator":
            format!("{PHONE}@s.whatsapp.net"), "created_by": jid, "creation": 1_700_000_000,
            "description": null, "announcement": false, "locked": false,
            "join_approval": false, "member_add_mode": "all_member_add", "ephemeral": 0,
            "community": false, "linked_parent": null,
            "participants": [{"jid": format!("{PHONE}@s.whatsapp.net"), "role": "superadmin"}],
            "failed": []
        }]
    });
    std::fs::write(dir.join("sandbox.json"), file.to_string()).unwrap();
    jid
}

#[tokio::test]
async fn a_directory_of_an_earlier_build_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let companion = Companion::new();
    let jid = earlier_build_dir(dir.path(), &companion);
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    assert!(!dir.path().join("sandbox.json").exists());
    assert!(dir.path().join("sandbox.json.migrated").exists());
    assert_eq!(sb.groups()[0].subject, "Before");
    let (mut client, success) = login(&sb, &companion, &jid).await;
    assert_eq!(success.tag, "success", "{success}");
    create(&sb, &mut client, 1).await;
    assert_eq!(
        sb.groups()[1].failed[0].code,
        403,
        "phone behaviours came along"
    );
    drop(client);
    sb.shutdown().await.unwrap();

    // The second start reads the store alone, with the group made after the migration.
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let subjects: Vec<String> = sb.groups().into_iter().map(|g| g.subject).collect();
    assert_eq!(subjects, ["Before", "group 000001"]);
    let (_, next) = pair(&sb, PHONE).await;
    assert_eq!(next.device, 2, "the account's numbering came along");
}

#[tokio::test]
async fn a_group_change_rewrites_that_group_only_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let (_, _, mut client) = online(&sb, PHONE).await;
    for n in 0..2 {
        create(&sb, &mut client, n).await;
    }
    let first: Jid = sb.groups()[0].jid.parse().unwrap();
    let before = sb.store_writes();
    let rename = Node::new("iq")
        .with_attr("id", client.new_id())
        .with_attr("xmlns", "w:g2")
        .with_attr("type", "set")
        .with_attr("to", first)
        .with_children(vec![Node::new("subject").with_bytes(b"renamed".to_vec())]);
    let reply = client.request(rename).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    assert_eq!(sb.store_writes().records - before.records, 1);
    let groups = sb.groups();
    drop(client);
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    assert_eq!(sb.groups(), groups);
    assert_eq!(sb.groups()[0].subject, "renamed");
    assert_eq!(sb.groups()[1].subject, "group 000001");
    sb.shutdown().await.unwrap();
}

/// Goes active and returns the `<ib>` that follows: the preview of the offline queue, or its
/// end when nothing is queued.
async fn go_active(client: &mut RawClient) -> Node {
    let active = client.iq("passive", "set", vec![Node::new("active")]);
    let reply = client.request(active).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    client.recv().await
}

#[tokio::test]
async fn what_an_absent_device_missed_survives_a_restart_and_is_handed_over_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let (companion, paired, mut client) = online(&sb, PHONE).await;
    create(&sb, &mut client, 0).await;
    let group = sb.groups()[0].jid.clone();
    // Away once the server saw the connection end.
    let mut events = sb.subscribe();
    drop(client);
    let closed = async {
        loop {
            if let Ok(wuts::sim::SimEvent::Closed { jid: Some(j) }) = events.recv().await {
                if j == paired.jid {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), closed)
        .await
        .expect("the server sees the device leave");
    // A member renames the group while the device is away.
    let body = serde_json::json!({
        "group": group, "actor_phone": "5511000000001", "action": "subject", "value": "while away",
    });
    let r = reqwest::Client::new()
        .post(format!("{}/group-action", sb.control_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let (mut client, success) = login(&sb, &companion, &paired.jid).await;
    assert_eq!(success.tag, "success", "{success}");
    let preview = go_active(&mut client).await;
    let count = preview
        .child("offline_preview")
        .and_then(|p| attr(p, "count"));
    assert_eq!(count.as_deref(), Some("1"), "{preview}");
    let batch =
        Node::new("ib").with_children(vec![Node::new("offline_batch").with_attr("count", "10")]);
    client.send(&batch).await;
    let kept = client.recv().await;
    assert_eq!(kept.tag, "notification", "{kept}");
    assert_eq!(attr(&kept, "offline").as_deref(), Some("1"), "{kept}");
    assert!(kept.to_string().contains("while away"), "{kept}");
    let end = client.recv().await;
    let count = end.child("offline").and_then(|o| attr(o, "count"));
    assert_eq!(count.as_deref(), Some("1"), "{end}");
    drop(client);
    sb.shutdown().await.unwrap();

    // Handed over: a second restart has nothing left for the device.
    let sb = Sandbox::start(config(dir.path())).await.unwrap();
    let (mut client, _) = login(&sb, &companion, &paired.jid).await;
    let end = go_active(&mut client).await;
    assert_eq!(
        end.to_string(),
        r#"<ib from="@s.whatsapp.net"><offline count="0"/></ib>"#
    );
    drop(client);
    sb.shutdown().await.unwrap();
}
