//! The stanzas the sandbox sends, built as the real server shapes them (facts sheet
//! protocol-connection.md 5 and 6), and the IQ error vocabulary.
//!
//! Addresses are typed JIDs: whatsmeow compares `from` against a JID value and ignores IQs
//! whose `from` is a plain string (facts sheet 5.1).

use super::model::StreamError;
use crate::binary::jid::{SERVER_GROUP, SERVER_PN};
use crate::binary::{Jid, Node};

/// `s.whatsapp.net` as a server-only JID (`FA 00 03` on the wire).
pub fn server_jid() -> Jid {
    Jid::server_only(SERVER_PN)
}

/// `g.us` as a server-only JID: group IQs are addressed to it and answered from it.
pub fn group_server_jid() -> Jid {
    Jid::server_only(SERVER_GROUP)
}

/// An IQ error: code and text, as in `<error code="406" text="not-acceptable"/>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IqError {
    /// The numeric code.
    pub code: u16,
    /// The XMPP-style condition name.
    pub text: &'static str,
}

impl IqError {
    /// 400: the request is malformed.
    pub const BAD_REQUEST: IqError = IqError::new(400, "bad-request");
    /// 401: not allowed in this state (not logged in).
    pub const NOT_AUTHORIZED: IqError = IqError::new(401, "not-authorized");
    /// 403: not allowed for this user.
    pub const FORBIDDEN: IqError = IqError::new(403, "forbidden");
    /// 404: the addressed thing does not exist.
    pub const ITEM_NOT_FOUND: IqError = IqError::new(404, "item-not-found");
    /// 406: a value is out of bounds (subject too long, too many participants).
    pub const NOT_ACCEPTABLE: IqError = IqError::new(406, "not-acceptable");
    /// 409: the state changed under the request (a description's `prev` is stale).
    pub const CONFLICT: IqError = IqError::new(409, "conflict");
    /// 410: gone (a revoked or expired invite).
    pub const GONE: IqError = IqError::new(410, "gone");
    /// 501: the sandbox does not implement this request.
    pub const NOT_IMPLEMENTED: IqError = IqError::new(501, "feature-not-implemented");

    const fn new(code: u16, text: &'static str) -> Self {
        Self { code, text }
    }
}

/// `<iq from id type="result"/>`, optionally with children.
pub fn iq_result(id: &str, from: Jid, children: Vec<Node>) -> Node {
    let iq = Node::new("iq")
        .with_attr("from", from)
        .with_attr("id", id)
        .with_attr("type", "result");
    if children.is_empty() {
        iq
    } else {
        iq.with_children(children)
    }
}

/// `<iq from id type="error"><error code text/></iq>`.
pub fn iq_error(id: &str, from: Jid, err: IqError) -> Node {
    Node::new("iq")
        .with_attr("from", from)
        .with_attr("id", id)
        .with_attr("type", "error")
        .with_children(vec![
            Node::new("error")
                .with_attr("code", err.code.to_string())
                .with_attr("text", err.text),
        ])
}

/// The reply to a keepalive: `<iq from id t type="result"/>` (capture in whatsmeow issue #5).
pub fn pong(id: &str, now: u64) -> Node {
    Node::new("iq")
        .with_attr("from", server_jid())
        .with_attr("id", id)
        .with_attr("t", now.to_string())
        .with_attr("type", "result")
}

/// `pair-device` with the refs to show, in order (facts sheet 6.1). Ref contents are bytes.
pub fn pair_device(id: &str, refs: &[String]) -> Node {
    let refs = refs
        .iter()
        .map(|r| Node::new("ref").with_bytes(r.as_bytes().to_vec()))
        .collect();
    Node::new("iq")
        .with_attr("from", server_jid())
        .with_attr("id", id)
        .with_attr("type", "set")
        .with_attr("xmlns", "md")
        .with_children(vec![Node::new("pair-device").with_children(refs)])
}

/// Login accepted (facts sheet 5.2, shape of a real capture).
pub fn success(now: u64, lid: Jid, creation: u64, companion_enc_static: &str) -> Node {
    Node::new("success")
        .with_attr("t", now.to_string())
        .with_attr("props", "27")
        .with_attr("abprops", "10")
        .with_attr("location", "sandbox")
        .with_attr("lid", lid)
        .with_attr("creation", creation.to_string())
        .with_attr("companion_enc_static", companion_enc_static)
}

/// The server's ping; the client answers with a bare result.
pub fn server_ping(id: &str) -> Node {
    Node::new("iq")
        .with_attr("from", server_jid())
        .with_attr("id", id)
        .with_attr("type", "get")
        .with_attr("xmlns", "urn:xmpp:ping")
}

/// Some of the account's state changed while the device was away (facts sheet 5.6).
pub fn dirty(kind: &str, timestamp: u64) -> Node {
    Node::new("ib").with_children(vec![
        Node::new("dirty")
            .with_attr("type", kind)
            .with_attr("timestamp", timestamp.to_string()),
    ])
}

/// The edge routing info a client presents on its next connect (facts sheet 5.6).
pub fn edge_routing(info: &[u8]) -> Node {
    Node::new("ib")
        .with_children(vec![Node::new("edge_routing").with_children(vec![
            Node::new("routing_info").with_bytes(info.to_vec()),
        ])])
}

/// Login refused (facts sheet 5.3): 401 logged out, 400 generic, 405 outdated, 409 bad user
/// agent, ...
pub fn failure(reason: u16) -> Node {
    Node::new("failure").with_attr("reason", reason.to_string())
}

/// A `<stream:error>` of the given kind (facts sheet 5.4 shapes).
pub fn stream_error(kind: StreamError) -> Node {
    let node = Node::new("stream:error");
    match kind {
        StreamError::RestartRequired => node.with_attr("code", "515"),
        StreamError::ServiceUnavailable => node.with_attr("code", "503"),
        StreamError::Unauthorized => node.with_attr("code", "401"),
        StreamError::Replaced => {
            node.with_children(vec![Node::new("conflict").with_attr("type", "replaced")])
        }
        StreamError::DeviceRemoved => node.with_attr("code", "401").with_children(vec![
            Node::new("conflict").with_attr("type", "device_removed"),
        ]),
    }
}

/// The end of the offline queue, sent after the client goes active (facts sheet 5.5).
pub fn offline_done(count: u32) -> Node {
    Node::new("ib")
        .with_attr("from", server_jid())
        .with_children(vec![
            Node::new("offline").with_attr("count", count.to_string()),
        ])
}

/// The text of attribute `key`, if present.
pub fn attr(node: &Node, key: &str) -> Option<String> {
    node.attr(key).map(|v| v.as_str().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::{decode_owned, encode_to_vec};

    #[test]
    fn server_addresses_are_jid_pairs() {
        let bytes = encode_to_vec(&pong("1", 5)).unwrap();
        // <iq from=…>: FA 00 03 is JID_PAIR, empty user, token s.whatsapp.net.
        assert!(bytes.windows(3).any(|w| w == [0xfa, 0x00, 0x03]));
        let back = decode_owned(&bytes).unwrap();
        assert_eq!(
            back.attr("from").and_then(|f| f.to_jid()),
            Some(server_jid())
        );
    }

    #[test]
    fn stream_errors_have_the_documented_shapes() {
        let s = |k| stream_error(k).to_string();
        assert_eq!(
            s(StreamError::RestartRequired),
            r#"<stream:error code="515"/>"#
        );
        assert_eq!(
            s(StreamError::DeviceRemoved),
            r#"<stream:error code="401"><conflict type="device_removed"/></stream:error>"#
        );
        assert_eq!(
            s(StreamError::Replaced),
            r#"<stream:error><conflict type="replaced"/></stream:error>"#
        );
    }
}
