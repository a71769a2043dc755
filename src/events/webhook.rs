//! Webhook configurations: where a user's (or one device's) events are POSTed, which ones, how
//! hard to retry, and the secret that signs them. The rules live here; `http` only reads the
//! JSON shape.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::model::EventName;

/// Attempts after the first, unless configured.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// Most retries a configuration may ask for.
pub const MAX_RETRY_ATTEMPTS: u32 = 20;
/// Per-attempt timeout in seconds, unless configured.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
/// Longest per-attempt timeout a configuration may ask for.
pub const MAX_TIMEOUT_SECS: u32 = 120;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Custom headers a configuration may carry.
pub const MAX_HEADERS: usize = 20;

/// Headers the gateway sets itself: a configuration may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A stored webhook configuration. The secret is kept to sign deliveries and never shown again
/// after the response that created it (nor in `Debug`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// `wh_...`.
    pub id: String,
    /// Where deliveries go (http or https).
    pub webhook_url: String,
    /// Which events are delivered.
    pub enabled_events: Vec<EventName>,
    /// Off: nothing is delivered (events still reach the outbox and the stream).
    pub enabled: bool,
    /// Attempts after the first.
    pub retry_attempts: u32,
    /// Per-attempt timeout, seconds.
    pub timeout: u32,
    /// The signing secret.
    pub secret: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("id", &self.id)
            .field("webhook_url", &self.webhook_url)
            .field("enabled_events", &self.enabled_events)
            .field("enabled", &self.enabled)
            .field("retry_attempts", &self.retry_attempts)
            .field("timeout", &self.timeout)
            .field("secret", &"<redacted>")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Whether `event` is delivered under this configuration.
    pub fn wants(&self, event: EventName) -> bool {
        self.enabled && self.enabled_events.contains(&event)
    }

    /// Whether the event named `name` is delivered under this configuration.
    pub fn wants_name(&self, name: &str) -> bool {
        EventName::parse(name).is_some_and(|event| self.wants(event))
    }

    /// The configuration as stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored configuration read back; `None` if it does not read (it is then ignored).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, the form the Standard
/// Webhooks libraries expect.
pub fn generate_secret(random: [u8; 32]) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random)
    )
}

/// The HMAC key of a secret: the bytes after `whsec_` base64-decoded when they decode (the
/// Standard Webhooks convention), else the secret's own UTF-8 bytes.
pub fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Why a webhook setting is refused (field, sentence).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a webhook URL: http(s), a host, not private unless allowed. Hosts that are names are
/// checked again on the resolved address at delivery time.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), Invalid> {
    let field = "webhook_url";
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_URL_LEN} characters"),
        ));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| invalid(field, "is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid(field, "must be an http or https URL")),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(field, "must name a host"))?;
    if url.contains('@') && uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid(field, "must not carry credentials"));
    }
    if !allow_private {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let private = match literal.parse::<IpAddr>() {
            Ok(ip) => !is_public(ip),
            Err(_) => {
                let lower = literal.to_ascii_lowercase();
                lower == "localhost" || lower.ends_with(".localhost")
            }
        };
        if private {
            return Err(invalid(
                field,
                "targets a private, loopback or link-local address (allowed only with --webhook-allow-private)",
            ));
        }
    }
    Ok(())
}

/// Checks the event list: at least one, every one known.
pub fn check_events(names: &[String]) -> Result<Vec<EventName>, Invalid> {
    if names.is_empty() {
        return Err(invalid("enabled_events", "at least one event is required"));
    }
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match EventName::parse(name) {
            Some(event) if !out.contains(&event) => out.push(event),
            Some(_) => {}
            None => {
                return Err(invalid(
                    format!("enabled_events[{i}]"),
                    format!("unknown event {name:?} (GET /webhook/events lists them)"),
                ));
            }
        }
    }
    Ok(out)
}

/// Checks custom headers: valid names and values, none the gateway sets itself.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), Invalid> {
    if headers.len() > MAX_HEADERS {
        return Err(invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (name, value) in headers {
        let field = format!("headers.{name}");
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(invalid(field, "is not a valid header name"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(invalid(field, "is set by the gateway"));
        }
        if value.len() > 1024 || hyper::header::HeaderValue::from_str(value).is_err() {
            return Err(invalid(field, "is not a valid header value"));
        }
    }
    Ok(())
}

/// Checks a caller-chosen secret.
pub fn check_secret(secret: &str) -> Result<(), Invalid> {
    if !(16..=256).contains(&secret.len()) || !secret.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(invalid(
            "secret",
            "must be 16 to 256 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Whether an address is on the public internet: not private, loopback, link-local,
/// unspecified, shared (CGNAT), multicast, broadcast or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_and_public_unless_allowed() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_url("http://93.184.216.34:8080/x", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/x",
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://user:pw@example.com/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
        assert!(check_url("ftp://127.0.0.1/", true).is_err());
    }

    #[test]
    fn events_and_headers_are_checked() {
        assert_eq!(
            check_events(&["device.connected".into(), "device.connected".into()]),
            Ok(vec![EventName::DeviceConnected])
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["nope".into()]).is_err());
        let mut headers = BTreeMap::new();
        headers.insert("X-Tenant".to_owned(), "acme".to_owned());
        assert!(check_headers(&headers).is_ok());
        headers.insert("Webhook-Id".to_owned(), "x".to_owned());
        assert!(check_headers(&headers).is_err());
    }

    #[test]
    fn whsec_secrets_sign_with_their_decoded_bytes() {
        let secret = generate_secret([7; 32]);
        assert!(secret.starts_with("whsec_"));
        assert_eq!(signing_key(&secret), vec![7; 32]);
        assert_eq!(
            signing_key("plain-secret-123"),
            b"plain-secret-123".to_vec()
        );
    }
}
