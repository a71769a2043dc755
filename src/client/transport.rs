//! The websocket edge: the only file that names tungstenite. `wss://` goes through rustls with
//! bundled web PKI roots (no system OpenSSL); `ws://` is for the sandbox.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected websocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Small buffers: an idle device should cost little memory. WhatsApp frames are below 16 MiB.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL or a header is invalid.
    #[error("invalid websocket request: {0}")]
    Request(String),
    /// The connection or upgrade failed.
    #[error("websocket connect failed: {0}")]
    Connect(#[from] tokio_tungstenite::tungstenite::Error),
    /// It took too long.
    #[error("websocket connect timed out after {0:?}")]
    Timeout(Duration),
}

pub use crate::cluster::TEST_EPOCH_HEADER;

/// Opens the websocket with WhatsApp Web's `Origin` header (and, from a debug build's cluster
/// node, [`TEST_EPOCH_HEADER`]).
pub async fn connect(
    url: &str,
    origin: &str,
    timeout: Duration,
    test_epoch: Option<u64>,
) -> Result<Socket, ConnectError> {
    let mut req = url
        .into_client_request()
        .map_err(|e| ConnectError::Request(e.to_string()))?;
    let origin = HeaderValue::from_str(origin).map_err(|e| ConnectError::Request(e.to_string()))?;
    req.headers_mut().insert("Origin", origin);
    if let Some(epoch) = test_epoch {
        req.headers_mut()
            .insert(TEST_EPOCH_HEADER, HeaderValue::from(epoch));
    }
    let fut = tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true);
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => Ok(r?.0),
        Err(_) => Err(ConnectError::Timeout(timeout)),
    }
}
