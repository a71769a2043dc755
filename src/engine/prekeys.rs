//! The pre-key upload (facts §5.5): identity, signed pre-key and one-time pre-keys, all as raw
//! bytes content, ids in 3 bytes big-endian.

use wuts_store as store;

use crate::binary::{Jid, Node, jid};

/// The `encrypt` `set` IQ (without its id) uploading `pending` one-time pre-keys.
pub(super) fn upload(keys: &store::DeviceKeys, pending: &[store::OneTimePreKey]) -> Node {
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let list = pending
        .iter()
        .map(|k| {
            Node::new("key").with_children(vec![
                Node::new("id").with_bytes(id3(k.id.get())),
                Node::new("value").with_bytes(k.key_pair.public.as_bytes().to_vec()),
            ])
        })
        .collect();
    let spk = &keys.signed_pre_key;
    Node::new("iq")
        .with_attr("to", Jid::server_only(jid::SERVER_PN))
        .with_attr("type", "set")
        .with_attr("xmlns", "encrypt")
        .with_children(vec![
            Node::new("registration").with_bytes(keys.registration_id.get().to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![0x05]),
            Node::new("identity").with_bytes(keys.identity.public.as_bytes().to_vec()),
            Node::new("list").with_children(list),
            Node::new("skey").with_children(vec![
                Node::new("id").with_bytes(id3(spk.id.get())),
                Node::new("value").with_bytes(spk.key_pair.public.as_bytes().to_vec()),
                Node::new("signature").with_bytes(spk.signature.as_bytes().to_vec()),
            ]),
        ])
}
