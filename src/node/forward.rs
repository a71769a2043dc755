//! Passing an API call to the node that owns its device, and checking such calls on arrival
//! (the rules and the signature are in [`crate::cluster::forward`]).
//!
//! One HTTP/1.1 exchange per call on a fresh loopback-or-LAN connection: forwarding is the
//! exception (a load balancer usually lands on the owner half the time or more), and a pool
//! would need its own health rules. The whole exchange is bounded by the caller's deadline,
//! and the owner's answer body is capped.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::cluster::forward::{
    ClusterSecret, DEADLINE_HEADER, DEVICE_HEADER, EPOCH_HEADER, ForwardMeta, ForwardRefusal,
    HOPS_HEADER, SIGNATURE_HEADER, sign, verify,
};

/// The largest answer body a forward reads (group metadata of large groups fits well).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Headers of the caller's request that travel with it (the rest is hop-by-hop or ours).
const KEPT: [&str; 4] = ["authorization", "content-type", "idempotency-key", "accept"];

/// Why a forward failed. None of these reached the owner's engine except `Timeout`, which
/// may have: the caller answers `OUTCOME_UNKNOWN` for a write then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The owner could not be reached.
    #[error("the owning node at {addr} could not be reached")]
    Connect {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The owner did not answer before the caller's deadline.
    #[error("the owning node did not answer before the deadline")]
    Timeout,
    /// The exchange broke off.
    #[error("the exchange with the owning node failed")]
    Exchange(#[source] hyper::Error),
    /// The owner's answer was larger than [`MAX_ANSWER`].
    #[error("the owning node's answer was too large")]
    TooLarge,
    /// The request could not be built (a header value we cannot send).
    #[error("the request could not be forwarded as it is")]
    Unsendable,
}

/// The caller's request, as it will be forwarded.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The caller's headers (only [`KEPT`] ones travel).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// The owner's answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Forwards `request` to the owner at `to`, signed with `secret`, bounded by `meta`'s deadline.
pub async fn forward(
    secret: &ClusterSecret,
    to: SocketAddr,
    request: &Outgoing,
    meta: &ForwardMeta,
) -> Result<Answer, ForwardError> {
    let left = Duration::from_millis(meta.deadline_ms.saturating_sub(unix_ms()));
    tokio::time::timeout(left, exchange(secret, to, request, meta))
        .await
        .unwrap_or(Err(ForwardError::Timeout))
}

/// Sends the request and reads the answer's head; the body is left to the caller.
async fn open(
    secret: &ClusterSecret,
    to: SocketAddr,
    request: &Outgoing,
    meta: &ForwardMeta,
) -> Result<(hyper::Response<Incoming>, tokio::task::JoinHandle<()>), ForwardError> {
    let signature = sign(
        secret,
        request.method.as_str(),
        &request.path,
        meta,
        &request.body,
    );
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(&request.path)
        .header("host", to.to_string());
    for name in KEPT {
        for value in request.headers.get_all(name) {
            builder = builder.header(name, value);
        }
    }
    let built = builder
        .header(DEVICE_HEADER, meta.device)
        .header(EPOCH_HEADER, meta.epoch)
        .header(DEADLINE_HEADER, meta.deadline_ms)
        .header(HOPS_HEADER, u16::from(meta.hops))
        .header(SIGNATURE_HEADER, signature)
        .body(Full::new(request.body.clone()))
        .map_err(|_| ForwardError::Unsendable)?;
    let stream = tokio::net::TcpStream::connect(to)
        .await
        .map_err(|source| ForwardError::Connect { addr: to, source })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ForwardError::Exchange)?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender
        .send_request(built)
        .await
        .map_err(ForwardError::Exchange)?;
    Ok((response, driver))
}

async fn exchange(
    secret: &ClusterSecret,
    to: SocketAddr,
    request: &Outgoing,
    meta: &ForwardMeta,
) -> Result<Answer, ForwardError> {
    let (response, driver) = open(secret, to, request, meta).await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|_| ForwardError::TooLarge)?
        .to_bytes();
    driver.abort();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Like [`forward`] for a stream (server-sent events): the deadline covers reaching the
/// owner's answer head; the body then flows through for as long as the owner keeps it open.
pub async fn forward_stream(
    secret: &ClusterSecret,
    to: SocketAddr,
    request: &Outgoing,
    meta: &ForwardMeta,
) -> Result<hyper::Response<Incoming>, ForwardError> {
    let left = Duration::from_millis(meta.deadline_ms.saturating_sub(unix_ms()));
    match tokio::time::timeout(left, open(secret, to, request, meta)).await {
        // The connection task ends by itself when the stream does.
        Ok(opened) => opened.map(|(response, _driver)| response),
        Err(_) => Err(ForwardError::Timeout),
    }
}

fn header<T: std::str::FromStr>(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<T, ForwardRefusal> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(ForwardRefusal::Header(name))
}

/// On the owner: `None` for a direct call (no forwarding header), the checked metadata for a
/// forwarded one, or why it is refused. `path` is the path and query as received.
pub fn check_forwarded(
    secret: &ClusterSecret,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
) -> Result<Option<ForwardMeta>, ForwardRefusal> {
    let Some(signature) = headers.get(SIGNATURE_HEADER) else {
        return Ok(None);
    };
    let signature = signature
        .to_str()
        .map_err(|_| ForwardRefusal::Header(SIGNATURE_HEADER))?;
    let meta = ForwardMeta {
        device: header(headers, DEVICE_HEADER)?,
        epoch: header(headers, EPOCH_HEADER)?,
        deadline_ms: header(headers, DEADLINE_HEADER)?,
        hops: header(headers, HOPS_HEADER)?,
    };
    verify(
        secret,
        method.as_str(),
        path,
        &meta,
        body,
        signature,
        now_ms,
    )?;
    Ok(Some(meta))
}
