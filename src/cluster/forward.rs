//! Forwarded requests between nodes (design §6.5): the node that receives an API call for a
//! device another node owns passes it on over the cluster port, with the device, the epoch the
//! forwarder believes current, the caller's deadline and a hop count, all under an HMAC of the
//! cluster secret. The owner refuses what is not signed, what has travelled more than one hop
//! (a routing loop while ownership moves) and what is already past its deadline.
//!
//! What is signed, so the two ends agree byte for byte: the lines
//! `v1`, method, path and query, device, epoch, deadline (Unix milliseconds), hops and the
//! lowercase hex SHA-256 of the body, joined by `\n`; the header carries
//! `v1,<base64 HMAC-SHA256>`. Pure: `now` is an argument.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-wuts-forward";
/// The header naming the device.
pub const DEVICE_HEADER: &str = "x-wuts-device";
/// The header with the forwarder's view of the epoch.
pub const EPOCH_HEADER: &str = "x-wuts-epoch";
/// The header with the caller's deadline (Unix milliseconds).
pub const DEADLINE_HEADER: &str = "x-wuts-deadline";
/// The header counting hops.
pub const HOPS_HEADER: &str = "x-wuts-hops";
/// How many times a request may be forwarded.
pub const MAX_HOPS: u8 = 1;

/// The cluster's shared secret (at least 32 bytes), kept as the keyed MAC it is used as.
#[derive(Clone)]
pub struct ClusterSecret(Hmac<Sha256>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(redacted)")
    }
}

impl ClusterSecret {
    /// Wraps a secret; refuses one shorter than 32 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ForwardRefusal> {
        if bytes.len() < 32 {
            return Err(ForwardRefusal::WeakSecret);
        }
        <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
            .map(ClusterSecret)
            .map_err(|_| ForwardRefusal::WeakSecret)
    }
}

/// What a forwarded request carries besides itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardMeta {
    /// The device (the engine's id).
    pub device: u64,
    /// The epoch the forwarder saw as current.
    pub epoch: u64,
    /// The caller's deadline, Unix milliseconds.
    pub deadline_ms: u64,
    /// Hops so far, this one included.
    pub hops: u8,
}

/// Why a forwarded request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardRefusal {
    /// The secret is too short to protect the cluster port.
    #[error("the cluster secret must be at least 32 bytes")]
    WeakSecret,
    /// A forwarding header is missing or unreadable.
    #[error("a forwarded request lacks a readable {0} header")]
    Header(&'static str),
    /// The signature does not match.
    #[error("a forwarded request's signature does not match")]
    BadSignature,
    /// Forwarded more than [`MAX_HOPS`] times.
    #[error("a forwarded request travelled more than one hop")]
    TooManyHops,
    /// The caller's deadline has passed.
    #[error("a forwarded request arrived after its deadline")]
    Expired,
}

fn digest(
    secret: &ClusterSecret,
    method: &str,
    path: &str,
    meta: &ForwardMeta,
    body: &[u8],
) -> [u8; 32] {
    let body_hash = Sha256::digest(body);
    let mut m = secret.0.clone();
    m.update(b"v1\n");
    for part in [
        method.as_bytes(),
        path.as_bytes(),
        meta.device.to_string().as_bytes(),
        meta.epoch.to_string().as_bytes(),
        meta.deadline_ms.to_string().as_bytes(),
        meta.hops.to_string().as_bytes(),
    ] {
        m.update(part);
        m.update(b"\n");
    }
    let mut hex = [0u8; 64];
    for (i, byte) in body_hash.iter().enumerate() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex[2 * i] = DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    m.update(&hex);
    m.finalize().into_bytes().into()
}

/// The signature header's value for a request.
pub fn sign(
    secret: &ClusterSecret,
    method: &str,
    path: &str,
    meta: &ForwardMeta,
    body: &[u8],
) -> String {
    let tag = digest(secret, method, path, meta, body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Checks a forwarded request: signature first (nothing else is trusted before it), then the
/// hop count and the deadline against `now_ms`.
pub fn verify(
    secret: &ClusterSecret,
    method: &str,
    path: &str,
    meta: &ForwardMeta,
    body: &[u8],
    signature: &str,
    now_ms: u64,
) -> Result<(), ForwardRefusal> {
    let given = signature
        .strip_prefix("v1,")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .ok_or(ForwardRefusal::Header(SIGNATURE_HEADER))?;
    let expected = digest(secret, method, path, meta, body);
    if !bool::from(given.as_slice().ct_eq(&expected)) {
        return Err(ForwardRefusal::BadSignature);
    }
    if meta.hops > MAX_HOPS {
        return Err(ForwardRefusal::TooManyHops);
    }
    if now_ms >= meta.deadline_ms {
        return Err(ForwardRefusal::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ClusterSecret {
        ClusterSecret::new(vec![7; 32]).unwrap()
    }

    fn meta() -> ForwardMeta {
        ForwardMeta {
            device: 42,
            epoch: 3,
            deadline_ms: 1_000_000,
            hops: 1,
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let s = secret();
        let sig = sign(
            &s,
            "POST",
            "/groups?device_id=x",
            &meta(),
            b"{\"name\":\"a\"}",
        );
        assert!(sig.starts_with("v1,"));
        let ok = |m: &str, p: &str, meta: &ForwardMeta, body: &[u8]| {
            verify(&s, m, p, meta, body, &sig, 999_000)
        };
        assert_eq!(
            ok("POST", "/groups?device_id=x", &meta(), b"{\"name\":\"a\"}"),
            Ok(())
        );
        let bad = Err(ForwardRefusal::BadSignature);
        assert_eq!(
            ok("PUT", "/groups?device_id=x", &meta(), b"{\"name\":\"a\"}"),
            bad
        );
        assert_eq!(
            ok("POST", "/groups?device_id=y", &meta(), b"{\"name\":\"a\"}"),
            bad
        );
        assert_eq!(
            ok("POST", "/groups?device_id=x", &meta(), b"{\"name\":\"b\"}"),
            bad
        );
        for changed in [
            ForwardMeta {
                device: 43,
                ..meta()
            },
            ForwardMeta { epoch: 4, ..meta() },
            ForwardMeta {
                deadline_ms: 2_000_000,
                ..meta()
            },
            ForwardMeta { hops: 0, ..meta() },
        ] {
            assert_eq!(
                ok("POST", "/groups?device_id=x", &changed, b"{\"name\":\"a\"}"),
                bad
            );
        }
        let other = ClusterSecret::new(vec![8; 32]).unwrap();
        assert_eq!(
            verify(
                &other,
                "POST",
                "/groups?device_id=x",
                &meta(),
                b"{\"name\":\"a\"}",
                &sig,
                0
            ),
            bad
        );
    }

    #[test]
    fn loops_late_requests_and_garbage_are_refused() {
        let s = secret();
        let looped = ForwardMeta { hops: 2, ..meta() };
        let sig = sign(&s, "GET", "/status", &looped, b"");
        assert_eq!(
            verify(&s, "GET", "/status", &looped, b"", &sig, 0),
            Err(ForwardRefusal::TooManyHops)
        );
        let sig = sign(&s, "GET", "/status", &meta(), b"");
        assert_eq!(
            verify(&s, "GET", "/status", &meta(), b"", &sig, 1_000_000),
            Err(ForwardRefusal::Expired)
        );
        for garbage in ["", "v1,", "v1,!!!", "v2,AAAA", "AAAA"] {
            let got = verify(&s, "GET", "/status", &meta(), b"", garbage, 0);
            assert!(got.is_err(), "{garbage:?}");
        }
        assert_eq!(
            ClusterSecret::new(vec![1; 31]).unwrap_err(),
            ForwardRefusal::WeakSecret
        );
        assert_eq!(format!("{:?}", secret()), "ClusterSecret(redacted)");
    }

    #[test]
    fn the_signature_is_pinned() {
        // A known answer, computed independently (Python hmac + hashlib over the same lines).
        let sig = sign(&secret(), "POST", "/groups", &meta(), b"{}");
        assert_eq!(sig, PINNED);
    }

    const PINNED: &str = "v1,5K51e/RPQJHHMDkXuG6rVbwrMcnlIZN2fGlWK4vmfRQ=";
}
