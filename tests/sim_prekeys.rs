//! The sandbox's key bundle, strict like the real server: the digest answers 404 until a bundle
//! is uploaded, then carries the ids and a SHA-1 over what it holds; `<rotate>` needs a
//! signature by the device's identity key; faults over `/control/prekeys` corrupt, drop or
//! consume the server's copy (the last with the low-count notification); the bundle survives a
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use rand_core::OsRng;
use serde_json::json;
use sha1::{Digest, Sha1};
use sim_support::*;
use wuts::binary::Node;
use wuts::noise::{KeyPair, xeddsa};
use wuts::sim::{Sandbox, SandboxConfig};

const PHONE: &str = "5511999990901";

fn bytes(node: &Node, tag: &str) -> Vec<u8> {
    node.child(tag)
        .and_then(Node::content_bytes)
        .unwrap_or_else(|| panic!("no {tag} in {node}"))
        .into_owned()
}

async fn digest(client: &mut RawClient) -> Node {
    let iq = client.iq("encrypt", "get", vec![Node::new("digest")]);
    client.request(iq).await
}

#[tokio::test]
async fn the_digest_reflects_uploads_and_rotations_and_rotation_is_checked() {
    let sb = sandbox().await;
    let (c, paired, mut client) = online(&sb, PHONE).await;
    let none = digest(&mut client).await;
    assert_eq!(attr(&none, "type").as_deref(), Some("error"), "{none}");
    assert_eq!(
        attr(none.child("error").unwrap(), "code").as_deref(),
        Some("404")
    );

    let upload = c.prekey_upload(&mut client, 3);
    let values: Vec<Vec<u8>> = upload
        .child("list")
        .unwrap()
        .children()
        .iter()
        .map(|k| bytes(k, "value"))
        .collect();
    assert_eq!(
        attr(&client.request(upload).await, "type").as_deref(),
        Some("result")
    );
    let reply = digest(&mut client).await;
    let d = reply.child("digest").expect("a digest");
    assert_eq!(bytes(d, "registration"), c.registration_id.to_be_bytes());
    let ids: Vec<Vec<u8>> = d
        .child("list")
        .unwrap()
        .children()
        .iter()
        .map(|i| i.content_bytes().unwrap().into_owned())
        .collect();
    assert_eq!(ids, [vec![0, 0, 1], vec![0, 0, 2], vec![0, 0, 3]]);
    let mut h = Sha1::new();
    h.update(c.identity.public().as_bytes());
    h.update(c.signed_prekey.public().as_bytes());
    h.update(c.signed_prekey_sig);
    for v in &values {
        h.update(v);
    }
    assert_eq!(bytes(d, "hash"), h.finalize().to_vec());
    let shown = sb.key_bundle(&paired.jid).unwrap();
    assert_eq!((shown.prekeys, shown.signed_pre_key_id), (3, Some(1)));

    // A rotation signed by another key is refused; the device's own is taken.
    let fresh = KeyPair::generate(&mut OsRng);
    let signed = [&[5u8][..], fresh.public().as_bytes()].concat();
    let rotate = |client: &mut RawClient, signature: [u8; 64]| {
        let skey = Node::new("skey").with_children(vec![
            Node::new("id").with_bytes(vec![0, 0, 2]),
            Node::new("value").with_bytes(fresh.public().as_bytes().to_vec()),
            Node::new("signature").with_bytes(signature.to_vec()),
        ]);
        client.iq(
            "encrypt",
            "set",
            vec![Node::new("rotate").with_children(vec![skey])],
        )
    };
    let stranger = KeyPair::generate(&mut OsRng);
    let bad = rotate(
        &mut client,
        xeddsa::sign_with_rng(stranger.secret(), &signed, &mut OsRng),
    );
    assert_eq!(
        attr(&client.request(bad).await, "type").as_deref(),
        Some("error")
    );
    let good = rotate(
        &mut client,
        xeddsa::sign_with_rng(c.identity.secret(), &signed, &mut OsRng),
    );
    assert_eq!(
        attr(&client.request(good).await, "type").as_deref(),
        Some("result")
    );
    let reply = digest(&mut client).await;
    let skey = reply.child("digest").unwrap().child("skey").unwrap();
    assert_eq!(bytes(skey, "id"), [0, 0, 2]);
    assert_eq!(bytes(skey, "value"), fresh.public().as_bytes());
    assert_ne!(sb.key_bundle(&paired.jid).unwrap().hash, shown.hash);
}

#[tokio::test]
async fn key_faults_over_control_and_the_bundle_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config()).await.unwrap();
    let (c, paired, mut client) = online(&sb, PHONE).await;
    let upload = c.prekey_upload(&mut client, 6);
    assert_eq!(
        attr(&client.request(upload).await, "type").as_deref(),
        Some("result")
    );
    let http = reqwest::Client::new();
    let fault = |body: serde_json::Value| {
        http.post(format!("{}/prekeys", sb.control_url()))
            .json(&body)
            .send()
    };
    let r = fault(json!({"jid": paired.jid, "fault": "consume", "count": 4}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let shown: serde_json::Value = r.json().await.unwrap();
    assert_eq!(shown["prekeys"], 2, "{shown}");
    let low = loop {
        let node = client.recv().await;
        if node.tag == "notification" {
            break node;
        }
    };
    assert_eq!(attr(&low, "type").as_deref(), Some("encrypt"));
    assert_eq!(
        attr(low.child("count").unwrap(), "value").as_deref(),
        Some("2")
    );
    let r = fault(json!({"jid": "1@s.whatsapp.net", "fault": "drop"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let kept = sb.key_bundle(&paired.jid).unwrap();
    drop(client);
    sb.shutdown().await.unwrap();

    let sb = Sandbox::start(config()).await.unwrap();
    assert_eq!(sb.key_bundle(&paired.jid).unwrap().hash, kept.hash);
    let shown: serde_json::Value =
        reqwest::get(format!("{}/prekeys?jid={}", sb.control_url(), paired.jid))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(shown["prekeys"], 2, "{shown}");
    assert_eq!(shown["signature_valid"], true, "{shown}");
    let r = reqwest::Client::new()
        .post(format!("{}/prekeys", sb.control_url()))
        .json(&json!({"jid": paired.jid, "fault": "corrupt_signed"}))
        .send()
        .await
        .unwrap();
    let shown: serde_json::Value = r.json().await.unwrap();
    assert_eq!(shown["signature_valid"], false, "{shown}");
    sb.shutdown().await.unwrap();
}
