//! Hostile and broken clients: bad intro headers, text messages, tampered frames, silent or
//! resuming handshakes. Each is cut off, and the sandbox keeps serving everyone else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use sim_support::*;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use wuts::noise::frame::write_frame;
use wuts::proto::wa6::HandshakeMessage;
use wuts::proto::wa6::handshake_message::ClientHello;
use wuts::sim::{Sandbox, SandboxConfig, Timing};

/// Waits until the server ends the raw connection; true if it did within the wait.
async fn closed_by_server(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> bool {
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.is_ok()
}

async fn still_serves(sb: &wuts::sim::SandboxHandle) {
    let (_, refs) = register(sb, &Companion::new()).await;
    assert_eq!(refs.len(), 6);
}

#[tokio::test]
async fn bad_intro_and_text_messages_are_cut_off() {
    let sb = sandbox().await;
    let (mut ws, _) = connect_async(sb.ws_url()).await.unwrap();
    ws.send(Message::Binary(b"GET / HTTP/1.1\r\n\r\n".to_vec().into()))
        .await
        .unwrap();
    assert!(closed_by_server(&mut ws).await);
    let (mut ws, _) = connect_async(sb.ws_url()).await.unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert!(closed_by_server(&mut ws).await);
    still_serves(&sb).await;
}

#[tokio::test]
async fn resumption_attempts_are_refused() {
    let sb = sandbox().await;
    let (mut ws, _) = connect_async(sb.ws_url()).await.unwrap();
    let hello = HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(vec![9; 32]),
            r#static: Some(vec![1; 48]),
            payload: Some(vec![2; 40]),
            ..ClientHello::default()
        }),
        ..HandshakeMessage::default()
    };
    let mut bytes = vec![0x57, 0x41, 0x06, 0x03];
    write_frame(&hello.encode_to_vec(), &mut bytes).unwrap();
    ws.send(Message::Binary(bytes.into())).await.unwrap();
    assert!(closed_by_server(&mut ws).await);
    still_serves(&sb).await;
}

#[tokio::test]
async fn a_tampered_frame_ends_the_connection() {
    let sb = sandbox().await;
    let (_, _, mut client) = online(&sb, "5511999999999").await;
    // A frame of the right size whose tag cannot verify.
    client
        .send_raw(vec![
            0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ])
        .await;
    let (stanzas, _) = client.until_end().await;
    assert!(stanzas.is_empty());
    still_serves(&sb).await;
}

#[tokio::test]
async fn silent_clients_and_unscanned_codes_time_out() {
    let timing = Timing {
        handshake: Duration::from_millis(100),
        first_ref: Duration::ZERO,
        next_ref: Duration::from_millis(50),
        ref_count: 2,
        ..Timing::default()
    };
    let sb = Sandbox::start(SandboxConfig {
        timing,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (mut ws, _) = connect_async(sb.ws_url()).await.unwrap();
    assert!(
        closed_by_server(&mut ws).await,
        "no handshake within the limit"
    );
    let (mut client, refs) = register(&sb, &Companion::new()).await;
    assert_eq!(refs.len(), 2);
    let (stanzas, ended) = client.until_end().await;
    assert!(stanzas.is_empty());
    assert_eq!(ended, Ended::Clean, "closed once the last ref is over");
}
