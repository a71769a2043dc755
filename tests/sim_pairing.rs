//! The sandbox over real loopback websockets: handshake, QR pairing with the simulated phone,
//! login and the post-login session. The client is the raw one in `sim_support`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use sim_support::*;
use wuts::binary::Node;
use wuts::noise::{self, CertError, KeyPair, SecretKey, WHATSAPP_ROOT_KEY};
use wuts::sim::{PairingError, Sandbox, SandboxConfig, SandboxHandle, SimEvent, Timing};

const PHONE: &str = "5511999999999";

#[tokio::test]
async fn handshake_trusts_the_sandbox_root_and_not_whatsapps() {
    let sb = sandbox().await;
    let c = Companion::new();
    let err = RawClient::connect(
        &sb.ws_url(),
        WHATSAPP_ROOT_KEY,
        &c.noise,
        &c.registration_payload(),
    )
    .await
    .err()
    .expect("WhatsApp's root must not verify the sandbox chain");
    assert!(matches!(
        err,
        HandshakeError::Noise(noise::Error::CertChain(CertError::IntermediateSignature))
    ));
    let (_client, refs) = register(&sb, &c).await;
    assert_eq!(refs.len(), 6);
    assert!(refs.iter().all(|r| r.starts_with("2@") && !r.contains(',')));
}

#[tokio::test]
async fn qr_pairing_login_and_session() {
    let sb = sandbox().await;
    let mut events = sb.subscribe();
    let (c, paired) = pair(&sb, PHONE).await;
    assert_eq!(paired.phone, PHONE);
    assert_eq!(paired.jid, format!("{PHONE}:1@s.whatsapp.net"));
    assert!(paired.lid.ends_with(":1@lid"));
    assert_eq!(paired.key_index, 1);

    let (mut client, success) = login(&sb, &c, &paired.jid).await;
    assert_eq!(success.tag, "success");
    assert_eq!(attr(&success, "lid"), Some(paired.lid.clone()));
    let t: u64 = attr(&success, "t").unwrap().parse().unwrap();
    assert!(t.abs_diff(now()) < 60);

    // Keepalive, with and without Baileys' <ping/> child.
    let ping = client.iq("w:p", "get", vec![]);
    let pong = client.request(ping).await;
    assert_eq!(attr(&pong, "type").as_deref(), Some("result"));
    assert!(attr(&pong, "t").is_some());
    let ping = client.iq("w:p", "get", vec![Node::new("ping")]);
    assert_eq!(
        attr(&client.request(ping).await, "type").as_deref(),
        Some("result")
    );

    // Pre-keys: count 0, a well-formed upload, count 812; a malformed upload is refused.
    let count = client.iq("encrypt", "get", vec![Node::new("count")]);
    let reply = client.request(count).await;
    assert_eq!(
        reply
            .child("count")
            .and_then(|n| attr(n, "value"))
            .as_deref(),
        Some("0")
    );
    let upload = c.prekey_upload(&mut client, 812);
    assert_eq!(
        attr(&client.request(upload).await, "type").as_deref(),
        Some("result")
    );
    let count = client.iq("encrypt", "get", vec![Node::new("count")]);
    let reply = client.request(count).await;
    assert_eq!(
        reply
            .child("count")
            .and_then(|n| attr(n, "value"))
            .as_deref(),
        Some("812")
    );
    let mut bad = c.prekey_upload(&mut client, 3);
    if let wuts::binary::Content::Nodes(kids) = &mut bad.content {
        kids.retain(|k| k.tag != "skey");
    }
    let reply = client.request(bad).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("error"));
    assert_eq!(
        attr(reply.child("error").unwrap(), "code").as_deref(),
        Some("400")
    );
    let too_many = c.prekey_upload(&mut client, 813);
    let reply = client.request(too_many).await;
    assert_eq!(
        attr(reply.child("error").unwrap(), "code").as_deref(),
        Some("406")
    );

    // Going active: a result, then the end of the (empty) offline queue.
    let active = client.iq("passive", "set", vec![Node::new("active")]);
    let reply = client.request(active).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"));
    let ib = client.recv().await;
    assert_eq!(
        ib.to_string(),
        r#"<ib from="@s.whatsapp.net"><offline count="0"/></ib>"#
    );

    // Unknown IQs are answered 501 rather than ignored.
    let other = client.iq("usync", "get", vec![Node::new("usync")]);
    let reply = client.request(other).await;
    assert_eq!(
        attr(reply.child("error").unwrap(), "code").as_deref(),
        Some("501")
    );

    let devices = sb.devices();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].connected);
    assert_eq!(devices[0].prekeys, 812);
    assert_eq!(devices[0].noise_key.len(), 64);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(seen.contains(&SimEvent::Paired {
        jid: paired.jid.clone()
    }));
    assert!(seen.contains(&SimEvent::LoggedIn {
        jid: paired.jid.clone()
    }));
}

#[tokio::test]
async fn a_phone_links_several_devices_with_increasing_numbers() {
    let sb = sandbox().await;
    let (_, first) = pair(&sb, PHONE).await;
    let (_, second) = pair(&sb, PHONE).await;
    assert_eq!((first.device, second.device), (1, 2));
    assert_eq!((first.key_index, second.key_index), (1, 2));
    let (_, other) = pair(&sb, "4915112345678").await;
    assert_eq!(other.device, 1);
    assert_ne!(other.lid.split(':').next(), first.lid.split(':').next());
}

#[tokio::test]
async fn scan_checks_the_qr_against_the_connection() {
    let sb = sandbox().await;
    let c = Companion::new();
    let (_client, refs) = register(&sb, &c).await;
    let scan = |qr: String| {
        let sb = &sb;
        async move { sb.scan(&qr, PHONE).await.err().map(|e| e.to_string()) }
    };
    // Another device's noise key, another identity, an unknown ref, garbage.
    let mut other = c.clone();
    other.noise = KeyPair::generate(&mut rand::rngs::OsRng);
    let expect = |e: PairingError| Some(wuts::sim::Error::Pairing(e).to_string());
    assert_eq!(
        scan(other.qr(&refs[0])).await,
        expect(PairingError::NoiseKeyMismatch)
    );
    let mut other = c.clone();
    other.identity = KeyPair::generate(&mut rand::rngs::OsRng);
    assert_eq!(
        scan(other.qr(&refs[0])).await,
        expect(PairingError::IdentityKeyMismatch)
    );
    assert_eq!(scan(c.qr("2@nope")).await, expect(PairingError::UnknownRef));
    assert!(scan("hello".into()).await.unwrap().contains("malformed"));
    assert!(sb.scan(&c.qr(&refs[0]), "0123").await.is_err());
}

#[tokio::test]
async fn a_bad_device_signature_fails_the_pairing() {
    let sb = sandbox().await;
    let c = Companion::new();
    let (mut client, refs) = register(&sb, &c).await;
    let qr = c.qr(&refs[1]);
    let (result, ended) = tokio::join!(sb.scan(&qr, PHONE), async {
        let success = client.recv().await;
        // Sign with a key that is not the registered identity.
        let mut liar = c.clone();
        liar.identity = KeyPair::generate(&mut rand::rngs::OsRng);
        let reply = liar.answer_pair_success_unchecked(&success);
        client.send(&reply).await;
        client.until_end().await
    });
    assert!(matches!(
        result,
        Err(wuts::sim::Error::Pairing(PairingError::DeviceSignature))
    ));
    assert!(
        ended.0.is_empty(),
        "no 515 after a failed pairing: {:?}",
        ended.0
    );
    assert!(sb.devices().is_empty());
    // The refs of that connection are spent.
    assert!(sb.scan(&c.qr(&refs[2]), PHONE).await.is_err());
}

#[tokio::test]
async fn refs_expire_on_their_schedule() {
    // The first ref is already over, the second lasts an hour: no clock needs to move.
    let timing = Timing {
        first_ref: std::time::Duration::ZERO,
        next_ref: std::time::Duration::from_secs(3600),
        ..Timing::default()
    };
    let sb = Sandbox::start(SandboxConfig {
        timing,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = Companion::new();
    let (mut client, refs) = register(&sb, &c).await;
    assert!(matches!(
        sb.scan(&c.qr(&refs[0]), PHONE).await,
        Err(wuts::sim::Error::Pairing(PairingError::RefExpired))
    ));
    let qr = c.qr(&refs[1]);
    let (paired, ()) = tokio::join!(sb.scan(&qr, PHONE), async {
        let success = client.recv().await;
        client.send(&c.answer_pair_success(&success)).await;
        client.until_end().await;
    });
    assert!(paired.is_ok());
}

#[tokio::test]
async fn logins_need_a_known_device_with_its_own_noise_key() {
    let sb = sandbox().await;
    let (c, paired) = pair(&sb, PHONE).await;
    // Unknown device number.
    let (mut client, reply) = login(&sb, &c, &format!("{PHONE}:9@s.whatsapp.net")).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
    assert_eq!(client.until_end().await.1, Ended::Clean);
    // The right device with another noise key.
    let mut thief = c.clone();
    thief.noise = KeyPair::generate(&mut rand::rngs::OsRng);
    let (_, reply) = login(&sb, &thief, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
    // Removed by the phone.
    sb.remove_device(&paired.jid).await.unwrap();
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
}

#[tokio::test]
async fn a_second_login_replaces_the_first() {
    let sb = sandbox().await;
    let (c, paired, mut first) = online(&sb, PHONE).await;
    let (_second, success) = login(&sb, &c, &paired.jid).await;
    assert_eq!(success.tag, "success");
    let (stanzas, _) = first.until_end().await;
    assert_eq!(
        stanzas.last().map(Node::to_string).as_deref(),
        Some(r#"<stream:error><conflict type="replaced"/></stream:error>"#)
    );
    assert!(sb.devices()[0].connected);
    // Both logins are on record with their addresses, and the kick names both connections.
    let get = |what: &str| reqwest::get(format!("{}/{what}", sb.control_url()));
    let logins: serde_json::Value = get("logins").await.unwrap().json().await.unwrap();
    let logins = logins.as_array().unwrap();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert!(logins.iter().all(|l| l["jid"] == paired.jid.as_str()));
    assert!(
        logins.iter().all(|l| l["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:"))),
        "{logins:?}"
    );
    let kicks: serde_json::Value = get("kicks").await.unwrap().json().await.unwrap();
    assert_eq!(kicks.as_array().map(Vec::len), Some(1), "{kicks}");
    assert_eq!(kicks[0]["old_conn"], logins[0]["conn"]);
    assert_eq!(kicks[0]["new_conn"], logins[1]["conn"]);
}

#[tokio::test]
async fn malformed_registration_is_refused() {
    let sb = sandbox().await;
    let c = Companion::new();
    let mut payload = c.registration_payload();
    if let Some(d) = payload.device_pairing_data.as_mut() {
        d.e_skey_sig = Some(vec![0; 64]);
    }
    let mut client = RawClient::connect(&sb.ws_url(), sb.root_public_key(), &c.noise, &payload)
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.to_string(),
        r#"<failure reason="400"/>"#
    );
    payload.user_agent = None;
    let mut client = RawClient::connect(&sb.ws_url(), sb.root_public_key(), &c.noise, &payload)
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.to_string(),
        r#"<failure reason="409"/>"#
    );
}

#[tokio::test]
async fn a_restarted_sandbox_keeps_its_root_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config.clone()).await.unwrap();
    let root = sb.root_public_key();
    let (c, paired) = pair(&sb, PHONE).await;
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config).await.unwrap();
    assert_eq!(sb.root_public_key(), root);
    let (_client, success) = login(&sb, &c, &paired.jid).await;
    assert_eq!(success.tag, "success");
    // The account keeps numbering its devices.
    let (_, next) = pair(&sb, PHONE).await;
    assert_eq!(next.device, 2);
}

#[tokio::test]
async fn a_seed_fixes_the_root_key() {
    let config = SandboxConfig {
        seed: Some(42),
        ..SandboxConfig::default()
    };
    let a = Sandbox::start(config.clone()).await.unwrap();
    let b = Sandbox::start(config).await.unwrap();
    assert_eq!(a.root_public_key(), b.root_public_key());
    let c = Sandbox::start(SandboxConfig {
        seed: Some(43),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    assert_ne!(a.root_public_key(), c.root_public_key());
}

/// With the same seed and the same client input, two sandboxes answer byte for byte alike: the
/// server hello (ephemeral key, static key, certificate chain and its signatures) and the
/// `pair-device` refs. Each connection still gets an ephemeral of its own.
#[tokio::test]
async fn a_seed_fixes_every_server_choice() {
    let seeded = |seed| {
        Sandbox::start(SandboxConfig {
            seed: Some(seed),
            ..SandboxConfig::default()
        })
    };
    let (a, b, other) = (
        seeded(42).await.unwrap(),
        seeded(42).await.unwrap(),
        seeded(43).await.unwrap(),
    );
    let c = Companion::new();
    let hello = async |sb: &SandboxHandle| {
        let ephemeral = SecretKey::from_bytes([0x5a; 32]);
        let (mut client, server_hello) = RawClient::connect_with(
            &sb.ws_url(),
            sb.root_public_key(),
            &c.noise,
            &c.registration_payload(),
            ephemeral,
        )
        .await
        .unwrap();
        let pair_device = client.recv().await;
        (server_hello, pair_device.to_string())
    };
    let (a1, b1, other1) = (hello(&a).await, hello(&b).await, hello(&other).await);
    assert_eq!(a1, b1);
    assert!(a1.1.contains("<pair-device>"), "{}", a1.1);
    assert_ne!(a1.0, other1.0);
    let (a2, b2) = (hello(&a).await, hello(&b).await);
    assert_eq!(a2, b2);
    assert_ne!(a1.0, a2.0, "a second connection reused the ephemeral key");
    assert_ne!(a1.1, a2.1, "a second connection got the same refs");
}

#[tokio::test]
async fn a_companion_can_log_itself_out() {
    let sb = sandbox().await;
    let (c, paired, mut client) = online(&sb, PHONE).await;
    let other = Node::new("remove-companion-device")
        .with_attr(
            "jid",
            format!("{PHONE}:7@s.whatsapp.net")
                .parse::<wuts::binary::Jid>()
                .unwrap(),
        )
        .with_attr("reason", "user_initiated");
    let iq = client.iq("md", "set", vec![other]);
    let reply = client.request(iq).await;
    assert_eq!(
        attr(reply.child("error").unwrap(), "code").as_deref(),
        Some("403")
    );
    let own = Node::new("remove-companion-device")
        .with_attr("jid", paired.jid.parse::<wuts::binary::Jid>().unwrap())
        .with_attr("reason", "user_initiated");
    let iq = client.iq("md", "set", vec![own]);
    assert_eq!(
        attr(&client.request(iq).await, "type").as_deref(),
        Some("result")
    );
    drop(client);
    assert!(sb.devices()[0].removed);
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
}
