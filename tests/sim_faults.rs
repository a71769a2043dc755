//! Fault injection: stream errors, dropped connections, delayed and withheld IQ replies,
//! refused logins, and the idle limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::time::Duration;

use sim_support::*;
use wuts::binary::Node;
use wuts::sim::{Fault, Sandbox, SandboxConfig, StreamError, Timing};

const PHONE: &str = "5511999999999";

#[tokio::test]
async fn each_stream_error_is_sent_then_the_connection_closes() {
    let sb = sandbox().await;
    let (c, paired, mut client) = online(&sb, PHONE).await;
    let cases = [
        (
            StreamError::RestartRequired,
            r#"<stream:error code="515"/>"#,
        ),
        (
            StreamError::ServiceUnavailable,
            r#"<stream:error code="503"/>"#,
        ),
        (StreamError::Unauthorized, r#"<stream:error code="401"/>"#),
        (
            StreamError::Replaced,
            r#"<stream:error><conflict type="replaced"/></stream:error>"#,
        ),
    ];
    for (error, shape) in cases {
        let fault = Fault::StreamError {
            device: paired.jid.clone(),
            error,
        };
        sb.inject(fault).await.unwrap();
        let (stanzas, ended) = client.until_end().await;
        assert_eq!(stanzas.len(), 1);
        assert_eq!(stanzas[0].to_string(), shape);
        assert_eq!(ended, Ended::Clean);
        // These leave the device paired: it logs in again.
        let (again, success) = login(&sb, &c, &paired.jid).await;
        assert_eq!(success.tag, "success");
        client = again;
    }
}

#[tokio::test]
async fn device_removed_unlinks_the_device() {
    let sb = sandbox().await;
    let (c, paired, mut client) = online(&sb, PHONE).await;
    let fault = Fault::StreamError {
        device: paired.jid.clone(),
        error: StreamError::DeviceRemoved,
    };
    sb.inject(fault).await.unwrap();
    let (stanzas, _) = client.until_end().await;
    assert_eq!(
        stanzas[0].to_string(),
        r#"<stream:error code="401"><conflict type="device_removed"/></stream:error>"#
    );
    assert!(sb.devices()[0].removed);
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
}

#[tokio::test]
async fn drop_closes_without_a_word() {
    let sb = sandbox().await;
    let (_, paired, mut client) = online(&sb, PHONE).await;
    let mut events = sb.subscribe();
    sb.inject(Fault::Drop {
        device: paired.jid.clone(),
    })
    .await
    .unwrap();
    let (stanzas, ended) = client.until_end().await;
    assert!(stanzas.is_empty());
    assert_eq!(ended, Ended::Abrupt);
    // Wait for the sandbox to notice, then faults on that device have no connection.
    loop {
        if let wuts::sim::SimEvent::Closed { jid: Some(j) } = events.recv().await.unwrap() {
            assert_eq!(j, paired.jid);
            break;
        }
    }
    let again = sb.inject(Fault::Drop { device: paired.jid }).await;
    assert!(matches!(again, Err(wuts::sim::Error::NotConnected(_))));
}

#[tokio::test]
async fn withheld_and_delayed_iq_replies() {
    let sb = sandbox().await;
    let (_, paired, mut client) = online(&sb, PHONE).await;
    sb.inject(Fault::WithholdIq {
        device: paired.jid.clone(),
        xmlns: Some("w:p".into()),
        count: Some(1),
    })
    .await
    .unwrap();
    let lost = client.iq("w:p", "get", vec![]);
    let lost_id = attr(&lost, "id").unwrap();
    client.send(&lost).await;
    let ping = client.iq("w:p", "get", vec![]);
    let ping_id = attr(&ping, "id").unwrap();
    client.send(&ping).await;
    let first = client.recv().await;
    assert_eq!(
        attr(&first, "id"),
        Some(ping_id),
        "the withheld reply never comes"
    );
    assert_ne!(attr(&first, "id"), Some(lost_id));

    // Delay the next pre-key count: a ping sent after it is answered first.
    sb.inject(Fault::DelayIq {
        device: paired.jid.clone(),
        millis: 300,
        xmlns: Some("encrypt".into()),
        count: None,
    })
    .await
    .unwrap();
    let slow = client.iq("encrypt", "get", vec![Node::new("count")]);
    let slow_id = attr(&slow, "id").unwrap();
    client.send(&slow).await;
    let fast = client.iq("w:p", "get", vec![]);
    let fast_id = attr(&fast, "id").unwrap();
    client.send(&fast).await;
    assert_eq!(attr(&client.recv().await, "id"), Some(fast_id));
    assert_eq!(attr(&client.recv().await, "id"), Some(slow_id));

    sb.inject(Fault::ClearIqFaults {
        device: paired.jid.clone(),
    })
    .await
    .unwrap();
    let count = client.iq("encrypt", "get", vec![Node::new("count")]);
    let id = attr(&count, "id").unwrap();
    client.send(&count).await;
    let ping = client.iq("w:p", "get", vec![]);
    client.send(&ping).await;
    assert_eq!(attr(&client.recv().await, "id"), Some(id));
}

#[tokio::test]
async fn reject_next_login_refuses_once() {
    let sb = sandbox().await;
    let (c, paired) = pair(&sb, PHONE).await;
    sb.inject(Fault::RejectNextLogin {
        device: Some(paired.jid.clone()),
        reason: 503,
    })
    .await
    .unwrap();
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="503"/>"#);
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.tag, "success");
    sb.inject(Fault::RejectNextLogin {
        device: None,
        reason: 401,
    })
    .await
    .unwrap();
    let (_, reply) = login(&sb, &c, &paired.jid).await;
    assert_eq!(reply.to_string(), r#"<failure reason="401"/>"#);
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_idle_limit() {
    let timing = Timing {
        idle: Duration::from_millis(200),
        ..Timing::default()
    };
    let sb = Sandbox::start(SandboxConfig {
        timing,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (_, _, mut client) = online(&sb, PHONE).await;
    let (stanzas, ended) = client.until_end().await;
    assert!(stanzas.is_empty());
    assert_eq!(ended, Ended::Clean);
}
