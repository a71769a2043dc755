//! The two signatures of a delivery, both HMAC-SHA256 with the configuration's key
//! ([`super::webhook::signing_key`]):
//!
//! 1. **Body field** (the hosted WUTS API's `signature: "sha256=<hex>"`). The envelope is
//!    serialised as compact JSON `E` (`{...}`); the body sent is `E` with its closing `}`
//!    replaced by `,"signature":"sha256=<hex>"}`, where `<hex>` is the lowercase hex
//!    HMAC-SHA256 of `E`. To verify, cut the last [`SIGNATURE_SUFFIX_LEN`] bytes from the raw
//!    body, append `}`, and compare the HMAC of that with the hex. (The signature member is
//!    always the last one and always exactly that long.) Without a secret there is no field.
//! 2. **Standard Webhooks** headers: `webhook-id` (the envelope's `id`, the same on every
//!    attempt), `webhook-timestamp` (Unix seconds of this attempt) and
//!    `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">`, so the
//!    Standard Webhooks libraries verify deliveries as they are.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of `,"signature":"sha256=` + 64 hex digits + `"}`.
pub const SIGNATURE_SUFFIX_LEN: usize = 87;

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of every length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_mac(),
    }
}

#[allow(clippy::panic)]
fn unreachable_mac() -> Hmac<Sha256> {
    // `new_from_slice` fails only for fixed-size-key MACs; HMAC has none.
    panic!("HMAC-SHA256 rejected a key")
}

/// The body to send: `envelope` (compact JSON) with the `signature` member when there is a key.
pub fn signed_body(envelope: &[u8], key: Option<&[u8]>) -> Vec<u8> {
    let Some(key) = key else {
        return envelope.to_vec();
    };
    let mut m = mac(key);
    m.update(envelope);
    let hex = hex(&m.finalize().into_bytes());
    let head = envelope.strip_suffix(b"}").unwrap_or(envelope);
    let mut out = Vec::with_capacity(head.len() + SIGNATURE_SUFFIX_LEN);
    out.extend_from_slice(head);
    out.extend_from_slice(b",\"signature\":\"sha256=");
    out.extend_from_slice(hex.as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

/// The `webhook-signature` header value for one attempt.
pub fn standard_signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    )
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_signature_covers_the_envelope_and_is_last() {
        let envelope = br#"{"id":"e","event":"device.connected","data":{}}"#;
        let body = signed_body(envelope, Some(b"key"));
        let cut = body.len() - SIGNATURE_SUFFIX_LEN;
        let mut signed = body[..cut].to_vec();
        signed.push(b'}');
        assert_eq!(signed, envelope);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut m = mac(b"key");
        m.update(envelope);
        let expected = format!("sha256={}", hex(&m.finalize().into_bytes()));
        assert_eq!(json["signature"], expected.as_str());
        assert_eq!(signed_body(envelope, None), envelope);
    }

    #[test]
    fn standard_signature_is_v1_base64() {
        let sig = standard_signature(b"k", "msg_1", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1,"));
        assert_eq!(sig.len(), 3 + 44);
    }
}
