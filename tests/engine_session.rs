//! The engine against an in-memory server peer: pairing by QR end to end, login, pre-keys,
//! keepalive, IQs, stream errors and every tampered field of `pair-success`. Time is driven,
//! never slept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use engine_support::*;
use wuts::binary::{Jid, Node};
use wuts::engine::{CloseReason, Event, IqError, IqId, NextStep, PairError};
use wuts::ops::{Iq, IqKind};
use wuts_store::Credentials;

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn pairs_by_qr_then_logs_in_with_the_stored_identity() {
    let mut world = World::new(1);
    let qr = pair(&mut world);
    let parts: Vec<&str> = qr
        .strip_prefix("https://wa.me/settings/linked_devices#")
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0], "2@ref0");
    assert!(parts[1..4].iter().all(|p| p.len() == 44));
    let (conn, server) = login(&mut world);
    assert!(conn.is_logged_in());
    let keys = world.store.load_device(world.device).unwrap().keys;
    assert_eq!(
        server.client_static.as_bytes(),
        keys.noise.public.as_bytes()
    );
}

#[test]
fn qr_codes_rotate_on_the_real_schedule_then_time_out() {
    let mut world = World::new(2);
    let (mut conn, mut server) = world.connect(S(0));
    server.send(&mut conn, S(0), &pair_device(6));
    assert_eq!(events(&mut conn).len(), 1);
    assert_eq!(conn.poll_timeout(), Some(S(60)));
    let mut now = S(60);
    for i in 1..6 {
        conn.handle_timeout(now);
        match events(&mut conn).as_slice() {
            [Event::Qr { code, ttl, .. }] => {
                assert_eq!(*ttl, S(20));
                assert!(code.contains(&format!("2@ref{i},")));
            }
            other => panic!("{other:?}"),
        }
        now += S(20);
        assert_eq!(conn.poll_timeout(), Some(now));
    }
    conn.handle_timeout(now);
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::Closed(CloseReason::PairingTimedOut)]
    ));
}

fn tampered(tamper: impl FnOnce(&mut Parts), want: PairError, code: &str) {
    let mut world = World::new(3);
    let (mut conn, mut server) = world.connect(S(0));
    server.send(&mut conn, S(0), &pair_device(6));
    let qr = match events(&mut conn).pop() {
        Some(Event::Qr { code, .. }) => code,
        other => panic!("{other:?}"),
    };
    server.recv(&mut conn);
    let ps = world.pair_success(&qr, tamper);
    server.send(&mut conn, S(1), &ps);
    match events(&mut conn).as_slice() {
        [Event::Closed(CloseReason::PairingFailed(e))] => assert_eq!(*e, want),
        other => panic!("{other:?}"),
    }
    let reply = server.recv(&mut conn).pop().unwrap();
    assert_eq!(attr(&reply, "type"), "error");
    assert_eq!(attr(reply.child("error").unwrap(), "code"), code);
    assert!(
        world
            .store
            .load_device(world.device)
            .unwrap()
            .paired
            .is_none(),
        "nothing saved"
    );
}

#[test]
fn tampered_pair_success_is_refused_at_each_field() {
    tampered(|p| p.hmac_flip = true, PairError::HmacMismatch, "401");
    tampered(|p| p.hmac_key = vec![7; 32], PairError::HmacMismatch, "401");
    tampered(
        |p| p.account_sig[10] ^= 1,
        PairError::SignatureMismatch,
        "401",
    );
    tampered(
        |p| p.account_sig.truncate(63),
        PairError::SignatureMismatch,
        "401",
    );
    tampered(
        |p| p.account_key[0] ^= 1,
        PairError::SignatureMismatch,
        "401",
    );
    tampered(|p| p.account_key.truncate(31), PairError::InvalidKey, "401");
    // Changed details (signed over) with a recomputed HMAC: the account signature fails.
    tampered(|p| p.details[3] ^= 1, PairError::SignatureMismatch, "401");
    tampered(
        |p| p.with_device = false,
        PairError::Malformed("device"),
        "500",
    );
    tampered(
        |p| p.details = vec![0xff; 4],
        PairError::Malformed("device identity"),
        "500",
    );
}

#[test]
fn keepalive_pings_and_a_dead_link_is_detected() {
    let mut world = World::new(4);
    pair(&mut world);
    let (mut conn, mut server) = login(&mut world);
    let ping_at = conn.poll_timeout().unwrap();
    assert!(ping_at >= S(120) && ping_at < S(130), "{ping_at:?}");
    conn.handle_timeout(ping_at);
    let ping = server.recv(&mut conn).pop().unwrap();
    assert_eq!(attr(&ping, "xmlns"), "w:p");
    assert_eq!(attr(&ping, "type"), "get");
    server.send(&mut conn, ping_at + S(1), &result_for(&ping, vec![]));
    let next = conn.poll_timeout().unwrap();
    assert!(
        next >= ping_at + S(21),
        "next ping scheduled after the reply"
    );
    conn.handle_timeout(next);
    server.recv(&mut conn);
    conn.handle_timeout(next + S(20));
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::Closed(CloseReason::KeepaliveTimeout)]
    ));
    assert_eq!(CloseReason::KeepaliveTimeout.next_step(), NextStep::Backoff);
}

#[test]
fn caller_iqs_complete_time_out_and_fail_on_close() {
    let mut world = World::new(5);
    pair(&mut world);
    // Before login, a request is refused at once.
    let (mut early, _srv) = world.connect(S(50));
    let req = || Iq {
        xmlns: "w:g2",
        kind: IqKind::Set,
        to: Jid::server_only("g.us"),
        children: vec![Node::new("create").with_attr("subject", "x")],
        timeout: Some(S(30)),
        target: None,
    };
    early.send_iq(S(50), IqId(1), req());
    assert!(matches!(
        events(&mut early).as_slice(),
        [Event::IqDone {
            id: IqId(1),
            result: Err(IqError::Disconnected)
        }]
    ));

    let (mut conn, mut server) = login(&mut world);
    conn.send_iq(S(101), IqId(2), req());
    let sent = server.recv(&mut conn).pop().unwrap();
    assert_eq!(attr(&sent, "xmlns"), "w:g2");
    assert_eq!(attr(&sent, "to"), "@g.us");
    let error = Node::new("iq")
        .with_attr("from", Jid::server_only("g.us"))
        .with_attr("id", attr(&sent, "id"))
        .with_attr("type", "error")
        .with_children(vec![
            Node::new("error")
                .with_attr("code", "406")
                .with_attr("text", "not-acceptable"),
        ]);
    server.send(&mut conn, S(102), &error);
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::IqDone {
            id: IqId(2),
            result: Err(IqError::Rejected { code: 406, .. })
        }]
    ));
    conn.send_iq(S(103), IqId(3), req());
    conn.handle_timeout(S(133));
    assert!(events(&mut conn).iter().any(|e| matches!(
        e,
        Event::IqDone {
            id: IqId(3),
            result: Err(IqError::Timeout(_))
        }
    )));
    conn.send_iq(S(134), IqId(4), req());
    server.send(
        &mut conn,
        S(135),
        &Node::new("stream:error").with_attr("code", "503"),
    );
    let evs = events(&mut conn);
    assert!(matches!(
        &evs[..],
        [
            Event::IqDone {
                id: IqId(4),
                result: Err(IqError::Lost)
            },
            Event::Closed(CloseReason::StreamError(Some(503)))
        ]
    ));
}

#[test]
fn stream_errors_and_failures_map_to_the_documented_next_step() {
    let conflict = |t: &str| {
        Node::new("stream:error")
            .with_attr("code", "401")
            .with_children(vec![Node::new("conflict").with_attr("type", t)])
    };
    let cases = [
        (
            Node::new("stream:error").with_attr("code", "515"),
            NextStep::ReconnectNow,
        ),
        (
            Node::new("stream:error").with_attr("code", "503"),
            NextStep::Backoff,
        ),
        (
            Node::new("stream:error").with_attr("code", "401"),
            NextStep::LoggedOut,
        ),
        (conflict("device_removed"), NextStep::LoggedOut),
        (
            Node::new("stream:error")
                .with_children(vec![Node::new("conflict").with_attr("type", "replaced")]),
            NextStep::Stop,
        ),
        (
            Node::new("failure").with_attr("reason", "401"),
            NextStep::LoggedOut,
        ),
        (
            Node::new("failure").with_attr("reason", "503"),
            NextStep::Backoff,
        ),
        (
            Node::new("failure").with_attr("reason", "405"),
            NextStep::Stop,
        ),
        (Node::new("xmlstreamend"), NextStep::Backoff),
    ];
    let mut world = World::new(6);
    pair(&mut world);
    for (node, want) in cases {
        let (mut conn, mut server) = world.connect(S(200));
        server.send(&mut conn, S(200), &node);
        match events(&mut conn).pop() {
            Some(Event::Closed(reason)) => assert_eq!(reason.next_step(), want, "{node}"),
            other => panic!("{node}: {other:?}"),
        }
    }
}

#[test]
fn a_silent_server_hits_the_setup_deadline() {
    let mut world = World::new(7);
    let (mut conn, _server) = world.connect(S(0));
    assert_eq!(conn.poll_timeout(), Some(S(20)));
    conn.handle_timeout(S(20));
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::Closed(CloseReason::SetupTimeout)]
    ));
}

#[test]
fn server_pings_are_answered_and_notifications_acked() {
    let mut world = World::new(8);
    pair(&mut world);
    let (mut conn, mut server) = login(&mut world);
    let ping = Node::new("iq")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", "p1")
        .with_attr("type", "get")
        .with_attr("xmlns", "urn:xmpp:ping");
    server.send(&mut conn, S(101), &ping);
    let note = Node::new("notification")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", "n1")
        .with_attr("type", "server_sync");
    server.send(&mut conn, S(101), &note);
    let out = server.recv(&mut conn);
    assert_eq!(
        out[0].to_string(),
        r#"<iq to="@s.whatsapp.net" id="p1" type="result"/>"#
    );
    assert_eq!(
        out[1].to_string(),
        r#"<ack class="notification" id="n1" to="@s.whatsapp.net" type="server_sync"/>"#
    );
}

#[test]
fn uploads_pre_keys_when_the_server_runs_low() {
    let mut world = World::new(9);
    pair(&mut world);
    let (mut conn, mut server) = login(&mut world);
    let low = Node::new("notification")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", "n2")
        .with_attr("type", "encrypt")
        .with_children(vec![Node::new("count").with_attr("value", "2")]);
    server.send(&mut conn, S(110), &low);
    let out = server.recv(&mut conn);
    assert_eq!(out[0].tag, "ack");
    let upload = &out[1];
    assert_eq!(attr(upload, "xmlns"), "encrypt");
    let list = upload.child("list").unwrap().children();
    assert_eq!(list.len(), 50);
    // Fresh ids: none of the 812 uploaded at first login is sent again.
    let first_id = list[0]
        .child("id")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(first_id, [0, 3, 0x2d], "ids continue after 812");
}

/// Hosted accounts are decided by the device identity's device type (whatsmeow since 2025-10,
/// Baileys): their account signature uses the `06 05` prefix, and the other prefix fails.
#[test]
fn hosted_accounts_verify_with_their_own_prefix() {
    for (device_type, prefix, ok) in [
        (1, [6, 5], true),
        (0, [6, 0], true),
        (1, [6, 0], false),
        (0, [6, 5], false),
    ] {
        let mut world = World::new(10);
        let (mut conn, mut server) = world.connect(S(0));
        server.send(&mut conn, S(0), &pair_device(6));
        let qr = match events(&mut conn).pop() {
            Some(Event::Qr { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        server.recv(&mut conn);
        let ps = world.pair_success_as(&qr, device_type, prefix, |_| {});
        server.send(&mut conn, S(1), &ps);
        let evs = events(&mut conn);
        let paired = matches!(evs.as_slice(), [Event::Paired { .. }]);
        assert_eq!(
            paired, ok,
            "device type {device_type}, prefix {prefix:?}: {evs:?}"
        );
        if !ok {
            assert!(matches!(
                evs.as_slice(),
                [Event::Closed(CloseReason::PairingFailed(
                    PairError::SignatureMismatch
                ))]
            ));
        }
    }
}

/// WhatsApp Web's offline hand-over: a preview with a count is answered with batch requests of
/// 200, the next once the last batch has arrived; the end marker reports the count.
#[test]
fn the_offline_queue_is_pulled_in_batches_after_the_preview() {
    let mut world = World::new(12);
    pair(&mut world);
    let (mut conn, mut server) = login(&mut world);
    let ib = |child: Node| {
        Node::new("ib")
            .with_attr("from", Jid::server_only("s.whatsapp.net"))
            .with_children(vec![child])
    };
    let batch_requests = |sent: &[Node]| -> Vec<String> {
        sent.iter()
            .filter_map(|n| n.child("offline_batch"))
            .map(|b| attr(b, "count"))
            .collect()
    };
    let preview = Node::new("offline_preview").with_attr("count", "250");
    server.send(&mut conn, S(120), &ib(preview));
    assert_eq!(batch_requests(&server.recv(&mut conn)), ["200"]);
    for i in 0..250 {
        let receipt = Node::new("receipt")
            .with_attr("from", Jid::new("5511777770000", "s.whatsapp.net"))
            .with_attr("id", format!("r{i}"))
            .with_attr("offline", "1");
        server.send(&mut conn, S(121), &receipt);
        let asked = batch_requests(&server.recv(&mut conn));
        assert_eq!(
            asked.len(),
            usize::from(i == 199),
            "after stanza {i}: {asked:?}"
        );
    }
    server.send(
        &mut conn,
        S(122),
        &ib(Node::new("offline").with_attr("count", "250")),
    );
    assert!(
        events(&mut conn)
            .iter()
            .any(|e| matches!(e, Event::OfflineSynced { count: 250 }))
    );
    // Nothing announced: nothing asked for.
    server.send(
        &mut conn,
        S(123),
        &ib(Node::new("offline_preview").with_attr("count", "0")),
    );
    assert!(batch_requests(&server.recv(&mut conn)).is_empty());
}
