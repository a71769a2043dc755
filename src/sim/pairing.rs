//! The simulated phone: it reads a companion's QR code, plays the primary device's part of QR
//! pairing and checks the companion's answer exactly, as the real phone does (facts sheet
//! protocol-connection.md 6.3–6.10).
//!
//! Pure functions over keys and nodes; the connection task routes the stanzas and the state
//! decides which account and device number are used. Any failed check fails the pairing: the
//! caller never registers a device whose `pair-device-sign` did not verify.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use prost::Message;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;

pub use super::pairing_error::PairingError;
use super::stanzas;
use crate::binary::{Jid, Node};
use crate::noise::xeddsa;
use crate::noise::{KeyPair, PublicKey};
use crate::proto::waadv::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

/// URL prefix of the QR format in use since May 2026 (whatsmeow, Baileys). Optional: the older
/// and the whatsapp-rust forms have none.
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";

/// Refs sent in one `pair-device` (whatsmeow expects exactly six).
pub const REF_COUNT: usize = 6;

/// Prefix of the account signature over a companion's identity (non-hosted account).
const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
/// Prefix of the companion's device signature (whatsmeow and Baileys always use it).
const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];

/// What a companion's QR code says.
#[derive(Clone, PartialEq, Eq)]
pub struct Qr {
    /// The ref from `pair-device` that the code shows.
    pub pairing_ref: String,
    /// The companion's Noise static key: must be the key of the connection that got the ref.
    pub noise_key: PublicKey,
    /// The companion's identity key: the account signs it.
    pub identity_key: PublicKey,
    /// The ADV secret: the HMAC key of `pair-success`.
    pub adv_secret: [u8; 32],
    /// The client-type character of the 5-field forms (`1` Chrome, `9` other web, ...).
    pub client_type: Option<char>,
}

impl fmt::Debug for Qr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qr")
            .field("pairing_ref", &self.pairing_ref)
            .field("noise_key", &self.noise_key)
            .field("identity_key", &self.identity_key)
            .field("adv_secret", &"<redacted>")
            .field("client_type", &self.client_type)
            .finish()
    }
}

/// Parses a QR code: optional URL prefix, then `REF,NOISE,IDENTITY,ADV[,CLIENTTYPE]` with the
/// keys in standard padded base64 (facts sheet 6.3). Both the 4- and 5-field forms are accepted,
/// as the real phone still reads both.
pub fn parse_qr(text: &str) -> Result<Qr, PairingError> {
    let body = text.trim();
    let body = body.strip_prefix(QR_PREFIX).unwrap_or(body);
    let fields: Vec<&str> = body.split(',').collect();
    let (pairing_ref, noise, identity, adv, client_type) = match fields.as_slice() {
        [r, n, i, a] => (*r, *n, *i, *a, None),
        [r, n, i, a, t] => (*r, *n, *i, *a, Some(*t)),
        _ => {
            return Err(PairingError::BadQr(
                "expected 4 or 5 comma-separated fields",
            ));
        }
    };
    if pairing_ref.is_empty() {
        return Err(PairingError::BadQr("empty ref"));
    }
    let client_type = match client_type {
        None => None,
        Some(t) => {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c.is_ascii_lowercase() => Some(c),
                _ => return Err(PairingError::BadQr("client type is not one character")),
            }
        }
    };
    Ok(Qr {
        pairing_ref: pairing_ref.to_owned(),
        noise_key: PublicKey::from_bytes(key32(noise, "noise key is not 32 bytes of base64")?),
        identity_key: PublicKey::from_bytes(key32(
            identity,
            "identity key is not 32 bytes of base64",
        )?),
        adv_secret: key32(adv, "ADV secret is not 32 bytes of base64")?,
        client_type,
    })
}

fn key32(b64: &str, what: &'static str) -> Result<[u8; 32], PairingError> {
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| PairingError::BadQr(what))?;
    <[u8; 32]>::try_from(bytes).map_err(|_| PairingError::BadQr(what))
}

/// Formats a QR code the way whatsmeow and Baileys do (prefix and five fields); for tests and
/// tools that play the companion.
pub fn format_qr(
    pairing_ref: &str,
    noise: &PublicKey,
    identity: &PublicKey,
    adv: &[u8; 32],
) -> String {
    format!(
        "{QR_PREFIX}{pairing_ref},{},{},{},9",
        STANDARD.encode(noise.as_bytes()),
        STANDARD.encode(identity.as_bytes()),
        STANDARD.encode(adv)
    )
}

/// A fresh ref: `2@` and 80 base64 characters, the shape of real refs. Never contains a comma,
/// so it cannot break the QR format.
pub fn new_ref(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 60];
    rng.fill_bytes(&mut bytes);
    format!("2@{}", STANDARD.encode(bytes))
}

/// Checks a phone number: digits only, 7 to 15 of them (E.164), no leading zero.
pub fn check_phone(phone: &str) -> Result<(), PairingError> {
    let ok = (7..=15).contains(&phone.len())
        && phone.bytes().all(|b| b.is_ascii_digit())
        && !phone.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(PairingError::BadPhone(phone.to_owned()))
    }
}

/// What the phone needs to answer a scan.
#[derive(Debug)]
pub struct Offer<'a> {
    /// The account's identity key pair (the primary device's).
    pub account: &'a KeyPair,
    /// The scanned code.
    pub qr: &'a Qr,
    /// The account's ADV raw id (one per account).
    pub raw_id: u32,
    /// The key index given to this companion (1 and up, one per linked device).
    pub key_index: u32,
    /// Unix seconds.
    pub timestamp: u64,
    /// The companion's phone-number device JID (`phone:N@s.whatsapp.net`).
    pub device: Jid,
    /// The companion's LID device JID (`lid:N@lid`).
    pub lid: Jid,
    /// Shown in `<platform name>`: `android`, `iphone`, `smba`, `smbi`.
    pub platform: &'a str,
    /// Shown in `<biz name>` for business accounts.
    pub business_name: Option<&'a str>,
}

/// What the phone remembers until the companion's `pair-device-sign` arrives.
#[derive(Clone, Debug)]
pub struct PendingSign {
    /// Id of the `pair-success` IQ; the reply carries it.
    pub iq_id: String,
    /// The key index the phone issued.
    pub key_index: u32,
    details: Vec<u8>,
    account_signature: Vec<u8>,
    account_key: PublicKey,
    identity_key: PublicKey,
}

/// Builds the `pair-success` IQ (facts sheet 6.10 steps 1–5) and what is needed to check the
/// answer.
pub fn pair_success(
    offer: &Offer<'_>,
    iq_id: &str,
    rng: &mut (impl RngCore + CryptoRng),
) -> (Node, PendingSign) {
    let e2ee = Some(AdvEncryptionType::E2ee as i32);
    // The real server writes the zero-valued enums explicitly (facts sheet 6.5).
    let details = AdvDeviceIdentity {
        raw_id: Some(offer.raw_id),
        timestamp: Some(offer.timestamp),
        key_index: Some(offer.key_index),
        account_type: e2ee,
        device_type: e2ee,
    }
    .encode_to_vec();
    let mut msg = Vec::with_capacity(2 + details.len() + 32);
    msg.extend_from_slice(&ACCOUNT_SIGNATURE_PREFIX);
    msg.extend_from_slice(&details);
    msg.extend_from_slice(offer.qr.identity_key.as_bytes());
    let account_signature = xeddsa::sign_with_rng(offer.account.secret(), &msg, rng);
    let signed = AdvSignedDeviceIdentity {
        details: Some(details.clone()),
        account_signature_key: Some(offer.account.public().as_bytes().to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let container = AdvSignedDeviceIdentityHmac {
        hmac: Some(hmac_sha256(&offer.qr.adv_secret, &signed).to_vec()),
        details: Some(signed),
        account_type: e2ee,
    }
    .encode_to_vec();

    let mut children = vec![
        Node::new("device-identity").with_bytes(container),
        Node::new("device")
            .with_attr("jid", offer.device.clone())
            .with_attr("lid", offer.lid.clone()),
        Node::new("platform").with_attr("name", offer.platform),
    ];
    if let Some(name) = offer.business_name {
        children.push(Node::new("biz").with_attr("name", name));
    }
    let node = Node::new("iq")
        .with_attr("from", stanzas::server_jid())
        .with_attr("id", iq_id)
        .with_attr("type", "set")
        .with_attr("xmlns", "md")
        .with_attr("t", offer.timestamp.to_string())
        .with_children(vec![Node::new("pair-success").with_children(children)]);
    let pending = PendingSign {
        iq_id: iq_id.to_owned(),
        key_index: offer.key_index,
        details,
        account_signature: account_signature.to_vec(),
        account_key: *offer.account.public(),
        identity_key: offer.qr.identity_key,
    };
    (node, pending)
}

/// Checks the companion's answer to `pair-success` (facts sheet 6.7, 6.10 step 6) and returns
/// the full signed device identity it sent. The caller matched the IQ id already.
pub fn verify_sign(pending: &PendingSign, reply: &Node) -> Result<Vec<u8>, PairingError> {
    match reply.attr("type").map(|t| t.as_str()) {
        Some(t) if t == "result" => {}
        Some(t) if t == "error" => {
            let err = reply.child("error");
            let code = err
                .and_then(|e| e.attr("code"))
                .and_then(|c| c.as_str().parse().ok())
                .unwrap_or(0);
            let text = err
                .and_then(|e| e.attr("text"))
                .map(|t| t.as_str().into_owned())
                .unwrap_or_default();
            return Err(PairingError::Refused { code, text });
        }
        _ => {
            return Err(PairingError::Malformed(
                "iq type is neither result nor error",
            ));
        }
    }
    let identity = reply
        .child("pair-device-sign")
        .ok_or(PairingError::Malformed("no pair-device-sign child"))?
        .child("device-identity")
        .ok_or(PairingError::Malformed("no device-identity child"))?;
    let key_index = identity.attr("key-index").map(|k| k.as_str().into_owned());
    if key_index.as_deref() != Some(pending.key_index.to_string().as_str()) {
        return Err(PairingError::KeyIndex {
            expected: pending.key_index,
            got: key_index,
        });
    }
    let bytes = identity
        .content_bytes()
        .ok_or(PairingError::Malformed("device-identity has no content"))?
        .into_owned();
    let signed = AdvSignedDeviceIdentity::decode(bytes.as_slice())
        .map_err(|_| PairingError::Malformed("device-identity is not ADVSignedDeviceIdentity"))?;
    if signed.details.as_deref() != Some(pending.details.as_slice()) {
        return Err(PairingError::DetailsChanged);
    }
    if signed.account_signature.as_deref() != Some(pending.account_signature.as_slice()) {
        return Err(PairingError::AccountSignatureChanged);
    }
    // whatsmeow and Baileys strip the account key, whatsapp-rust keeps it: both are accepted,
    // but a present key must be the account's.
    if let Some(key) = &signed.account_signature_key {
        if key.as_slice() != pending.account_key.as_bytes() {
            return Err(PairingError::AccountKeyChanged);
        }
    }
    let device_signature = signed
        .device_signature
        .as_deref()
        .ok_or(PairingError::DeviceSignature)?;
    let mut msg = Vec::with_capacity(2 + pending.details.len() + 64);
    msg.extend_from_slice(&DEVICE_SIGNATURE_PREFIX);
    msg.extend_from_slice(&pending.details);
    msg.extend_from_slice(pending.identity_key.as_bytes());
    msg.extend_from_slice(pending.account_key.as_bytes());
    if !xeddsa::verify(&pending.identity_key, &msg, device_signature) {
        return Err(PairingError::DeviceSignature);
    }
    Ok(bytes)
}

/// HMAC-SHA256, as the ADV container uses it (keyed with the ADV secret).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .expect("invariant: HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::jid::{SERVER_LID, SERVER_PN};
    use crate::noise::SecretKey;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    struct Companion {
        noise: KeyPair,
        identity: KeyPair,
        adv: [u8; 32],
    }

    fn companion() -> Companion {
        Companion {
            noise: KeyPair::from_secret(SecretKey::from_bytes([1; 32])),
            identity: KeyPair::from_secret(SecretKey::from_bytes([2; 32])),
            adv: [3; 32],
        }
    }

    fn offer_for<'a>(account: &'a KeyPair, qr: &'a Qr) -> Offer<'a> {
        Offer {
            account,
            qr,
            raw_id: 77,
            key_index: 4,
            timestamp: 1_700_000_000,
            device: Jid::with_device("5511999999999", SERVER_PN, 3),
            lid: Jid::with_device("100000000000001", SERVER_LID, 3),
            platform: "android",
            business_name: Some("Shop"),
        }
    }

    /// What a companion does with pair-success (facts sheet 6.6), returning its reply.
    fn answer(
        c: &Companion,
        success: &Node,
        tamper: impl Fn(&mut AdvSignedDeviceIdentity),
    ) -> Node {
        let ps = success.child("pair-success").unwrap();
        let container_bytes = ps
            .child("device-identity")
            .unwrap()
            .content_bytes()
            .unwrap();
        let container = AdvSignedDeviceIdentityHmac::decode(container_bytes.as_ref()).unwrap();
        let signed_bytes = container.details.unwrap();
        assert_eq!(container.hmac.unwrap(), hmac_sha256(&c.adv, &signed_bytes));
        let mut signed = AdvSignedDeviceIdentity::decode(signed_bytes.as_slice()).unwrap();
        let details = signed.details.clone().unwrap();
        let account_key =
            PublicKey::from_slice(signed.account_signature_key.as_ref().unwrap()).unwrap();
        let mut msg = ACCOUNT_SIGNATURE_PREFIX.to_vec();
        msg.extend_from_slice(&details);
        msg.extend_from_slice(c.identity.public().as_bytes());
        assert!(xeddsa::verify(
            &account_key,
            &msg,
            signed.account_signature.as_ref().unwrap()
        ));
        let identity = AdvDeviceIdentity::decode(details.as_slice()).unwrap();
        let mut msg = DEVICE_SIGNATURE_PREFIX.to_vec();
        msg.extend_from_slice(&details);
        msg.extend_from_slice(c.identity.public().as_bytes());
        msg.extend_from_slice(account_key.as_bytes());
        signed.device_signature = Some(xeddsa::sign(c.identity.secret(), &msg, &[5; 64]).to_vec());
        signed.account_signature_key = None;
        tamper(&mut signed);
        Node::new("iq")
            .with_attr("to", stanzas::server_jid())
            .with_attr("id", "9")
            .with_attr("type", "result")
            .with_children(vec![Node::new("pair-device-sign").with_children(vec![
                Node::new("device-identity")
                    .with_attr("key-index", identity.key_index.unwrap().to_string())
                    .with_bytes(signed.encode_to_vec()),
            ])])
    }

    #[test]
    fn parses_every_qr_form() {
        let c = companion();
        let full = format_qr("2@abc", c.noise.public(), c.identity.public(), &c.adv);
        let qr = parse_qr(&full).unwrap();
        assert_eq!(qr.pairing_ref, "2@abc");
        assert_eq!(qr.noise_key, *c.noise.public());
        assert_eq!(qr.client_type, Some('9'));
        let bare = full.strip_prefix(QR_PREFIX).unwrap();
        assert_eq!(parse_qr(bare).unwrap(), qr);
        let four = bare.rsplit_once(',').unwrap().0;
        assert_eq!(parse_qr(four).unwrap().client_type, None);
        assert!(matches!(
            parse_qr("2@abc,AAAA,BBBB,CCCC"),
            Err(PairingError::BadQr(_))
        ));
        assert!(matches!(parse_qr("just text"), Err(PairingError::BadQr(_))));
        assert!(!new_ref(&mut StdRng::seed_from_u64(1)).contains(','));
    }

    #[test]
    fn phone_numbers_are_checked() {
        assert!(check_phone("5511999999999").is_ok());
        for bad in ["", "0511999999", "+5511999999", "123", "1234567890123456"] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_honest_companion_completes_pairing() {
        let c = companion();
        let qr = parse_qr(&format_qr(
            "2@r",
            c.noise.public(),
            c.identity.public(),
            &c.adv,
        ))
        .unwrap();
        let account = KeyPair::from_secret(SecretKey::from_bytes([4; 32]));
        let mut rng = StdRng::seed_from_u64(1);
        let (node, pending) = pair_success(&offer_for(&account, &qr), "9", &mut rng);
        let text = node.to_string();
        assert!(
            text.contains(
                r#"<device jid="5511999999999:3@s.whatsapp.net" lid="100000000000001:3@lid"/>"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"<platform name="android"/><biz name="Shop"/>"#));
        let reply = answer(&c, &node, |_| {});
        assert!(verify_sign(&pending, &reply).is_ok());
        // whatsapp-rust keeps the account key: accepted too.
        let with_key = answer(&c, &node, |s| {
            s.account_signature_key = Some(account.public().as_bytes().to_vec());
        });
        assert!(verify_sign(&pending, &with_key).is_ok());
    }

    #[test]
    fn every_tampering_fails_the_pairing() {
        let c = companion();
        let qr = parse_qr(&format_qr(
            "2@r",
            c.noise.public(),
            c.identity.public(),
            &c.adv,
        ))
        .unwrap();
        let account = KeyPair::from_secret(SecretKey::from_bytes([4; 32]));
        let (node, pending) = pair_success(
            &offer_for(&account, &qr),
            "9",
            &mut StdRng::seed_from_u64(2),
        );
        let check = |f: &dyn Fn(&mut AdvSignedDeviceIdentity)| {
            verify_sign(&pending, &answer(&c, &node, f)).err()
        };
        assert_eq!(
            check(&|s| s.device_signature.as_mut().unwrap()[3] ^= 1),
            Some(PairingError::DeviceSignature)
        );
        assert_eq!(
            check(&|s| s.device_signature = None),
            Some(PairingError::DeviceSignature)
        );
        assert_eq!(
            check(&|s| s.details.as_mut().unwrap().push(0)),
            Some(PairingError::DetailsChanged)
        );
        assert_eq!(
            check(&|s| s.account_signature.as_mut().unwrap()[0] ^= 1),
            Some(PairingError::AccountSignatureChanged)
        );
        assert_eq!(
            check(&|s| s.account_signature_key = Some(vec![9; 32])),
            Some(PairingError::AccountKeyChanged)
        );
        // The wrong key index attribute.
        let mut reply = answer(&c, &node, |_| {});
        if let crate::binary::Content::Nodes(k) = &mut reply.content {
            if let crate::binary::Content::Nodes(k) = &mut k[0].content {
                k[0].attrs[0].1 = "5".into();
            }
        }
        assert!(matches!(
            verify_sign(&pending, &reply),
            Err(PairingError::KeyIndex { expected: 4, .. })
        ));
        // The companion's own refusal.
        let refusal = Node::new("iq")
            .with_attr("id", "9")
            .with_attr("type", "error")
            .with_children(vec![
                Node::new("error")
                    .with_attr("code", "401")
                    .with_attr("text", "hmac-mismatch"),
            ]);
        assert_eq!(
            verify_sign(&pending, &refusal),
            Err(PairingError::Refused {
                code: 401,
                text: "hmac-mismatch".into()
            })
        );
    }
}
