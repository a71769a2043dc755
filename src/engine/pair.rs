//! QR pairing, the device's side (facts §6): the QR string, checking `pair-success` and signing
//! the device identity. Pure functions; the connection feeds them and sends what they return.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;
use wuts_store as store;

use crate::binary::{AttrValue, Jid, Node};
use crate::noise::{PublicKey, xeddsa};
use crate::proto::waadv::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

use super::keys::to_noise;

/// Prefix of the QR string (whatsmeow and Baileys since May 2026): the phone's camera opens
/// WhatsApp's linking screen directly.
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";
/// Companion client type shown in the QR: `1`, Chrome, matching the `DeviceProps` we send
/// (whatsapp-rust notes the server refuses `0`).
pub const CLIENT_TYPE: &str = "1";

const ACCOUNT_SIG_PREFIX: [u8; 2] = [6, 0];
const DEVICE_SIG_PREFIX: [u8; 2] = [6, 1];
const HOSTED_ACCOUNT_SIG_PREFIX: [u8; 2] = [6, 5];

/// `PREFIX REF,NOISE,IDENTITY,ADV,TYPE`, keys in standard base64 with padding.
pub fn qr_string(reference: &str, keys: &store::DeviceKeys) -> String {
    format!(
        "{QR_PREFIX}{reference},{},{},{},{CLIENT_TYPE}",
        B64.encode(keys.noise.public.as_bytes()),
        B64.encode(keys.identity.public.as_bytes()),
        B64.encode(keys.adv_secret.as_bytes()),
    )
}

/// Why a `pair-success` was refused; each maps to the error IQ whatsmeow answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// Missing element or attribute, or a protobuf that does not parse.
    #[error("malformed pair-success: {0}")]
    Malformed(&'static str),
    /// The HMAC over the identity does not match our ADV secret: not scanned from our QR.
    #[error("device identity HMAC does not match")]
    HmacMismatch,
    /// The account signature key has the wrong length.
    #[error("account signature key is invalid")]
    InvalidKey,
    /// The account signature over our identity key does not verify.
    #[error("account signature does not verify")]
    SignatureMismatch,
}

impl PairError {
    /// The `<error code text>` to answer with.
    pub fn code_and_text(&self) -> (u16, &'static str) {
        match self {
            PairError::Malformed(_) => (500, "internal-error"),
            PairError::HmacMismatch => (401, "hmac-mismatch"),
            PairError::InvalidKey => (401, "invalid-key"),
            PairError::SignatureMismatch => (401, "signature-mismatch"),
        }
    }
}

/// A verified pairing: what to store, and what to answer.
#[derive(Debug, Clone)]
pub struct Paired {
    /// Our device JID, as the server assigned it.
    pub jid: Jid,
    /// The results to persist before anybody is told.
    pub identity: store::PairedIdentity,
    /// The `pair-device-sign` reply.
    pub reply: Node,
}

fn attr_text(n: &Node, key: &str) -> Option<String> {
    n.attr(key).map(|v| v.as_str().into_owned())
}

/// Checks a `pair-success` IQ against our keys (facts §6.6, in that order) and signs our device
/// identity. `z` is the XEdDSA nonce (random bytes from the caller).
pub fn handle_pair_success(
    iq: &Node,
    keys: &store::DeviceKeys,
    z: &[u8; 64],
) -> Result<Paired, PairError> {
    let id = attr_text(iq, "id").ok_or(PairError::Malformed("iq id"))?;
    let ps = iq
        .child("pair-success")
        .ok_or(PairError::Malformed("pair-success"))?;
    let raw = ps
        .child("device-identity")
        .and_then(Node::content_bytes)
        .ok_or(PairError::Malformed("device-identity"))?;
    let device = ps.child("device").ok_or(PairError::Malformed("device"))?;
    let jid = device
        .attr("jid")
        .and_then(AttrValue::to_jid)
        .ok_or(PairError::Malformed("device jid"))?;
    let lid = match device.attr("lid").map(AttrValue::to_jid) {
        None => None,
        Some(lid) => Some(
            lid.as_ref()
                .and_then(|j| store::DeviceJid::try_from(j).ok())
                .ok_or(PairError::Malformed("device lid"))?,
        ),
    };
    let stored_jid =
        store::DeviceJid::try_from(&jid).map_err(|_| PairError::Malformed("device jid"))?;
    let platform = ps
        .child("platform")
        .and_then(|p| attr_text(p, "name"))
        .ok_or(PairError::Malformed("platform"))?;
    let business_name = ps.child("biz").and_then(|b| attr_text(b, "name"));

    // 1-2: the HMAC container, checked over the exact received bytes.
    let container = AdvSignedDeviceIdentityHmac::decode(raw.as_ref())
        .map_err(|_| PairError::Malformed("device identity container"))?;
    let details = container.details.as_deref().unwrap_or_default();
    let hosted_container = container.account_type == Some(AdvEncryptionType::Hosted as i32);
    let mut mac = Hmac::<Sha256>::new_from_slice(keys.adv_secret.as_bytes())
        .map_err(|_| PairError::Malformed("adv secret"))?;
    if hosted_container {
        mac.update(&HOSTED_ACCOUNT_SIG_PREFIX);
    }
    mac.update(details);
    mac.verify_slice(container.hmac.as_deref().unwrap_or_default())
        .map_err(|_| PairError::HmacMismatch)?;

    // 3: the signed identity and the identity inside it.
    let mut signed = AdvSignedDeviceIdentity::decode(details)
        .map_err(|_| PairError::Malformed("signed device identity"))?;
    let inner = signed.details.clone().unwrap_or_default();
    let identity = AdvDeviceIdentity::decode(inner.as_slice())
        .map_err(|_| PairError::Malformed("device identity"))?;

    // 4: the account's signature over our identity key. Hosted is decided by the device type
    // (whatsmeow since 2025-10 and Baileys; whatsapp-rust still reads the container's type).
    let account_key = signed
        .account_signature_key
        .as_deref()
        .and_then(PublicKey::from_slice)
        .ok_or(PairError::InvalidKey)?;
    let account_sig = signed.account_signature.clone().unwrap_or_default();
    if account_sig.len() != xeddsa::SIGNATURE_LEN {
        return Err(PairError::SignatureMismatch);
    }
    let hosted = identity.device_type == Some(AdvEncryptionType::Hosted as i32);
    let prefix = if hosted {
        HOSTED_ACCOUNT_SIG_PREFIX
    } else {
        ACCOUNT_SIG_PREFIX
    };
    let own_identity = keys.identity.public.as_bytes();
    let msg = [&prefix[..], &inner, own_identity].concat();
    if !xeddsa::verify(&account_key, &msg, &account_sig) {
        return Err(PairError::SignatureMismatch);
    }

    // 5: our device signature.
    let msg = [
        &DEVICE_SIG_PREFIX[..],
        &inner,
        own_identity,
        account_key.as_bytes(),
    ]
    .concat();
    let device_sig = xeddsa::sign(to_noise(&keys.identity).secret(), &msg, z);
    signed.device_signature = Some(device_sig.to_vec());
    let stored = signed.encode_to_vec();
    // The reply leaves the account key out (whatsmeow, Baileys).
    signed.account_signature_key = None;
    let reply_bytes = signed.encode_to_vec();
    let key_index = identity.key_index.unwrap_or(0);

    let reply = crate::ops::pairing::sign_reply(&id, key_index, reply_bytes);
    Ok(Paired {
        jid: jid.clone(),
        identity: store::PairedIdentity {
            jid: stored_jid,
            lid,
            platform,
            business_name,
            signed_device_identity: stored,
            account_signature_key: store::PublicKey::from_bytes(*account_key.as_bytes()),
            key_index,
        },
        reply,
    })
}

/// The error IQ answering a refused `pair-success`.
pub fn error_reply(iq_id: &str, err: &PairError) -> Node {
    let (code, text) = err.code_and_text();
    crate::ops::pairing::error_reply(iq_id, code, text)
}
