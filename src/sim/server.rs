//! The listener: one axum router serving the websocket at `/ws/chat` and the JSON control API
//! under `/control`, on the same address.

use std::sync::Arc;

use axum::Router;
use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::any;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::audit::{PEER, Peer};
use super::conn;
use super::control::{self, ControlState};
use super::shared::Shared;

/// The websocket path clients use (facts sheet 1.1).
pub const WS_PATH: &str = "/ws/chat";
/// Where the control API lives.
pub const CONTROL_PATH: &str = "/control";

/// Per-connection websocket buffers. Stanzas are small and tungstenite's defaults (128 KiB
/// each way) would cost gigabytes at 10,000 connections; the buffers still grow on demand.
const WS_READ_BUFFER: usize = 4 * 1024;
const WS_WRITE_BUFFER: usize = 0;
/// Largest websocket message accepted: a frame can be at most 2^24 bytes plus its header.
const WS_MAX_MESSAGE: usize = (1 << 24) + 8;

/// What the websocket half needs.
#[derive(Clone)]
struct WsState {
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    /// Held by every connection task (and the router), so the receiver sees when all are gone.
    alive: mpsc::Sender<()>,
}

/// The router for both halves.
fn router(ws: WsState, control: ControlState) -> Router {
    Router::new()
        .route(WS_PATH, any(upgrade))
        .with_state(ws)
        .nest(CONTROL_PATH, control::router(control))
}

async fn upgrade(
    State(app): State<WsState>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = Peer {
        source: Some(source),
        epoch: headers
            .get(crate::cluster::TEST_EPOCH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    // Any Origin is accepted: whatsapp-rust can connect without one (facts sheet 11.16).
    ws.read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| {
            PEER.scope(peer, async move {
                conn::serve(app.shared, socket, app.stop).await;
                drop(app.alive);
            })
        })
}

/// Serves `listener` until `stop` turns true; connection tasks watch the same signal.
/// `info` is what `GET /control/info` answers. Returns the server task, and a receiver whose
/// `recv` gives `None` once the server and every connection task have finished.
pub(crate) fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    info: Arc<serde_json::Value>,
) -> (JoinHandle<std::io::Result<()>>, mpsc::Receiver<()>) {
    let (alive, finished) = mpsc::channel(1);
    let control = ControlState {
        shared: shared.clone(),
        info,
    };
    let app = router(
        WsState {
            shared,
            stop: stop.clone(),
            alive,
        },
        control,
    );
    let mut stop = stop;
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    (task, finished)
}
