//! The device engine end to end against the sandbox on loopback: real websockets, real Noise,
//! real sled on a temp dir. Waits are bounded by timeouts on events, never fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use wuts::binary::{Jid, Node};
use wuts::client::api::{DeviceEvent, DeviceState, Error};
use wuts::client::{Client, ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::engine::lifecycle::Settings;
use wuts::ops::groups::{CreateGroup, ParticipantOutcome};
use wuts::ops::{Iq, IqKind};
use wuts::sim::prekeys::KeyFault;
use wuts::sim::{
    AddRule, Fault, PhoneBehaviour, Sandbox, SandboxConfig, SandboxHandle, SimEvent, StreamError,
};
use wuts_store::{SledStore, Store};

/// How long one event may take. Generous: the hundred-device test's first QR codes took over
/// 20 s in a full-suite run on a loaded 2-core machine (the test alone: 14-20 s in all).
const WAIT: Duration = Duration::from_secs(60);

async fn sandbox(seed: u64) -> SandboxHandle {
    Sandbox::start(SandboxConfig {
        seed: Some(seed),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn config(sim: &SandboxHandle) -> ClientConfig {
    ClientConfig {
        ws_url: sim.ws_url(),
        engine: Arc::new(EngineConfig {
            trusted_root: sim.root_public_key(),
            iq_timeout: Duration::from_secs(5),
            ..EngineConfig::default()
        }),
        lifecycle: Settings {
            backoff: (Duration::from_millis(50), Duration::from_millis(500)),
            ..Settings::default()
        },
        ..ClientConfig::default()
    }
}

/// Waits for the first event that `pick` maps to something.
async fn wait_for<T>(
    rx: &mut broadcast::Receiver<DeviceEvent>,
    mut pick: impl FnMut(&DeviceEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = pick(&ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("event in time")
}

async fn connected(rx: &mut broadcast::Receiver<DeviceEvent>) {
    wait_for(rx, |e| matches!(e, DeviceEvent::Connected).then_some(())).await
}

/// Creates a device and pairs it to `phone` through the sandbox's simulated phone.
async fn paired_device(reg: &Registry, sim: &SandboxHandle, phone: &str) -> Client {
    let client = reg.create_device().await.expect("device");
    let mut rx = client.subscribe();
    assert_eq!(client.status().state, DeviceState::Unpaired);
    client.pair().await.expect("pair starts");
    let qr = wait_for(&mut rx, |e| match e {
        DeviceEvent::Qr(q) => Some(q.code.clone()),
        _ => None,
    })
    .await;
    let paired = sim.scan(&qr, phone).await.expect("phone scans");
    let jid = wait_for(&mut rx, |e| match e {
        DeviceEvent::Paired { jid, .. } => Some(jid.clone()),
        _ => None,
    })
    .await;
    assert_eq!(jid.to_string(), paired.jid);
    connected(&mut rx).await;
    assert_eq!(client.status().state, DeviceState::Connected);
    client
}

/// A request with only a subject.
fn named(subject: impl Into<String>) -> CreateGroup {
    CreateGroup {
        subject: subject.into(),
        ..CreateGroup::default()
    }
}

fn user(phone: &str) -> Jid {
    Jid::new(phone, "s.whatsapp.net")
}

#[tokio::test]
async fn pairs_creates_groups_and_survives_a_restart_without_pairing_again() {
    let sim = sandbox(1).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store.clone(), config(&sim));
    let client = paired_device(&reg, &sim, "5511999990000").await;
    let stored = store
        .load_device(client.id())
        .unwrap()
        .paired
        .expect("pairing on disk");
    assert!(stored.jid.to_string().starts_with("5511999990000:"));

    let info = client
        .create_group(CreateGroup {
            subject: "WUTS Launch".into(),
            participants: vec![user("5511888888888")],
            description: Some("hello".into()),
            announcement: true,
            locked: true,
            join_approval: true,
            ..CreateGroup::default()
        })
        .await
        .expect("group created");
    assert!(info.jid.user.starts_with("120363") && info.jid.is_group());
    assert_eq!(info.subject, "WUTS Launch");
    assert!(info.announcement && info.locked && info.join_approval);
    assert_eq!(info.participants.len(), 2);
    assert!(info.participants[0].is_super_admin);
    assert_eq!(info.participants[1].outcome, ParticipantOutcome::Added);
    let groups = sim.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].jid, info.jid.to_string());

    // Restart: shut everything down, reopen the same data directory, restore.
    let id = client.id();
    reg.shutdown_all().await;
    drop(reg);
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store, config(&sim));
    assert_eq!(reg.restore().unwrap(), 1);
    let client = reg.client(id).unwrap();
    let mut rx = client.subscribe();
    if client.status().state != DeviceState::Connected {
        connected(&mut rx).await;
    }
    let again = client
        .create_group(named("After restart"))
        .await
        .expect("second group without pairing");
    assert_ne!(again.jid, info.jid);
    reg.shutdown_all().await;
}

#[tokio::test]
async fn participants_that_cannot_be_added_come_back_with_their_outcome() {
    let sim = sandbox(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store, config(&sim));
    let client = paired_device(&reg, &sim, "5511999990001").await;
    let rule = |on_add| PhoneBehaviour {
        on_add,
        ..PhoneBehaviour::default()
    };
    sim.set_phone_behaviour("5511777777777", rule(AddRule::InviteOnly))
        .unwrap();
    sim.set_phone_behaviour("5511666666666", rule(AddRule::NotOnWhatsApp))
        .unwrap();
    let info = client
        .create_group(CreateGroup {
            subject: "Mixed".into(),
            participants: vec![
                user("5511777777777"),
                user("5511666666666"),
                user("5511555555555"),
            ],
            ..CreateGroup::default()
        })
        .await
        .expect("created");
    let outcome = |phone: &str| {
        info.participants
            .iter()
            .find(|p| p.jid.user == phone)
            .map(|p| p.outcome.clone())
            .expect(phone)
    };
    assert!(matches!(
        outcome("5511777777777"),
        ParticipantOutcome::Failed {
            code: 403,
            invite: Some(_)
        }
    ));
    assert!(matches!(
        outcome("5511666666666"),
        ParticipantOutcome::Failed { code: 404, .. }
    ));
    assert_eq!(outcome("5511555555555"), ParticipantOutcome::Added);

    // WhatsApp's own refusal travels back typed: a create without a subject, sent raw.
    let err = client
        .iq(Iq {
            xmlns: "w:g2",
            kind: IqKind::Set,
            to: Jid::server_only("g.us"),
            children: vec![Node::new("create")],
            timeout: None,
            target: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 400, .. }), "{err:?}");
    // What our validation knows is refused before anything is sent.
    let before = sim.groups().len();
    let err = client
        .create_group(named("x".repeat(101)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(sim.groups().len(), before);
    reg.shutdown_all().await;
}

#[tokio::test]
async fn stream_errors_restart_back_off_log_out_or_stop() {
    let sim = sandbox(3).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store.clone(), config(&sim));
    let client = paired_device(&reg, &sim, "5511999990002").await;
    let jid = client.status().jid.unwrap().to_string();
    let mut rx = client.subscribe();

    for error in [
        StreamError::RestartRequired,
        StreamError::ServiceUnavailable,
    ] {
        sim.inject(Fault::StreamError {
            device: jid.clone(),
            error,
        })
        .await
        .unwrap();
        connected(&mut rx).await;
    }
    sim.inject(Fault::Drop {
        device: jid.clone(),
    })
    .await
    .unwrap();
    wait_for(&mut rx, |e| {
        matches!(e, DeviceEvent::Disconnected { .. }).then_some(())
    })
    .await;
    connected(&mut rx).await;

    // Withheld replies: the caller gets a timeout, the connection survives.
    sim.inject(Fault::WithholdIq {
        device: jid.clone(),
        xmlns: Some("w:g2".into()),
        count: None,
    })
    .await
    .unwrap();
    let err = client
        .create_group(named("never answered"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    let before = store.load_device(client.id()).unwrap().keys;
    sim.inject(Fault::StreamError {
        device: jid.clone(),
        error: StreamError::DeviceRemoved,
    })
    .await
    .unwrap();
    wait_for(&mut rx, |e| {
        matches!(e, DeviceEvent::LoggedOut { .. }).then_some(())
    })
    .await;
    assert_eq!(client.status().state, DeviceState::LoggedOut);
    let record = store.load_device(client.id()).unwrap();
    assert!(record.paired.is_none(), "pairing wiped");
    assert_ne!(record.keys, before, "fresh keys for the next pairing");
    let err = client.create_group(named("x")).await.unwrap_err();
    assert!(matches!(err, Error::NotPaired), "{err:?}");
    reg.shutdown_all().await;
}

#[tokio::test]
async fn a_replaced_session_is_not_fought_over() {
    let sim = sandbox(4).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store, config(&sim));
    let client = paired_device(&reg, &sim, "5511999990003").await;
    let jid = client.status().jid.unwrap().to_string();
    let mut rx = client.subscribe();
    sim.inject(Fault::StreamError {
        device: jid,
        error: StreamError::Replaced,
    })
    .await
    .unwrap();
    wait_for(&mut rx, |e| {
        matches!(e, DeviceEvent::Disconnected { .. }).then_some(())
    })
    .await;
    assert_eq!(client.status().state, DeviceState::Disconnected);
    let err = client.create_group(named("x")).await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err:?}");
    reg.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_devices_pair_and_create_groups_concurrently() {
    let sim = Arc::new(sandbox(5).await);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    // A debug build generates WA Web's 812 first pre-keys slowly; 100 devices at once would
    // spend the test's time there rather than on what it checks.
    let mut cfg = config(&sim);
    cfg.engine = Arc::new(EngineConfig {
        pre_key_batch: (50, 50),
        iq_timeout: Duration::from_secs(30),
        ..(*cfg.engine).clone()
    });
    let reg = Registry::new(store, cfg);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (reg, sim) = (reg.clone(), sim.clone());
            tokio::spawn(async move {
                let phone = format!("55119{i:08}");
                let client = paired_device(&reg, &sim, &phone).await;
                client
                    .create_group(CreateGroup {
                        subject: format!("Group {i}"),
                        participants: vec![user("5511888888888")],
                        ..CreateGroup::default()
                    })
                    .await
                    .expect("group")
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sim.groups().len(), 100);
    assert_eq!(reg.ids().len(), 100);
    reg.shutdown_all().await;
}

#[tokio::test]
async fn an_expired_qr_times_out_and_pairing_can_start_again() {
    let sim = sandbox(6).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let mut cfg = config(&sim);
    cfg.engine = Arc::new(EngineConfig {
        qr_ttl: (Duration::from_millis(300), Duration::from_millis(100)),
        ..(*cfg.engine).clone()
    });
    let reg = Registry::new(store, cfg);
    let client = reg.create_device().await.unwrap();
    let mut rx = client.subscribe();
    client.pair().await.unwrap();
    let mut codes = Vec::new();
    wait_for(&mut rx, |e| match e {
        DeviceEvent::Qr(q) => {
            codes.push(q.code.clone());
            None
        }
        DeviceEvent::PairingTimedOut => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(codes.len(), 6, "one code per ref, then the timeout");
    // The stale code is refused by the phone; a new pairing offers fresh codes.
    assert!(sim.scan(&codes[0], "5511999990009").await.is_err());
    let client = reg.client(client.id()).unwrap();
    client.pair().await.unwrap();
    let qr = wait_for(&mut rx, |e| match e {
        DeviceEvent::Qr(q) => Some(q.code.clone()),
        _ => None,
    })
    .await;
    assert!(!codes.contains(&qr));
    sim.scan(&qr, "5511999990009").await.unwrap();
    connected(&mut rx).await;
    reg.shutdown_all().await;
}

/// Waits for the sandbox to accept a key upload from `jid`; returns how many one-time keys it
/// carried.
async fn keys_uploaded(events: &mut broadcast::Receiver<SimEvent>, jid: &str) -> u32 {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(SimEvent::KeysUploaded { jid: j, prekeys }) if j == jid => return prekeys,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("sandbox events ended: {e}"),
            }
        }
    })
    .await
    .expect("an upload in time")
}

/// The server's copy of the key bundle is checked after each login: corrupted, it is uploaded
/// again; dropped (the digest answers 404), uploaded whole; consumed below the low mark, the
/// server's notification brings more.
#[tokio::test]
async fn the_server_copy_of_the_keys_is_checked_and_mended() {
    let sim = sandbox(6).await;
    let mut sim_events = sim.subscribe();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store, config(&sim));
    let client = paired_device(&reg, &sim, "5511999990006").await;
    let jid = client.status().jid.unwrap().to_string();
    assert_eq!(keys_uploaded(&mut sim_events, &jid).await, 812);
    let intact = sim.key_bundle(&jid).unwrap();
    assert!(intact.signature_valid);
    assert_eq!(intact.prekeys, 812);

    let reconnect = async || {
        let mut rx = client.subscribe();
        client.disconnect().await.unwrap();
        client.connect().await.unwrap();
        connected(&mut rx).await;
    };
    let corrupted = sim.inject_key_fault(&jid, KeyFault::CorruptSigned).unwrap();
    assert!(!corrupted.signature_valid);
    assert_ne!(corrupted.hash, intact.hash);
    reconnect().await;
    keys_uploaded(&mut sim_events, &jid).await;
    let mended = sim.key_bundle(&jid).unwrap();
    assert!(mended.signature_valid);
    assert_eq!(mended.hash, intact.hash, "the same bundle as before");

    let dropped = sim.inject_key_fault(&jid, KeyFault::Drop).unwrap();
    assert_eq!((dropped.prekeys, dropped.hash), (0, None));
    reconnect().await;
    assert_eq!(keys_uploaded(&mut sim_events, &jid).await, 812);
    assert!(sim.key_bundle(&jid).unwrap().signature_valid);

    let low = sim
        .inject_key_fault(&jid, KeyFault::Consume { count: 810 })
        .unwrap();
    assert_eq!(low.prekeys, 2);
    assert_eq!(keys_uploaded(&mut sim_events, &jid).await, 50);
    assert_eq!(sim.key_bundle(&jid).unwrap().prekeys, 52);
    reg.shutdown_all().await;
}

/// What a device missed while away is announced after it goes active, delivered only in the
/// batches it asks for (`<ib><offline_batch>`), then closed with `<ib><offline count>`.
#[tokio::test]
async fn notifications_kept_while_away_are_handed_over_after_the_preview() {
    let sim = sandbox(7).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let reg = Registry::new(store, config(&sim));
    let client = paired_device(&reg, &sim, "5511999990007").await;
    let jid = client.status().jid.unwrap().to_string();
    let carla = "5511777770007";
    let group = client
        .create_group(CreateGroup {
            participants: vec![user(carla)],
            ..named("Away")
        })
        .await
        .unwrap();
    let mut rx = client.subscribe();
    let mut sim_events = sim.subscribe();
    client.disconnect().await.unwrap();
    // Away once the server saw the connection end.
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(SimEvent::Closed { jid: Some(j) }) = sim_events.recv().await {
                if j == jid {
                    break;
                }
            }
        }
    })
    .await
    .expect("the server sees the device leave");
    let control = reqwest::Client::new();
    for subject in ["Away 1", "Away 2"] {
        let body = serde_json::json!({
            "group": group.jid.to_string(), "actor_phone": carla,
            "action": "subject", "value": subject,
        });
        let r = control
            .post(format!("{}/group-action", sim.control_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(
        !sim.notifications(&jid)
            .iter()
            .any(|n| n.kind.as_deref() == Some("w:gp2")),
        "nothing reached the absent device"
    );
    client.connect().await.unwrap();
    connected(&mut rx).await;
    let mut subjects = Vec::new();
    while subjects.len() < 2 {
        let subject = wait_for(&mut rx, |e| match e {
            DeviceEvent::Group(g) => Some(format!("{g:?}")),
            _ => None,
        })
        .await;
        subjects.push(subject);
    }
    assert!(subjects[0].contains("Away 1"), "{subjects:?}");
    assert!(subjects[1].contains("Away 2"), "{subjects:?}");
    let sent = sim.notifications(&jid);
    let offline: Vec<_> = sent
        .iter()
        .filter(|n| n.stanza.contains("offline=\"1\""))
        .collect();
    assert_eq!(offline.len(), 2, "{sent:?}");
    reg.shutdown_all().await;
}
