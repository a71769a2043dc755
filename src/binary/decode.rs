//! The borrowing decoder: node bytes in, a [`Tree`] of slices out.
//!
//! All nodes of a frame live in one arena and all attributes in another (recycled per thread,
//! see `arena.rs`), so decoding allocates nothing once warm. A child list is reserved as a contiguous run of slots
//! before its children are read, which keeps every node's children adjacent.
//!
//! Every length is checked against the bytes that remain before anything is reserved, nesting
//! is capped at [`MAX_DEPTH`], and packed strings and UTF-8 are validated up front, so a tree
//! that decoded never fails on access.

use std::borrow::Cow;

use super::arena;
use super::compact::Token;
use super::jid::{self, JidRef};
use super::packed::{self, Packing};
use super::value::{Str, Value};
use super::*;

/// A decoded stanza whose strings borrow from the frame. Walk it from [`Tree::root`].
pub struct Tree<'a> {
    pub(super) nodes: Vec<Slot<'a>>,
    pub(super) attrs: Vec<(Str<'a>, Value<'a>)>,
}

impl Drop for Tree<'_> {
    fn drop(&mut self) {
        arena::give_back(
            std::mem::take(&mut self.nodes),
            std::mem::take(&mut self.attrs),
        );
    }
}

pub(super) struct Slot<'a> {
    pub(super) tag: Str<'a>,
    pub(super) attrs_start: u32,
    pub(super) attrs_len: u32,
    pub(super) content: SlotContent<'a>,
}

#[derive(Clone, Copy)]
pub(super) enum SlotContent<'a> {
    None,
    Bytes(&'a [u8]),
    Value(Value<'a>),
    Nodes { start: u32, len: u32 },
}

const EMPTY_SLOT: Slot<'static> = Slot {
    tag: Str::Static(""),
    attrs_start: 0,
    attrs_len: 0,
    content: SlotContent::None,
};

impl<'a> Tree<'a> {
    /// Decodes node bytes (after the flag byte; see [`unpack`]).
    pub fn decode(data: &'a [u8]) -> Result<Self, Error> {
        // Recycled arenas (arena.rs), sized from the frame but capped: a frame that is mostly
        // payload would otherwise reserve hundreds of kilobytes of slots it never fills.
        // Larger trees grow by doubling.
        let (mut nodes, mut attrs) = arena::take();
        nodes.reserve((data.len() / 24 + 1).min(128));
        attrs.reserve((data.len() / 12 + 1).min(256));
        let mut tree = Tree { nodes, attrs };
        let mut r = Reader { data, pos: 0 };
        tree.nodes.push(EMPTY_SLOT);
        r.node(&mut tree, 0, 0)?;
        if r.pos != data.len() {
            return Err(Error::TrailingBytes {
                at: r.pos,
                count: data.len() - r.pos,
            });
        }
        Ok(tree)
    }

    /// The root node.
    pub fn root(&self) -> NodeRef<'_, 'a> {
        NodeRef { tree: self, idx: 0 }
    }

    /// How many nodes the stanza has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// A node inside a [`Tree`].
#[derive(Clone, Copy)]
pub struct NodeRef<'t, 'a> {
    tree: &'t Tree<'a>,
    idx: u32,
}

/// What a borrowed node holds.
#[derive(Clone, Copy, Debug)]
pub enum ContentRef<'t, 'a> {
    /// No content.
    None,
    /// Raw bytes (`BINARY_*`): binary payloads, and text that was neither a token nor packable.
    Bytes(&'a [u8]),
    /// A token, packed string or JID.
    Value(Value<'a>),
    /// Child nodes (possibly none: an empty list is kept apart from no content).
    Nodes(Children<'t, 'a>),
}

impl<'t, 'a> NodeRef<'t, 'a> {
    fn slot(&self) -> &'t Slot<'a> {
        // `idx` is only ever made by this module from indices the decoder wrote.
        &self.tree.nodes[self.idx as usize]
    }

    /// The tag.
    pub fn tag(&self) -> Str<'a> {
        self.slot().tag
    }

    /// The attributes in wire order.
    pub fn attrs(&self) -> &'t [(Str<'a>, Value<'a>)] {
        let s = self.slot();
        let start = s.attrs_start as usize;
        &self.tree.attrs[start..start + s.attrs_len as usize]
    }

    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<Value<'a>> {
        self.attrs()
            .iter()
            .find(|(k, _)| k.eq_str(key))
            .map(|(_, v)| *v)
    }

    /// The content.
    pub fn content(&self) -> ContentRef<'t, 'a> {
        match self.slot().content {
            SlotContent::None => ContentRef::None,
            SlotContent::Bytes(b) => ContentRef::Bytes(b),
            SlotContent::Value(v) => ContentRef::Value(v),
            SlotContent::Nodes { start, len } => ContentRef::Nodes(Children {
                tree: self.tree,
                next: start,
                end: start + len,
            }),
        }
    }

    /// The child nodes (empty if the content is not a list).
    pub fn children(&self) -> Children<'t, 'a> {
        match self.content() {
            ContentRef::Nodes(c) => c,
            _ => Children {
                tree: self.tree,
                next: 0,
                end: 0,
            },
        }
    }

    /// The first child with tag `tag`.
    pub fn child(&self, tag: &str) -> Option<NodeRef<'t, 'a>> {
        self.children().find(|c| c.tag().eq_str(tag))
    }

    /// Content as bytes: raw bytes as they are, tokens/packed/JIDs as their text.
    pub fn content_bytes(&self) -> Option<Cow<'a, [u8]>> {
        match self.slot().content {
            SlotContent::Bytes(b) => Some(Cow::Borrowed(b)),
            SlotContent::Value(v) => Some(match v.as_str() {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }),
            _ => None,
        }
    }

    /// Copies the node and its subtree out of the frame.
    pub fn to_owned(&self) -> Node {
        Node::from(*self)
    }
}

/// Iterator over a node's children.
#[derive(Clone, Copy)]
pub struct Children<'t, 'a> {
    tree: &'t Tree<'a>,
    next: u32,
    end: u32,
}

impl std::fmt::Debug for Children<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Children({})", self.end - self.next)
    }
}

impl<'t, 'a> Iterator for Children<'t, 'a> {
    type Item = NodeRef<'t, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let n = NodeRef {
            tree: self.tree,
            idx: self.next,
        };
        self.next += 1;
        Some(n)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Children<'_, '_> {}

pub(super) struct Reader<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

/// A node's header and tag (see [`Reader::node_head`]).
pub(super) struct NodeHead<'a> {
    pub(super) tag: Str<'a>,
    pub(super) n_attrs: usize,
    pub(super) has_content: bool,
}

/// What a node's content is (see [`Reader::content_head`]).
pub(super) enum ContentHead<'a> {
    /// A child list of this many nodes (0 for `LIST_EMPTY`).
    List(usize),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// A string or JID value; `None` for the null string.
    Value(Option<Value<'a>>),
}

/// Smallest encoding of a child node (`F8 01 <token>`), used to bound list reservations.
const MIN_NODE_BYTES: usize = 3;
/// Smallest encoding of an attribute (two tokens).
const MIN_ATTR_BYTES: usize = 2;

// Errors are built in closures on purpose, against clippy's advice: `Error` has variants that
// own a `String`, so an eagerly built error costs a drop on every successful read. Measured:
// 11% of decode instructions (callgrind, BENCHMARKS.md).
#[allow(clippy::unnecessary_lazy_evaluations)]
impl<'a> Reader<'a> {
    #[inline]
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| Error::UnexpectedEof { at: self.pos, what })?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| Error::UnexpectedEof { at: self.pos, what })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize, what: &'static str) -> Result<usize, Error> {
        Ok(self
            .take(n, what)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize))
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Reads a list header; `None` for `LIST_EMPTY`.
    fn list_size(&mut self, tag: u8, at: usize) -> Result<usize, Error> {
        match tag {
            LIST_EMPTY => Ok(0),
            LIST_8 => Ok(self.u8("list size")? as usize),
            LIST_16 => self.be(2, "list size"),
            byte => Err(Error::InvalidTag {
                byte,
                at,
                what: "node header",
            }),
        }
    }

    /// A node's header and tag: the tag, how many attributes follow, whether content follows
    /// them, and where the node starts. Shared by the tree builder and the owned decoder
    /// (`owned.rs`), so both check the same things in the same order. This and the two below
    /// are always inlined: returned through memory, their small results (a byte written, then
    /// read back with a wider load) stalled store forwarding (perf: ~20 % of `owned_node`).
    #[inline(always)]
    pub(super) fn node_head(&mut self, depth: usize) -> Result<NodeHead<'a>, Error> {
        let at = self.pos;
        if depth >= MAX_DEPTH {
            return Err(Error::TooDeep { at, max: MAX_DEPTH });
        }
        let header = self.u8("node header")?;
        let size = self.list_size(header, at)?;
        if size == 0 {
            return Err(Error::EmptyNode { at });
        }
        let tag_at = self.pos;
        let tag = self
            .string("tag")?
            .ok_or_else(|| Error::EmptyNode { at: tag_at })?;
        // No dictionary token is empty (a test checks), so only other strings are measured:
        // a token's length is a load from the token table on every node (perf: ~5 % of
        // `Reader::node`).
        if !matches!(tag, Str::Token(_)) && tag.is_empty() {
            return Err(Error::EmptyNode { at: tag_at });
        }
        let n_attrs = (size - 1) / 2;
        if n_attrs * MIN_ATTR_BYTES > self.remaining() {
            return Err(Error::ListTooLong {
                at,
                len: n_attrs,
                remaining: self.remaining(),
            });
        }
        Ok(NodeHead {
            tag,
            n_attrs,
            has_content: size % 2 == 0,
        })
    }

    /// One attribute: a plain-string key and a value (the null string reads as empty text).
    #[inline(always)]
    pub(super) fn attr(&mut self) -> Result<(Str<'a>, Value<'a>), Error> {
        let key_at = self.pos;
        let key = self
            .string("attribute key")?
            .ok_or_else(|| Error::NullString {
                at: key_at,
                what: "an attribute key",
            })?;
        let value = self
            .value("attribute value")?
            .unwrap_or(Value::Str(Str::Static("")));
        Ok((key, value))
    }

    /// What a node's content is; for a list, its length, checked against the bytes left.
    #[inline(always)]
    pub(super) fn content_head(&mut self) -> Result<ContentHead<'a>, Error> {
        let at = self.pos;
        let tag = *self.data.get(at).ok_or_else(|| Error::UnexpectedEof {
            at,
            what: "content",
        })?;
        match tag {
            LIST_EMPTY | LIST_8 | LIST_16 => {
                self.pos += 1;
                let n = self.list_size(tag, at)?;
                if n.saturating_mul(MIN_NODE_BYTES) > self.remaining() {
                    return Err(Error::ListTooLong {
                        at,
                        len: n,
                        remaining: self.remaining(),
                    });
                }
                Ok(ContentHead::List(n))
            }
            BINARY_8 | BINARY_20 | BINARY_32 => {
                self.pos += 1;
                let len = self.binary_len(tag)?;
                Ok(ContentHead::Bytes(self.take(len, "binary content")?))
            }
            _ => Ok(ContentHead::Value(self.value("string content")?)),
        }
    }

    fn node(&mut self, tree: &mut Tree<'a>, idx: usize, depth: usize) -> Result<(), Error> {
        let head = self.node_head(depth)?;
        let attrs_start = tree.attrs.len();
        for _ in 0..head.n_attrs {
            let a = self.attr()?;
            tree.attrs.push(a);
        }
        let content = if head.has_content {
            match self.content_head()? {
                ContentHead::List(n) => {
                    let start = tree.nodes.len();
                    tree.nodes.resize_with(start + n, || EMPTY_SLOT);
                    for i in 0..n {
                        self.node(tree, start + i, depth + 1)?;
                    }
                    SlotContent::Nodes {
                        start: start as u32,
                        len: n as u32,
                    }
                }
                ContentHead::Bytes(b) => SlotContent::Bytes(b),
                ContentHead::Value(Some(v)) => SlotContent::Value(v),
                ContentHead::Value(None) => SlotContent::None,
            }
        } else {
            SlotContent::None
        };
        let slot = &mut tree.nodes[idx];
        slot.tag = head.tag;
        slot.attrs_start = attrs_start as u32;
        slot.attrs_len = head.n_attrs as u32;
        slot.content = content;
        Ok(())
    }

    fn binary_len(&mut self, tag: u8) -> Result<usize, Error> {
        match tag {
            BINARY_8 => Ok(self.u8("binary length")? as usize),
            BINARY_20 => Ok(self.be(3, "binary length")? & 0x0f_ffff),
            _ => self.be(4, "binary length"),
        }
    }

    /// A string or JID value; `None` for the null string.
    ///
    /// This and the string readers below are inlined into the node readers in optimised
    /// builds: called, they returned their results through memory, written in pieces and read
    /// back whole, which stalled store forwarding (perf: a third of `Reader::node`). Not in
    /// unoptimised builds, where every inlined call keeps its own stack slots and the
    /// recursion to `MAX_DEPTH` overflowed a test thread's stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn value(&mut self, what: &'static str) -> Result<Option<Value<'a>>, Error> {
        let at = self.pos;
        let tag = self.u8(what)?;
        match tag {
            JID_PAIR => self.jid_pair(at).map(|j| Some(Value::Jid(j))),
            AD_JID => self.ad_jid().map(|j| Some(Value::Jid(j))),
            FB_JID => self.fb_jid(at).map(|j| Some(Value::Jid(j))),
            INTEROP_JID => self.interop_jid(at).map(|j| Some(Value::Jid(j))),
            _ => self.string_tagged(tag, at, what).map(|s| s.map(Value::Str)),
        }
    }

    /// A plain string; JID forms are refused here. `None` for the null string.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn string(&mut self, what: &'static str) -> Result<Option<Str<'a>>, Error> {
        let at = self.pos;
        let tag = self.u8(what)?;
        self.string_tagged(tag, at, what)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn string_tagged(
        &mut self,
        tag: u8,
        at: usize,
        what: &'static str,
    ) -> Result<Option<Str<'a>>, Error> {
        match tag {
            LIST_EMPTY => Ok(None),
            1..=235 => Ok(Some(Str::Token(Token::single(tag)))),
            DICTIONARY_0..=DICTIONARY_3 => {
                let i = self.u8(what)?;
                Ok(Some(Str::Token(Token::double(tag - DICTIONARY_0, i))))
            }
            NIBBLE_8 | HEX_8 => {
                let packing = if tag == NIBBLE_8 {
                    Packing::Nibble
                } else {
                    Packing::Hex
                };
                let header = self.u8(what)?;
                let data_at = self.pos;
                let data = self.take((header & 0x7f) as usize, what)?;
                let odd = header & 0x80 != 0;
                if odd && data.is_empty() {
                    return Err(Error::InvalidTag {
                        byte: header,
                        at: data_at - 1,
                        what: "packed string header (odd length with no data)",
                    });
                }
                packed::validate_in(packing, self.data, data_at, data, odd)?;
                Ok(Some(Str::Packed { packing, data, odd }))
            }
            BINARY_8 | BINARY_20 | BINARY_32 => {
                let len = self.binary_len(tag)?;
                let raw_at = self.pos;
                let raw = self.take(len, what)?;
                let s = std::str::from_utf8(raw).map_err(|e| Error::InvalidUtf8 {
                    at: raw_at + e.valid_up_to(),
                    what,
                })?;
                Ok(Some(Str::Raw(s)))
            }
            JID_PAIR | AD_JID | FB_JID | INTEROP_JID => Err(Error::UnexpectedJid { at, what }),
            byte => Err(Error::InvalidTag { byte, at, what }),
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn jid_pair(&mut self, at: usize) -> Result<JidRef<'a>, Error> {
        let user = self.string("JID user")?.unwrap_or(Str::Static(""));
        let server = self
            .string("JID server")?
            .ok_or_else(|| Error::NullString {
                at,
                what: "a JID server",
            })?;
        Ok(JidRef {
            user,
            server: static_if_known(server),
            agent: 0,
            device: None,
            integrator: 0,
        })
    }

    fn ad_jid(&mut self) -> Result<JidRef<'a>, Error> {
        let domain = self.u8("AD JID domain")?;
        let device = self.u8("AD JID device")?;
        let user = self.string("JID user")?.unwrap_or(Str::Static(""));
        let (server, agent) = jid::ad_server(domain);
        Ok(JidRef {
            user,
            server: Str::Static(server),
            agent,
            device: Some(u16::from(device)),
            integrator: 0,
        })
    }

    fn fb_jid(&mut self, at: usize) -> Result<JidRef<'a>, Error> {
        let user = self.string("JID user")?.unwrap_or(Str::Static(""));
        let device = self.be(2, "FB JID device")? as u16;
        let server = self.string("JID server")?.unwrap_or(Str::Static(""));
        expect_server(server, jid::SERVER_MSGR, "Messenger", at)?;
        Ok(JidRef {
            user,
            server: Str::Static(jid::SERVER_MSGR),
            agent: 0,
            device: Some(device),
            integrator: 0,
        })
    }

    fn interop_jid(&mut self, at: usize) -> Result<JidRef<'a>, Error> {
        let user = self.string("JID user")?.unwrap_or(Str::Static(""));
        let device = self.be(2, "interop JID device")? as u16;
        let integrator = self.be(2, "interop JID integrator")? as u16;
        let server = self.string("JID server")?.unwrap_or(Str::Static(""));
        expect_server(server, jid::SERVER_INTEROP, "interop", at)?;
        Ok(JidRef {
            user,
            server: Str::Static(jid::SERVER_INTEROP),
            agent: 0,
            device: Some(device),
            integrator,
        })
    }
}

fn static_if_known(server: Str<'_>) -> Str<'_> {
    match server {
        Str::Raw(s) => jid::known_server(s).map_or(server, Str::Static),
        other => other,
    }
}

fn expect_server(
    server: Str<'_>,
    expected: &'static str,
    form: &'static str,
    at: usize,
) -> Result<(), Error> {
    if server.eq_str(expected) {
        Ok(())
    } else {
        Err(Error::WrongJidServer {
            at,
            form,
            server: server.as_str().into_owned(),
            expected,
        })
    }
}
