//! The key bundle the server holds for each device (facts sheet 5.5), strict like the rest:
//! uploads (`<registration>…<list>…<skey>`), the digest (`<digest/>`, WA Web
//! `WAWebDigestKeyJob`: 404 without a bundle, else the bundle's ids and a SHA-1 over identity,
//! signed pre-key, signature and each one-time key in list order), signed pre-key rotation
//! (`<rotate><skey/>`, signature checked against the identity key), and the low-count
//! notification once other devices' fetches leave fewer than [`LOW_PREKEYS`].
//!
//! Faults ([`KeyFault`]) corrupt or drop the server's copy, or consume keys, so tests can see a
//! client notice and mend it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::bundle::{KeyBundle, SignedKey};
use super::keys::hex;
use super::model::SimEvent;
use super::payload::be;
use super::shared::{Shared, unix_now};
use super::stanzas::{self, IqError};
use super::state::Command;
use crate::binary::Node;
use crate::noise::{PublicKey, xeddsa};

/// Most one-time pre-keys accepted in one upload: WA Web's `UPLOAD_KEYS_COUNT` (812), the
/// largest batch any reference client sends.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 812;

/// Below this many one-time keys the server tells the device (whatsmeow's `MinPreKeyCount`).
pub const LOW_PREKEYS: u32 = 5;

/// A fault on a device's key bundle (`POST /control/prekeys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyFault {
    /// Flip a bit of the stored signed pre-key's signature: the digest no longer matches.
    CorruptSigned,
    /// Forget the bundle: the digest answers 404.
    Drop,
    /// Other devices fetched this many one-time keys (lowest ids first); below
    /// [`LOW_PREKEYS`] left, a connected device is told.
    Consume {
        /// How many.
        count: u32,
    },
}

/// What the server holds for a device, as the control API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBundleInfo {
    /// The signed pre-key's id, if there is a bundle.
    pub signed_pre_key_id: Option<u32>,
    /// Whether the stored signature verifies under the device's identity key.
    pub signature_valid: bool,
    /// One-time keys held.
    pub prekeys: u32,
    /// The digest's hash (40 hex digits), if there is a bundle.
    pub hash: Option<String>,
    /// Uploads accepted since the sandbox started.
    pub uploads: u32,
    /// Rotations accepted since the sandbox started.
    pub rotations: u32,
}

fn info(bundle: &KeyBundle, identity: &PublicKey) -> KeyBundleInfo {
    KeyBundleInfo {
        signed_pre_key_id: bundle.signed.as_ref().map(|s| s.id),
        signature_valid: bundle
            .signed
            .as_ref()
            .is_some_and(|s| verify(identity, &s.value, &s.signature)),
        prekeys: bundle.count(),
        hash: bundle.hash(identity).map(|h| hex(&h)),
        uploads: bundle.uploads,
        rotations: bundle.rotations,
    }
}

fn verify(identity: &PublicKey, value: &[u8; 32], signature: &[u8; 64]) -> bool {
    let mut signed = [0u8; 33];
    signed[0] = 0x05;
    signed[1..].copy_from_slice(value);
    xeddsa::verify(identity, &signed, signature)
}

/// The bytes of a child, which must be exactly `N` long.
fn fixed<const N: usize>(parent: &Node, tag: &str) -> Result<[u8; N], IqError> {
    parent
        .child(tag)
        .and_then(Node::content_bytes)
        .and_then(|b| <[u8; N]>::try_from(b.as_ref()).ok())
        .ok_or(IqError::BAD_REQUEST)
}

/// `<skey><id/><value/><signature/></skey>`, its signature checked under `identity`.
fn signed_key(skey: &Node, identity: &PublicKey) -> Result<SignedKey, IqError> {
    let key = SignedKey {
        id: be(&fixed::<3>(skey, "id")?),
        value: fixed(skey, "value")?,
        signature: fixed(skey, "signature")?,
    };
    if !verify(identity, &key.value, &key.signature) {
        return Err(IqError::BAD_REQUEST);
    }
    Ok(key)
}

/// Checks an upload's shape against the device's keys and stores it: registration id (the one
/// sent at pairing), type `05`, identity (the device's), 0–812 keys with unique 3-byte ids and
/// 32-byte values, and a signed pre-key whose signature verifies. The signed pre-key replaces
/// the stored one; one-time keys are added, replacing any with the same id.
pub(crate) fn upload(shared: &Shared, jid: &str, iq: &Node) -> Result<Vec<Node>, IqError> {
    let bad = IqError::BAD_REQUEST;
    let registration = be(&fixed::<4>(iq, "registration")?);
    if fixed::<1>(iq, "type")? != [0x05] {
        return Err(bad);
    }
    let identity = PublicKey::from_slice(&fixed::<32>(iq, "identity")?).ok_or(bad)?;
    let list = iq.child("list").ok_or(bad)?;
    if list.children().len() > MAX_PREKEYS_PER_UPLOAD {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    let mut ids = HashSet::new();
    let mut keys = Vec::with_capacity(list.children().len());
    for key in list.children() {
        if key.tag != "key" {
            return Err(bad);
        }
        let id = be(&fixed::<3>(key, "id")?);
        if !ids.insert(id) {
            return Err(bad);
        }
        keys.push((id, fixed::<32>(key, "value")?));
    }
    let signed = signed_key(iq.child("skey").ok_or(bad)?, &identity)?;
    let mut st = shared.lock();
    let device = st.devices.get_mut(jid).ok_or(IqError::NOT_AUTHORIZED)?;
    if device.identity_key != identity || device.registration_id != registration {
        return Err(bad);
    }
    device.keys.signed = Some(signed);
    let prekeys = u32::try_from(keys.len()).unwrap_or(u32::MAX);
    device.keys.one_time.extend(keys);
    device.keys.uploads += 1;
    shared.persist(|s| s.put_device(device));
    drop(st);
    shared.emit(SimEvent::KeysUploaded {
        jid: jid.to_owned(),
        prekeys,
    });
    Ok(Vec::new())
}

/// `<digest/>`: 404 without a bundle, else registration, type, identity, the signed pre-key,
/// the one-time key ids (ascending) and the hash.
pub(crate) fn digest(shared: &Shared, jid: &str) -> Result<Vec<Node>, IqError> {
    let st = shared.lock();
    let device = st.devices.get(jid).ok_or(IqError::NOT_AUTHORIZED)?;
    let bundle = &device.keys;
    let (Some(signed), Some(hash)) = (&bundle.signed, bundle.hash(&device.identity_key)) else {
        return Err(IqError::ITEM_NOT_FOUND);
    };
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let list = bundle
        .one_time
        .keys()
        .map(|id| Node::new("id").with_bytes(id3(*id)))
        .collect();
    let node = Node::new("digest").with_children(vec![
        Node::new("registration").with_bytes(device.registration_id.to_be_bytes().to_vec()),
        Node::new("type").with_bytes(vec![0x05]),
        Node::new("identity").with_bytes(device.identity_key.as_bytes().to_vec()),
        Node::new("skey").with_children(vec![
            Node::new("id").with_bytes(id3(signed.id)),
            Node::new("value").with_bytes(signed.value.to_vec()),
            Node::new("signature").with_bytes(signed.signature.to_vec()),
        ]),
        Node::new("list").with_children(list),
        Node::new("hash").with_bytes(hash.to_vec()),
    ]);
    Ok(vec![node])
}

/// `<rotate><skey/></rotate>`: a new signed pre-key, signed by the device's identity key.
pub(crate) fn rotate(shared: &Shared, jid: &str, iq: &Node) -> Result<Vec<Node>, IqError> {
    let skey = iq
        .child("rotate")
        .and_then(|r| r.child("skey"))
        .ok_or(IqError::BAD_REQUEST)?;
    let mut st = shared.lock();
    let device = st.devices.get_mut(jid).ok_or(IqError::NOT_AUTHORIZED)?;
    let signed = signed_key(skey, &device.identity_key)?;
    let id = signed.id;
    device.keys.signed = Some(signed);
    device.keys.rotations += 1;
    shared.persist(|s| s.put_device(device));
    drop(st);
    shared.emit(SimEvent::SignedPreKeyRotated {
        jid: jid.to_owned(),
        id,
    });
    Ok(Vec::new())
}

/// What the server holds for `jid` (`None`: no such device).
pub(crate) fn bundle_info(shared: &Shared, jid: &str) -> Option<KeyBundleInfo> {
    let st = shared.lock();
    let device = st.devices.get(jid)?;
    Some(info(&device.keys, &device.identity_key))
}

/// Applies a [`KeyFault`]; returns what the server holds afterwards (`None`: no such device).
pub(crate) fn inject(shared: &Shared, jid: &str, fault: KeyFault) -> Option<KeyBundleInfo> {
    let mut st = shared.lock();
    let device = st.devices.get_mut(jid)?;
    let bundle = &mut device.keys;
    let mut low = None;
    match fault {
        KeyFault::CorruptSigned => {
            if let Some(s) = bundle.signed.as_mut() {
                s.signature[0] ^= 0x01;
            }
        }
        KeyFault::Drop => {
            bundle.signed = None;
            bundle.one_time.clear();
        }
        KeyFault::Consume { count } => {
            for _ in 0..count {
                if bundle.one_time.pop_first().is_none() {
                    break;
                }
            }
            low = Some(bundle.count()).filter(|n| *n < LOW_PREKEYS);
        }
    }
    let shown = info(bundle, &device.identity_key);
    shared.persist(|s| s.put_device(device));
    let conn = st.online.get(jid).and_then(|c| st.conns.get(c));
    if let (Some(left), Some(conn)) = (low, conn) {
        let tx = conn.tx.clone();
        let id = st.next_iq_id();
        let node = Node::new("notification")
            .with_attr("from", stanzas::server_jid())
            .with_attr("id", id)
            .with_attr("type", "encrypt")
            .with_attr("t", unix_now().to_string())
            .with_children(vec![
                Node::new("count").with_attr("value", left.to_string()),
            ]);
        st.log_sent(jid, unix_now(), &node);
        tokio::spawn(async move {
            let _ = tx.send(Command::Send(node)).await;
        });
    }
    Some(shown)
}
