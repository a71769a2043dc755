//! Pairing by phone-number code, the engine against an in-memory server whose phone is the
//! sandbox's own implementation of the code side (`wuts::sim::paircode`, written apart from the
//! engine's): hello after `pair-device`, a mistyped code then the right one, `pair-success`
//! checked with the derived ADV secret, expiry, refresh. Time is driven, never slept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use base64::Engine as _;
use engine_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use wuts::binary::{Jid, Node};
use wuts::engine::{CloseReason, Event, PairError};
use wuts::noise::PublicKey;
use wuts::ops::paircode::phone;
use wuts::sim::paircode::{self as phone_side, CodeError};
use wuts_store::Credentials as _;

const S: fn(u64) -> Duration = Duration::from_secs;
const PHONE: &str = "5511999990000";

fn bytes(node: &Node, tag: &str) -> Vec<u8> {
    node.child(tag)
        .and_then(Node::content_bytes)
        .unwrap_or_else(|| panic!("no {tag} in {node}"))
        .into_owned()
}

/// The server's reply to a `companion_hello`: the ref.
fn hello_reply(hello: &Node, reference: &str) -> Node {
    result_for(
        hello,
        vec![Node::new("link_code_companion_reg").with_children(vec![
            Node::new("link_code_pairing_ref").with_bytes(reference.as_bytes().to_vec()),
        ])],
    )
}

/// The notification the server relays once the phone typed a code.
fn primary_hello(reference: &str, wrapped: Vec<u8>, account: &PublicKey) -> Node {
    Node::new("notification")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", "n-1")
        .with_attr("type", "link_code_companion_reg")
        .with_children(vec![
            Node::new("link_code_companion_reg")
                .with_attr("stage", "primary_hello")
                .with_children(vec![
                    Node::new("link_code_pairing_ref").with_bytes(reference.as_bytes().to_vec()),
                    Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .with_bytes(wrapped),
                    Node::new("primary_identity_pub").with_bytes(account.as_bytes().to_vec()),
                ]),
        ])
}

/// A registration connection that got `pair-device` and sent its hello for a code asked for
/// before; returns the hello's `link_code_companion_reg`, answered with `REF-1`, and the code.
fn code_shown(world: &mut World) -> (Conn, Server, Node, String) {
    let (mut conn, mut server) = world.connect(S(0));
    conn.request_pair_code(S(0), phone(PHONE).unwrap());
    assert!(
        server.recv(&mut conn).is_empty(),
        "nothing before pair-device"
    );
    server.send(&mut conn, S(1), &pair_device(6));
    let sent = server.recv(&mut conn);
    assert_eq!(
        attr(&sent[0], "id"),
        "pd-1",
        "pair-device acknowledged first"
    );
    let hello = sent.last().unwrap().clone();
    let reg = hello.child("link_code_companion_reg").unwrap().clone();
    assert_eq!(attr(&hello, "xmlns"), "md");
    assert_eq!(attr(&reg, "stage"), "companion_hello");
    assert_eq!(attr(&reg, "jid"), format!("{PHONE}@s.whatsapp.net"));
    assert_eq!(
        bytes(&reg, "companion_server_auth_key_pub"),
        server.client_static.as_bytes()
    );
    assert_eq!(bytes(&reg, "link_code_pairing_nonce"), [0]);
    assert_eq!(
        bytes(&reg, "link_code_pairing_wrapped_companion_ephemeral_pub").len(),
        80
    );
    server.send(&mut conn, S(2), &hello_reply(&hello, "REF-1"));
    let code = match events(&mut conn).as_slice() {
        [Event::Qr { .. }, Event::PairCode { code, expires_at }] => {
            assert_eq!(*expires_at, UNIX + 2 + 180);
            code.clone()
        }
        other => panic!("expected a QR then the code, got {other:?}"),
    };
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    (conn, server, reg, code)
}

#[test]
fn a_mistyped_code_then_the_right_one_pairs_with_the_derived_adv_secret() {
    let mut world = World::new(11);
    let mut rng = StdRng::seed_from_u64(11);
    let (mut conn, mut server, reg, code) = code_shown(&mut world);
    let wrapped_companion = bytes(&reg, "link_code_pairing_wrapped_companion_ephemeral_pub");

    // The phone types a wrong code: the companion answers, the bundle does not open.
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let typed = phone_side::parse_code(wrong).unwrap();
    let (wrapped, hello) = phone_side::phone_hello(&typed, &wrapped_companion, &mut rng).unwrap();
    server.send(
        &mut conn,
        S(10),
        &primary_hello("REF-1", wrapped, world.account.public()),
    );
    let sent = server.recv(&mut conn);
    assert_eq!(sent[0].tag, "ack", "the notification is acked");
    let finish = sent[1].child("link_code_companion_reg").unwrap().clone();
    assert_eq!(attr(&finish, "stage"), "companion_finish");
    assert_eq!(bytes(&finish, "link_code_pairing_ref"), b"REF-1");
    let companion_identity = PublicKey::from_bytes(
        bytes(&finish, "companion_identity_public")
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        phone_side::open_finish(
            &hello,
            &world.account,
            &bytes(&finish, "link_code_pairing_wrapped_key_bundle"),
            &companion_identity,
        ),
        Err(CodeError::WrongCode)
    );
    server.send(&mut conn, S(10), &result_for(&sent[1], vec![]));

    // Then the right code, while it is valid.
    let typed = phone_side::parse_code(&code.to_lowercase()).unwrap();
    let (wrapped, hello) = phone_side::phone_hello(&typed, &wrapped_companion, &mut rng).unwrap();
    server.send(
        &mut conn,
        S(20),
        &primary_hello("REF-1", wrapped, world.account.public()),
    );
    let sent = server.recv(&mut conn);
    let finish = sent[1].child("link_code_companion_reg").unwrap().clone();
    let adv = phone_side::open_finish(
        &hello,
        &world.account,
        &bytes(&finish, "link_code_pairing_wrapped_key_bundle"),
        &companion_identity,
    )
    .unwrap();
    server.send(&mut conn, S(20), &result_for(&sent[1], vec![]));

    // The random ADV secret of the QR would not verify; the derived one does.
    let keys = world.store.load_device(world.device).unwrap().keys;
    assert_ne!(&adv, keys.adv_secret.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    let qr_like = format!(
        "ref,{},{},{},1",
        b64.encode(server.client_static.as_bytes()),
        b64.encode(companion_identity.as_bytes()),
        b64.encode(adv)
    );
    let ps = world.pair_success(&qr_like, |_| {});
    server.send(&mut conn, S(21), &ps);
    let evs = events(&mut conn);
    assert!(
        matches!(&evs[..], [Event::Paired { .. }]),
        "paired by code: {evs:?}"
    );
    let sign = server.recv(&mut conn).pop().unwrap();
    assert!(sign.child("pair-device-sign").is_some(), "{sign}");
}

#[test]
fn pair_success_keyed_with_the_qr_secret_is_refused_after_a_code_exchange() {
    let mut world = World::new(12);
    let mut rng = StdRng::seed_from_u64(12);
    let (mut conn, mut server, reg, code) = code_shown(&mut world);
    let typed = phone_side::parse_code(&code).unwrap();
    let wrapped_companion = bytes(&reg, "link_code_pairing_wrapped_companion_ephemeral_pub");
    let (wrapped, _) = phone_side::phone_hello(&typed, &wrapped_companion, &mut rng).unwrap();
    server.send(
        &mut conn,
        S(5),
        &primary_hello("REF-1", wrapped, world.account.public()),
    );
    server.recv(&mut conn);
    // A phone that HMACs with the QR's random secret did not take part in the exchange.
    let keys = world.store.load_device(world.device).unwrap().keys;
    let b64 = base64::engine::general_purpose::STANDARD;
    let qr_like = format!(
        "ref,{},{},{},1",
        b64.encode(keys.noise.public.as_bytes()),
        b64.encode(keys.identity.public.as_bytes()),
        b64.encode(keys.adv_secret.as_bytes())
    );
    let ps = world.pair_success(&qr_like, |_| {});
    server.send(&mut conn, S(6), &ps);
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::Closed(CloseReason::PairingFailed(
            PairError::HmacMismatch
        ))]
    ));
}

#[test]
fn a_valid_code_holds_the_pairing_connection_open_past_its_qr_codes() {
    let mut world = World::new(13);
    let (mut conn, ..) = code_shown(&mut world);
    // The QR refs run out at 1 + 60 + 5 × 20 = 161 s; the code (accepted at 2 s) holds the
    // connection open until 182 s.
    let mut now = S(1);
    while now < S(161) {
        now = conn.poll_timeout().unwrap();
        conn.handle_timeout(now);
        events(&mut conn);
    }
    assert!(!conn.is_closed());
    assert_eq!(conn.poll_timeout(), Some(S(182)));
    conn.handle_timeout(S(182));
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::Closed(CloseReason::PairingTimedOut)]
    ));
}

#[test]
fn a_hello_for_an_expired_code_gets_no_finish() {
    let mut world = World::new(14);
    let mut rng = StdRng::seed_from_u64(14);
    let (mut conn, mut server2, reg2, code2) = code_shown(&mut world);
    // The QR refs still rotate at 182 s; the code is gone.
    conn.handle_timeout(S(182));
    events(&mut conn);
    let typed = phone_side::parse_code(&code2).unwrap();
    let wrapped_companion = bytes(&reg2, "link_code_pairing_wrapped_companion_ephemeral_pub");
    let (wrapped, _) = phone_side::phone_hello(&typed, &wrapped_companion, &mut rng).unwrap();
    server2.send(
        &mut conn,
        S(183),
        &primary_hello("REF-1", wrapped, world.account.public()),
    );
    let sent = server2.recv(&mut conn);
    assert!(
        sent.iter().all(|n| n.tag == "ack"),
        "no finish for an expired code: {sent:?}"
    );
}

#[test]
fn asking_again_replaces_the_code_and_the_old_ref_is_ignored() {
    let mut world = World::new(15);
    let mut rng = StdRng::seed_from_u64(15);
    let (mut conn, mut server, reg, code) = code_shown(&mut world);
    conn.request_pair_code(S(30), phone(PHONE).unwrap());
    let hello = server.recv(&mut conn).pop().unwrap();
    server.send(&mut conn, S(31), &hello_reply(&hello, "REF-2"));
    let fresh = match events(&mut conn).as_slice() {
        [Event::PairCode { code, expires_at }] => {
            assert_eq!(*expires_at, UNIX + 31 + 180);
            code.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(fresh, code);
    // The phone types the old code against the old ref: ignored.
    let typed = phone_side::parse_code(&code).unwrap();
    let old = bytes(&reg, "link_code_pairing_wrapped_companion_ephemeral_pub");
    let (wrapped, _) = phone_side::phone_hello(&typed, &old, &mut rng).unwrap();
    server.send(
        &mut conn,
        S(32),
        &primary_hello("REF-1", wrapped, world.account.public()),
    );
    assert!(server.recv(&mut conn).iter().all(|n| n.tag == "ack"));
    // A refused hello is reported.
    conn.request_pair_code(S(40), phone(PHONE).unwrap());
    let hello = server.recv(&mut conn).pop().unwrap();
    let refused = Node::new("iq")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", attr(&hello, "id"))
        .with_attr("type", "error")
        .with_children(vec![
            Node::new("error")
                .with_attr("code", "400")
                .with_attr("text", "bad-request"),
        ]);
    server.send(&mut conn, S(41), &refused);
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::PairCodeFailed(wuts::engine::IqError::Rejected {
            code: 400,
            ..
        })]
    ));
}

/// The code's PBKDF2 is the driver's to run off the async workers: the hello waits for the
/// derived key, and so does the finish for the phone's hello.
#[test]
fn the_code_key_is_derived_outside_the_connection() {
    let mut world = World::new(31);
    let (mut conn, mut server) = world.connect(S(0));
    server.send(&mut conn, S(1), &pair_device(6));
    drop(server.recv(&mut conn));
    drop(events(&mut conn));
    conn.request_pair_code(S(2), phone(PHONE).unwrap());
    // Straight from the connection, not through the support's inline job runner.
    let job = match conn.poll_event() {
        Some(Event::DeriveCodeKey(job)) => job,
        other => panic!("expected a derivation, got {other:?}"),
    };
    assert!(conn.poll_transmit().is_none(), "no hello before the key");
    conn.code_key_derived(S(3), job.run());
    let hello = server.recv(&mut conn).pop().unwrap();
    let reg = hello.child("link_code_companion_reg").unwrap();
    assert_eq!(attr(reg, "stage"), "companion_hello");
}
