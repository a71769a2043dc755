//! The one-time pre-key pool on the server (facts §5.5): how many it holds, uploading more, and
//! the digest that lets a device check what the server has.

use wuts_store as store;

use super::{Iq, IqKind, IqSpec, ParseError, attr_number};
use crate::binary::Node;

/// `<iq xmlns="encrypt" type="get"><count/></iq>`: how many of our pre-keys the server holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl IqSpec for Count {
    type Output = u32;

    fn iq(&self) -> Iq {
        Iq::to_server("encrypt", IqKind::Get, vec![Node::new("count")])
    }

    fn parse(&self, reply: &Node) -> Result<u32, ParseError> {
        let count = reply.child("count").ok_or(ParseError::Missing("count"))?;
        attr_number(count, "value").ok_or(ParseError::BadAttr {
            element: "count",
            attr: "value",
        })
    }
}

/// The upload: registration id, key type, identity, the one-time keys and the signed pre-key,
/// all as raw bytes, ids in 3 bytes big-endian.
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The device's long-term keys.
    pub keys: &'a store::DeviceKeys,
    /// The one-time keys to hand over.
    pub pending: &'a [store::OneTimePreKey],
}

impl IqSpec for Upload<'_> {
    type Output = ();

    fn iq(&self) -> Iq {
        let list = self
            .pending
            .iter()
            .map(|k| {
                Node::new("key").with_children(vec![
                    Node::new("id").with_bytes(id3(k.id.get())),
                    Node::new("value").with_bytes(k.key_pair.public.as_bytes().to_vec()),
                ])
            })
            .collect();
        let keys = self.keys;
        let spk = &keys.signed_pre_key;
        Iq::to_server(
            "encrypt",
            IqKind::Set,
            vec![
                Node::new("registration")
                    .with_bytes(keys.registration_id.get().to_be_bytes().to_vec()),
                Node::new("type").with_bytes(vec![KEY_TYPE_DJB]),
                Node::new("identity").with_bytes(keys.identity.public.as_bytes().to_vec()),
                Node::new("list").with_children(list),
                signed_pre_key(spk),
            ],
        )
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}

/// `<iq xmlns="encrypt" type="get"><digest/></iq>`: the server's view of our key bundle.
#[derive(Clone, Copy, Debug, Default)]
pub struct Digest;

/// What the server says it holds for us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDigest {
    /// Registration id.
    pub registration_id: u32,
    /// Signed pre-key id.
    pub signed_pre_key_id: u32,
    /// The identity key it holds (empty when the reply left it out).
    pub identity: Vec<u8>,
    /// Ids of the one-time keys it holds.
    pub pre_key_ids: Vec<u32>,
    /// SHA-1 over identity, signed pre-key, its signature and every one-time key, as the server
    /// computed it (compare with a hash of what the store holds).
    pub hash: Vec<u8>,
}

impl IqSpec for Digest {
    type Output = KeyDigest;

    fn iq(&self) -> Iq {
        Iq::to_server("encrypt", IqKind::Get, vec![Node::new("digest")])
    }

    fn parse(&self, reply: &Node) -> Result<KeyDigest, ParseError> {
        let digest = reply.child("digest").ok_or(ParseError::Missing("digest"))?;
        let registration = bytes(digest, "registration")?;
        let skey = digest.child("skey").ok_or(ParseError::Missing("skey"))?;
        let pre_key_ids = digest
            .child("list")
            .map(|l| {
                l.children()
                    .iter()
                    .filter_map(Node::content_bytes)
                    .map(|b| be_number(&b))
                    .collect()
            })
            .unwrap_or_default();
        Ok(KeyDigest {
            registration_id: be_number(&registration),
            signed_pre_key_id: be_number(&bytes(skey, "id")?),
            identity: digest
                .child("identity")
                .and_then(Node::content_bytes)
                .map(|b| b.into_owned())
                .unwrap_or_default(),
            pre_key_ids,
            hash: bytes(digest, "hash")?.into_owned(),
        })
    }
}

/// The hash the digest carries, over what the device holds (WA Web `validateLocalKeyBundle`,
/// whatsapp-rust `compute_key_bundle_digest`): SHA-1 of the identity key, the signed pre-key,
/// its signature, then each one-time key in the order the server listed their ids.
pub fn bundle_hash<'a>(
    identity: &[u8],
    signed: &store::SignedPreKey,
    one_time: impl IntoIterator<Item = &'a [u8]>,
) -> [u8; 20] {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(identity);
    h.update(signed.key_pair.public.as_bytes());
    h.update(signed.signature.as_bytes());
    for key in one_time {
        h.update(key);
    }
    h.finalize().into()
}

/// `<iq xmlns="encrypt" type="set"><rotate><skey>…</skey></rotate></iq>`: a new signed pre-key
/// (WA Web `RotateKeyJob`, whatsapp-rust `RotateSignedPreKeySpec`).
#[derive(Clone, Copy, Debug)]
pub struct Rotate<'a> {
    /// The new signed pre-key, signed by the identity key.
    pub key: &'a store::SignedPreKey,
}

impl IqSpec for Rotate<'_> {
    type Output = ();

    fn iq(&self) -> Iq {
        let rotate = Node::new("rotate").with_children(vec![signed_pre_key(self.key)]);
        Iq::to_server("encrypt", IqKind::Set, vec![rotate])
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}

/// The bytes content of a required child.
fn bytes<'a>(
    parent: &'a Node,
    tag: &'static str,
) -> Result<std::borrow::Cow<'a, [u8]>, ParseError> {
    parent
        .child(tag)
        .and_then(Node::content_bytes)
        .ok_or(ParseError::Missing(tag))
}

/// Signal's key type byte for Curve25519 keys.
const KEY_TYPE_DJB: u8 = 0x05;

fn id3(id: u32) -> Vec<u8> {
    id.to_be_bytes()[1..].to_vec()
}

fn signed_pre_key(spk: &store::SignedPreKey) -> Node {
    Node::new("skey").with_children(vec![
        Node::new("id").with_bytes(id3(spk.id.get())),
        Node::new("value").with_bytes(spk.key_pair.public.as_bytes().to_vec()),
        Node::new("signature").with_bytes(spk.signature.as_bytes().to_vec()),
    ])
}

/// A big-endian number of up to 4 bytes (longer inputs keep their last 4).
fn be_number(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .take(4)
        .rev()
        .fold(0u32, |n, b| (n << 8) | u32::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_reads_the_value_and_refuses_a_missing_one() {
        let reply = Node::new("iq").with_children(vec![Node::new("count").with_attr("value", "7")]);
        assert_eq!(Count.parse(&reply), Ok(7));
        assert_eq!(
            Count.parse(&Node::new("iq")),
            Err(ParseError::Missing("count"))
        );
    }

    #[test]
    fn digest_reads_ids_and_hash() {
        let reply = Node::new("iq").with_children(vec![Node::new("digest").with_children(vec![
            Node::new("type").with_bytes(vec![5]),
            Node::new("registration").with_bytes(vec![0, 0, 0x30, 0x39]),
            Node::new("list").with_children(vec![
                Node::new("id").with_bytes(vec![0, 0, 1]),
                Node::new("id").with_bytes(vec![0, 0, 2]),
            ]),
            Node::new("skey").with_children(vec![Node::new("id").with_bytes(vec![0, 0, 9])]),
            Node::new("hash").with_bytes(vec![0xAB; 20]),
        ])]);
        let d = Digest.parse(&reply).expect("parses");
        assert_eq!(d.registration_id, 12345);
        assert_eq!(d.pre_key_ids, [1, 2]);
        assert_eq!(d.signed_pre_key_id, 9);
        assert_eq!(d.hash.len(), 20);
    }
}
