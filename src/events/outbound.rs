//! One webhook POST: resolve, check every address (no private targets unless allowed, so a
//! name that resolves to an internal address, or is rebound to one, is refused), connect to the
//! checked address, TLS for https (rustls, Mozilla roots), one HTTP/1.1 exchange, and at most
//! [`BODY_CAP`] bytes of the answer read. The whole attempt has one deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::webhook::is_public;

/// Most bytes of a receiver's answer read; the rest is dropped with the connection.
pub(crate) const BODY_CAP: usize = 64 * 1024;
/// Most bytes of the answer kept for the delivery log.
const EXCERPT: usize = 512;

/// What to send.
pub(crate) struct Request {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) timeout: Duration,
    pub(crate) allow_private: bool,
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// `Retry-After`, in seconds or as an HTTP-date.
    pub(crate) retry_after: Option<Duration>,
    /// The start of the body, for the delivery log.
    pub(crate) excerpt: String,
}

/// Why an attempt got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("the webhook URL is not valid")]
    Url,
    #[error("the receiver's host did not resolve")]
    Resolve,
    #[error("the receiver resolved only to private, loopback or link-local addresses")]
    Private,
    #[error("could not connect to the receiver: {0}")]
    Connect(std::io::Error),
    #[error("TLS with the receiver failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange with the receiver failed: {0}")]
    Http(hyper::Error),
    #[error("the request could not be built")]
    Build,
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Client TLS settings, built once.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder,
        // ring supports the default versions; fall back to the process default provider.
        Err(_) => rustls::ClientConfig::builder(),
    };
    Arc::new(config.with_root_certificates(roots).with_no_client_auth())
}

/// Sends one request within its timeout.
pub(crate) async fn post(
    request: Request,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Answer, Failure> {
    let timeout = request.timeout;
    tokio::time::timeout(timeout, attempt(request, tls))
        .await
        .unwrap_or(Err(Failure::Timeout(timeout)))
}

async fn attempt(request: Request, tls: &Arc<rustls::ClientConfig>) -> Result<Answer, Failure> {
    let uri: Uri = request.url.parse().map_err(|_| Failure::Url)?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(Failure::Url),
    };
    let host = uri.host().ok_or(Failure::Url)?.to_owned();
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host.as_str(), port))
        .await
        .map_err(|_| Failure::Resolve)?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::Resolve);
    }
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| request.allow_private || is_public(a.ip()))
        .collect();
    let Some(addr) = allowed.first().copied() else {
        return Err(Failure::Private);
    };
    let tcp = TcpStream::connect(addr).await.map_err(Failure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or(host);
    if https {
        let name = rustls::pki_types::ServerName::try_from(bare_host).map_err(|_| Failure::Url)?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(Failure::Tls)?;
        exchange(stream, &uri, &authority, request).await
    } else {
        exchange(tcp, &uri, &authority, request).await
    }
}

async fn exchange<S>(
    stream: S,
    uri: &Uri,
    authority: &str,
    request: Request,
) -> Result<Answer, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Failure::Http)?;
    let driver = tokio::spawn(connection);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("wuts-webhooks/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let http_request = builder
        .body(Full::new(Bytes::from(request.body)))
        .map_err(|_| Failure::Build)?;
    let result = read_answer(sender.send_request(http_request).await).await;
    driver.abort();
    result
}

/// A `Retry-After` value: delay-seconds, or an HTTP-date (then the time until it, zero if past).
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let at = std::time::SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

async fn read_answer(
    sent: Result<hyper::Response<hyper::body::Incoming>, hyper::Error>,
) -> Result<Answer, Failure> {
    let response = sent.map_err(Failure::Http)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, std::time::SystemTime::now()));
    let mut body = response.into_body();
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read < BODY_CAP {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read += data.len();
                    let room = EXCERPT.saturating_sub(kept.len());
                    kept.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
                }
            }
            // A body cut short still carried its status: that decides the attempt.
            Some(Err(_)) | None => break,
        }
    }
    Ok(Answer {
        status,
        retry_after,
        excerpt: String::from_utf8_lossy(&kept).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> Request {
        Request {
            url: url.to_owned(),
            headers: Vec::new(),
            body: b"{}".to_vec(),
            timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 07:28:00
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn private_addresses_are_refused_after_resolution() {
        let tls = tls_config();
        // A literal, and a name that resolves to loopback: both are checked on the address.
        for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook"] {
            let result = post(request(url), &tls).await;
            assert!(matches!(result, Err(Failure::Private)), "{url}: {result:?}");
        }
        assert!(matches!(
            post(request("ftp://example.com/"), &tls).await,
            Err(Failure::Url)
        ));
    }
}
