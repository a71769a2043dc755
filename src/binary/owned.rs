//! Decoding straight into an owned [`Node`], without building the borrowed tree first.
//!
//! `decode_owned` used to decode a [`Tree`](super::Tree) and copy it: two arenas, two walks.
//! This reads with the same primitives as the tree builder (`node_head`, `attr`,
//! `content_head`), so it checks the same things in the same order and fails with the same
//! errors, and copies each string once, into a [`Text`](super::Text) that holds tokens by
//! reference and short text inline.

use super::attrs::Attrs;
use super::compact::Text;
use super::decode::{ContentHead, Reader};
use super::node::{AttrValue, Content, Node, text_of};
use super::value::Value;
use super::{DEFAULT_MAX_INFLATED, Error, unpack};

impl Node {
    /// Decodes node bytes (after the flag byte; see [`unpack`]) into an owned node.
    pub fn decode(data: &[u8]) -> Result<Node, Error> {
        let mut r = Reader { data, pos: 0 };
        let node = r.owned_node(0)?;
        if r.pos != data.len() {
            return Err(Error::TrailingBytes {
                at: r.pos,
                count: data.len() - r.pos,
            });
        }
        Ok(node)
    }
}

/// Decodes a whole frame (flag byte included, inflated if compressed) into an owned node.
pub fn decode_owned(frame: &[u8]) -> Result<Node, Error> {
    let body = unpack(frame, DEFAULT_MAX_INFLATED)?;
    Node::decode(&body)
}

impl Reader<'_> {
    /// One node and its subtree. Depth is capped by `node_head` (MAX_DEPTH), so the recursion
    /// is bounded; a child list's capacity is bounded by the bytes left (`content_head`).
    fn owned_node(&mut self, depth: usize) -> Result<Node, Error> {
        let mut node = Node::new(Text::EMPTY);
        self.fill_node(&mut node, depth)?;
        Ok(node)
    }

    fn owned_attr(&mut self) -> Result<(Text, AttrValue), Error> {
        let (k, v) = self.attr()?;
        Ok((text_of(k), AttrValue::from(v)))
    }

    /// Reads a node into `node`, in place: children are pushed empty and filled where they
    /// lie, rather than built elsewhere and moved (168 bytes each) into their list.
    fn fill_node(&mut self, node: &mut Node, depth: usize) -> Result<(), Error> {
        let head = self.node_head(depth)?;
        node.tag = text_of(head.tag);
        // Built whole rather than pushed into an empty inline list: no placeholder is written
        // and dropped for the common cases of none and one.
        node.attrs = match head.n_attrs {
            0 => Attrs::new(),
            1 => Attrs::one(self.owned_attr()?),
            n => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.owned_attr()?);
                }
                Attrs::from(v)
            }
        };
        if !head.has_content {
            return Ok(());
        }
        node.content = match self.content_head()? {
            ContentHead::List(n) => {
                let mut kids: Vec<Node> = Vec::with_capacity(n);
                for _ in 0..n {
                    kids.push(Node::new(Text::EMPTY));
                    if let Some(kid) = kids.last_mut() {
                        self.fill_node(kid, depth + 1)?;
                    }
                }
                Content::Nodes(kids)
            }
            ContentHead::Bytes(b) => Content::Bytes(b.to_vec()),
            ContentHead::Value(Some(Value::Str(s))) => Content::Str(text_of(s)),
            ContentHead::Value(Some(Value::Jid(j))) => Content::Jid(j.to_owned()),
            ContentHead::Value(None) => Content::None,
        };
        Ok(())
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
