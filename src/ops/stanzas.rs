//! Stanzas that answer the server rather than ask it: acks and bare results.

use crate::binary::Node;

/// `<iq to=FROM id=ID type="result"/>` answering a server request.
pub fn result_to(req: &Node) -> Node {
    let mut reply = Node::new("iq");
    if let Some(from) = req.attr("from") {
        reply = reply.with_attr("to", from.clone());
    }
    if let Some(id) = req.attr("id") {
        reply = reply.with_attr("id", id.clone());
    }
    reply.with_attr("type", "result")
}

/// The `<ack>` for a notification, receipt, message or call (whatsmeow `sendAck`): same id,
/// back to the sender, its class, and its type except for messages. `None` when the stanza
/// has no id or sender to ack.
pub fn ack(node: &Node) -> Option<Node> {
    let (id, from) = (node.attr("id")?, node.attr("from")?);
    let mut ack = Node::new("ack")
        .with_attr("class", node.tag.as_str())
        .with_attr("id", id.clone())
        .with_attr("to", from.clone());
    if node.tag != "message" {
        if let Some(t) = node.attr("type") {
            ack = ack.with_attr("type", t.clone());
        }
    }
    if let Some(p) = node.attr("participant") {
        ack = ack.with_attr("participant", p.clone());
    }
    Some(ack)
}
