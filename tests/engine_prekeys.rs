//! The key upkeep after login against an in-memory server peer: the digest check and its
//! re-uploads, and the signed pre-key rotation on WhatsApp Web's schedule (stored durably
//! before the server hears of it, the schedule kept in the store across connections). Time is
//! driven, never slept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use engine_support::*;
use wuts::binary::Node;
use wuts::engine::Event;
use wuts::noise::xeddsa;
use wuts_store::{Credentials, PreKeys};

const S: fn(u64) -> Duration = Duration::from_secs;
const DAY: u64 = 24 * 60 * 60;

/// The one IQ the connection sent, of namespace `encrypt`.
fn one_encrypt_iq(sent: Vec<Node>) -> Node {
    assert_eq!(sent.len(), 1, "{sent:?}");
    let node = sent.into_iter().next().unwrap();
    assert_eq!(attr(&node, "xmlns"), "encrypt", "{node}");
    node
}

/// Logs in again on a fresh connection up to the digest request (the server holds 812 keys).
fn relogin_to_digest(world: &mut World, now: Duration) -> (Conn, Server, Node) {
    let (mut conn, mut server) = world.connect(now);
    server.send(
        &mut conn,
        now,
        &Node::new("success").with_attr("t", UNIX.to_string()),
    );
    let sent = server.recv(&mut conn);
    server.send(&mut conn, now, &result_for(&sent[0], vec![]));
    let count = Node::new("count").with_attr("value", "812");
    server.send(&mut conn, now, &result_for(&sent[1], vec![count]));
    let digest = one_encrypt_iq(server.recv(&mut conn));
    assert!(digest.child("digest").is_some());
    (conn, server, digest)
}

#[test]
fn a_digest_that_differs_uploads_the_bundle_again() {
    let mut world = World::new(21);
    pair(&mut world);
    drop(login(&mut world));
    let (mut conn2, mut server2, digest) = relogin_to_digest(&mut world, S(200));
    // The server lists three keys but its hash is of something else.
    let mut reply = digest_reply(&world, &digest, &[1, 2, 3]);
    let mut children = reply.children().to_vec();
    let mut d = children[0].clone();
    let mut parts = d.children().to_vec();
    let hash = parts.iter_mut().find(|n| n.tag == "hash").unwrap();
    *hash = Node::new("hash").with_bytes(vec![0; 20]);
    d = d.with_children(parts);
    children[0] = d;
    reply = reply.with_children(children);
    server2.send(&mut conn2, S(200), &reply);
    let upload = one_encrypt_iq(server2.recv(&mut conn2));
    let ids: Vec<Vec<u8>> = upload
        .child("list")
        .unwrap()
        .children()
        .iter()
        .map(|k| k.child("id").unwrap().content_bytes().unwrap().to_vec())
        .collect();
    assert_eq!(
        ids,
        [vec![0, 0, 1], vec![0, 0, 2], vec![0, 0, 3]],
        "the listed keys again"
    );
    assert!(upload.child("skey").is_some(), "with the signed pre-key");
    server2.send(&mut conn2, S(200), &result_for(&upload, vec![]));
    // Checked once per login: no second digest.
    assert!(server2.recv(&mut conn2).is_empty());
}

#[test]
fn a_digest_that_matches_sends_nothing_and_a_missing_bundle_is_uploaded_whole() {
    let mut world = World::new(22);
    pair(&mut world);
    drop(login(&mut world));
    let (mut conn, mut server, digest) = relogin_to_digest(&mut world, S(200));
    let ids: Vec<u32> = (1..=812).collect();
    server.send(&mut conn, S(200), &digest_reply(&world, &digest, &ids));
    assert!(server.recv(&mut conn).is_empty());

    let (mut conn, mut server, digest) = relogin_to_digest(&mut world, S(300));
    let missing = Node::new("iq")
        .with_attr("from", wuts::binary::Jid::server_only("s.whatsapp.net"))
        .with_attr("id", attr(&digest, "id"))
        .with_attr("type", "error")
        .with_children(vec![
            Node::new("error")
                .with_attr("code", "404")
                .with_attr("text", "item-not-found"),
        ]);
    server.send(&mut conn, S(300), &missing);
    let upload = one_encrypt_iq(server.recv(&mut conn));
    assert_eq!(upload.child("list").unwrap().children().len(), 812);
    let count = world.store.pre_key_count(world.device).unwrap();
    assert_eq!(
        count.uploaded,
        812 * 2,
        "fresh keys: the old ones are not sent twice"
    );
}

#[test]
fn the_signed_pre_key_rotates_on_schedule_durably_first() {
    let mut world = World::new(23);
    pair(&mut world);
    drop(login(&mut world));
    let before = world.store.load_device(world.device).unwrap().keys;
    assert_eq!(before.signed_pre_key.id.get(), 1);

    // 27 days on (the stored schedule started at the first login), a login rotates.
    let later = S(100 + 27 * DAY);
    world.set_unix(UNIX + 27 * DAY);
    let (mut conn, mut server, digest) = relogin_to_digest(&mut world, later);
    let ids: Vec<u32> = (1..=812).collect();
    server.send(&mut conn, later, &digest_reply(&world, &digest, &ids));
    let rotate = one_encrypt_iq(server.recv(&mut conn));
    let skey = rotate.child("rotate").unwrap().child("skey").unwrap();
    // Stored before it was sent.
    let stored = world.store.load_device(world.device).unwrap().keys;
    assert_eq!(stored.signed_pre_key.id.get(), 2);
    assert_ne!(stored.signed_pre_key, before.signed_pre_key);
    assert_eq!(stored.identity, before.identity);
    let value = skey
        .child("value")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    let signature = skey
        .child("signature")
        .unwrap()
        .content_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(value, stored.signed_pre_key.key_pair.public.as_bytes());
    let identity = wuts::noise::PublicKey::from_bytes(*stored.identity.public.as_bytes());
    assert!(xeddsa::verify(
        &identity,
        &[&[5u8][..], &value].concat(),
        &signature
    ));
    server.send(&mut conn, later, &result_for(&rotate, vec![]));
    assert!(
        events(&mut conn)
            .iter()
            .any(|e| matches!(e, Event::SignedPreKeyRotated { at } if *at == UNIX + 27 * DAY))
    );

    // While connected, the next one comes due 27 days on by the connection's timer.
    let due = later + S(27 * DAY);
    let encrypt = |sent: Vec<Node>| -> Vec<Node> {
        sent.into_iter()
            .filter(|n| attr(n, "xmlns") == "encrypt")
            .collect()
    };
    conn.handle_timeout(due - S(1));
    assert!(encrypt(server.recv(&mut conn)).is_empty(), "not before");
    conn.handle_timeout(due);
    let rotate = one_encrypt_iq(encrypt(server.recv(&mut conn)));
    assert!(rotate.child("rotate").is_some());
    let stored = world.store.load_device(world.device).unwrap().keys;
    assert_eq!(stored.signed_pre_key.id.get(), 3);
}
