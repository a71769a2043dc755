//! The websocket edge: the only file that names tungstenite. `wss://` goes through rustls with
//! bundled web PKI roots (no system OpenSSL); `ws://` is for the sandbox.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
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
    /// The TCP connection from the chosen source address failed.
    #[error("connect from the source address failed: {0}")]
    Io(std::io::Error),
    /// It took too long.
    #[error("websocket connect timed out after {0:?}")]
    Timeout(Duration),
}

pub use crate::cluster::TEST_EPOCH_HEADER;

/// Opens the websocket with WhatsApp Web's `Origin` header (and, from a debug build's cluster
/// node, [`TEST_EPOCH_HEADER`]). With `source`, the TCP connection leaves from that local
/// address (a host with several addresses, or nodes told apart by address).
pub async fn connect(
    url: &str,
    origin: &str,
    timeout: Duration,
    test_epoch: Option<u64>,
    source: Option<IpAddr>,
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
    let open = async move {
        match source {
            None => Ok(
                tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true)
                    .await?
                    .0,
            ),
            Some(source) => {
                let stream = tcp_from(source, req.uri()).await?;
                Ok(tokio_tungstenite::client_async_tls_with_config(
                    req,
                    stream,
                    Some(ws_config()),
                    None,
                )
                .await?
                .0)
            }
        }
    };
    match tokio::time::timeout(timeout, open).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout(timeout)),
    }
}

/// A TCP connection to the URI's host from `source`: the first resolved address of the same
/// family that accepts.
async fn tcp_from(source: IpAddr, uri: &Uri) -> Result<TcpStream, ConnectError> {
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::Request("the URL has no host".to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port))
        .await
        .map_err(ConnectError::Io)?
    {
        if addr.is_ipv4() != source.is_ipv4() {
            continue;
        }
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ConnectError::Io)?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(ConnectError::Io)?;
        match socket.connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Io(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no address of the source's family",
        )
    })))
}
