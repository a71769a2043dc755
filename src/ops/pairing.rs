//! The device's answers during QR pairing (facts §6): the signed identity it sends back after a
//! verified `pair-success`, and the error it answers a refused one with. The checks and the
//! signature are the engine's (`engine::pair`); only the stanzas are built here.

use crate::binary::Node;
use crate::types::{Jid, SERVER_PN};

/// `<iq type="result"><pair-device-sign><device-identity key-index=N>BYTES</...>`.
pub fn sign_reply(iq_id: &str, key_index: u32, signed_identity: Vec<u8>) -> Node {
    Node::new("iq")
        .with_attr("to", Jid::server_only(SERVER_PN))
        .with_attr("id", iq_id)
        .with_attr("type", "result")
        .with_children(vec![Node::new("pair-device-sign").with_children(vec![
            Node::new("device-identity")
                .with_attr("key-index", key_index.to_string())
                .with_bytes(signed_identity),
        ])])
}

/// `<iq type="error"><error code text/></iq>` refusing a server request.
pub fn error_reply(iq_id: &str, code: u16, text: &str) -> Node {
    Node::new("iq")
        .with_attr("to", Jid::server_only(SERVER_PN))
        .with_attr("id", iq_id)
        .with_attr("type", "error")
        .with_children(vec![
            Node::new("error")
                .with_attr("code", code.to_string())
                .with_attr("text", text),
        ])
}
