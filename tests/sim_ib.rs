//! The sandbox's `<ib>` stanzas, strict like the real server: edge routing info after each
//! login, and a new device's dirty bit, which only a matching `clean` clears.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use sim_support::*;
use wuts::binary::Node;

const PHONE: &str = "5511999990801";

#[tokio::test]
async fn a_new_device_is_told_it_is_dirty_and_only_a_matching_clean_clears_it() {
    let sb = sandbox().await;
    let (_, paired, mut client) = online(&sb, PHONE).await;
    assert_eq!(sb.dirty(&paired.jid).as_deref(), Some("account_sync"));
    let active = client.iq("passive", "set", vec![Node::new("active")]);
    client.send(&active).await;
    assert_eq!(
        attr(&client.recv().await, "type").as_deref(),
        Some("result")
    );
    assert!(client.recv().await.child("offline").is_some());
    let ib = client.recv().await;
    let dirty = ib.child("dirty").expect("a dirty bit");
    assert_eq!(attr(dirty, "type").as_deref(), Some("account_sync"));
    let ts = attr(dirty, "timestamp").unwrap();

    let wrong = client.iq(
        "urn:xmpp:whatsapp:dirty",
        "set",
        vec![
            Node::new("clean")
                .with_attr("type", "account_sync")
                .with_attr("timestamp", "1"),
        ],
    );
    client.send(&wrong).await;
    assert_eq!(attr(&client.recv().await, "type").as_deref(), Some("error"));
    assert!(sb.dirty(&paired.jid).is_some());
    let clean = client.iq(
        "urn:xmpp:whatsapp:dirty",
        "set",
        vec![
            Node::new("clean")
                .with_attr("type", "account_sync")
                .with_attr("timestamp", ts),
        ],
    );
    client.send(&clean).await;
    assert_eq!(
        attr(&client.recv().await, "type").as_deref(),
        Some("result")
    );
    assert_eq!(sb.dirty(&paired.jid), None);
    let routing = sb.edge_routing(&paired.jid).unwrap();
    assert_eq!(routing.presented, None, "the raw client presents none");
}

#[tokio::test]
async fn the_server_pings_and_drops_a_device_that_does_not_answer() {
    let sb = wuts::sim::Sandbox::start(wuts::sim::SandboxConfig {
        timing: wuts::sim::Timing {
            server_ping: (
                std::time::Duration::from_millis(100),
                std::time::Duration::from_millis(300),
            ),
            ..wuts::sim::Timing::default()
        },
        ..wuts::sim::SandboxConfig::default()
    })
    .await
    .unwrap();
    let (_, paired, mut client) = online(&sb, PHONE).await;
    let ping = loop {
        let node = client.recv().await;
        if attr(&node, "xmlns").as_deref() == Some("urn:xmpp:ping") {
            break node;
        }
    };
    assert_eq!(attr(&ping, "type").as_deref(), Some("get"));
    let pong = Node::new("iq")
        .with_attr("id", attr(&ping, "id").unwrap())
        .with_attr("type", "result");
    client.send(&pong).await;
    // The next ping goes unanswered: the server drops the connection.
    while client.next().await.is_ok() {}
    assert_eq!(sb.server_pings_answered(&paired.jid), 1);
}
