//! Decoding straight into an owned [`Node`], without building the borrowed tree first.
//!
//! `decode_owned` used to decode a [`Tree`](super::Tree) and copy it: two arenas, two walks.
//! This reads with the same primitives as the tree builder (`node_head`, `attr`,
//! `content_head`), so it checks the same things in the same order and fails with the same
//! errors, and copies each string once, into a [`Text`](super::Text) that holds tokens by
//! reference and short text inline. Payloads share one copy of the frame (`payload.rs`).

use std::borrow::Cow;

use bytes::Bytes;

use super::attrs::{Attrs, EMPTY_ATTR};
use super::compact::Text;
use super::decode::{ContentHead, Reader};
use super::node::{AttrValue, Content, Node};
use super::payload::Payload;
use super::value::Value;
use super::{DEFAULT_MAX_INFLATED, Error, unpack};

impl Node {
    /// Decodes node bytes (after the flag byte; see [`unpack`]) into an owned node.
    pub fn decode(data: &[u8]) -> Result<Node, Error> {
        decode_shared(data, &mut None)
    }
}

/// A buffer payloads are slices of, and the offset in the decoded bytes where it starts.
type Shared = Option<(Bytes, usize)>;

/// Decodes node bytes; payloads become slices of `shared`. If the caller has none, it is a
/// copy of `data` from the first payload on (what comes before, the headers of the enclosing
/// nodes, no payload needs).
fn decode_shared(data: &[u8], shared: &mut Shared) -> Result<Node, Error> {
    let mut r = Reader { data, pos: 0 };
    let mut node = Node::new(Text::EMPTY);
    r.fill_node(&mut node, 0, shared)?;
    if r.pos != data.len() {
        return Err(Error::TrailingBytes {
            at: r.pos,
            count: data.len() - r.pos,
        });
    }
    Ok(node)
}

/// Decodes a whole frame (flag byte included, inflated if compressed) into an owned node.
pub fn decode_owned(frame: &[u8]) -> Result<Node, Error> {
    match unpack(frame, DEFAULT_MAX_INFLATED)? {
        Cow::Borrowed(body) => decode_shared(body, &mut None),
        // An inflated body is already ours: payloads share it without another copy.
        Cow::Owned(body) => {
            let body = Bytes::from(body);
            decode_shared(&body, &mut Some((body.clone(), 0)))
        }
    }
}

impl Reader<'_> {
    /// One attribute, read into `slot` where it lies (see [`Text::set_from_frame`] for why).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn fill_attr(&mut self, slot: &mut (Text, AttrValue)) -> Result<(), Error> {
        let (k, v) = self.attr()?;
        slot.0.set_from_frame(k);
        set_value(&mut slot.1, v);
        Ok(())
    }

    /// Reads a node into `node`, in place: children are pushed empty and filled where they
    /// lie, rather than built elsewhere and moved (168 bytes each) into their list; strings
    /// likewise.
    fn fill_node(
        &mut self,
        node: &mut Node,
        depth: usize,
        shared: &mut Shared,
    ) -> Result<(), Error> {
        let head = self.node_head(depth)?;
        node.tag.set_from_frame(head.tag);
        // Empty attributes, then each filled where it lies (see `fill_attr`); none and one stay
        // inside the node.
        match head.n_attrs {
            0 => {}
            1 => {
                node.attrs = Attrs::one(EMPTY_ATTR);
                if let Some(slot) = node.attrs.first_mut() {
                    self.fill_attr(slot)?;
                }
            }
            n => {
                // `n` is bounded by the bytes left (`node_head`). Not `vec![EMPTY_ATTR; n]`,
                // which clones the placeholder through its drop-aware `Clone` (perf: 6 %).
                let mut v = Vec::with_capacity(n);
                v.resize_with(n, || EMPTY_ATTR);
                for slot in &mut v {
                    self.fill_attr(slot)?;
                }
                node.attrs = Attrs::from(v);
            }
        }
        if !head.has_content {
            return Ok(());
        }
        match self.content_head()? {
            ContentHead::List(n) => {
                let mut kids: Vec<Node> = Vec::with_capacity(n);
                for _ in 0..n {
                    kids.push(Node::new(Text::EMPTY));
                    if let Some(kid) = kids.last_mut() {
                        self.fill_node(kid, depth + 1, shared)?;
                    }
                }
                node.content = Content::Nodes(kids);
            }
            ContentHead::Bytes(b) => {
                // `b` ends where the reader stands.
                let end = self.pos;
                let start = end - b.len();
                let (buf, base) = shared.get_or_insert_with(|| {
                    let from = self.data.get(start..).unwrap_or_default();
                    (Bytes::copy_from_slice(from), start)
                });
                // Payloads come in frame order, so none starts before the first one.
                let range = start.saturating_sub(*base)..end.saturating_sub(*base);
                node.content = Content::Bytes(Payload::shared(buf, range));
            }
            ContentHead::Value(Some(Value::Str(s))) => {
                node.content = Content::Str(Text::EMPTY);
                if let Content::Str(t) = &mut node.content {
                    t.set_from_frame(s);
                }
            }
            ContentHead::Value(Some(Value::Jid(j))) => {
                node.content = Content::Jid(j.owned_except_user());
                if let Content::Jid(o) = &mut node.content {
                    o.user.set_from_frame(j.user);
                }
            }
            ContentHead::Value(None) => {}
        }
        Ok(())
    }
}

/// Sets an attribute value read from a frame, in place.
#[cfg_attr(not(debug_assertions), inline(always))]
fn set_value(slot: &mut AttrValue, v: Value<'_>) {
    match v {
        Value::Str(s) => {
            if let AttrValue::Str(t) = slot {
                t.set_from_frame(s);
            } else {
                *slot = AttrValue::Str(Text::EMPTY);
                if let AttrValue::Str(t) = slot {
                    t.set_from_frame(s);
                }
            }
        }
        Value::Jid(j) => {
            *slot = AttrValue::Jid(j.owned_except_user());
            if let AttrValue::Jid(o) = slot {
                o.user.set_from_frame(j.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Tree, encode_to_vec};
    use super::*;

    #[test]
    fn fails_where_and_as_the_tree_decoder_does() {
        let frame = encode_to_vec(
            &Node::new("iq")
                .with_attr("id", "1")
                .with_children(vec![Node::new("ping").with_bytes(vec![1, 2, 3])]),
        )
        .expect("encodes");
        let body = &frame[1..];
        for cut in 0..body.len() {
            let owned = Node::decode(&body[..cut]).err().map(|e| e.to_string());
            let tree = Tree::decode(&body[..cut]).err().map(|e| e.to_string());
            assert_eq!(owned, tree, "cut at {cut}");
        }
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(
            Node::decode(&long).err().map(|e| e.to_string()),
            Tree::decode(&long).err().map(|e| e.to_string())
        );
        assert_eq!(
            Node::decode(body).expect("decodes"),
            Tree::decode(body).expect("decodes").root().to_owned()
        );
    }
}
