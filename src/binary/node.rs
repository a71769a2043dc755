//! The owned node: what callers build to send, and what a borrowed tree copies into.
//!
//! Compact (see `compact.rs`, `attrs.rs`): tags, keys, short values and JID users are [`Text`]
//! (tokens by reference, short text inline), the first attribute sits inside the node, and
//! decoding into it (`owned.rs`) allocates only for longer attribute lists, child lists, long
//! text and payloads.

use std::borrow::Cow;

use super::MAX_DEPTH;
use super::attrs::Attrs;
use super::classify::{Form, classify};
use super::compact::Text;
use super::decode::{ContentRef, NodeRef};
use super::jid::Jid;
use super::payload::Payload;
use super::value::{Str, Value};

/// A stanza node: tag, ordered attributes, content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The tag (`iq`, `message`, ...). Never empty on the wire.
    pub tag: Text,
    /// Attributes in wire order. Order is kept: it is what makes output byte-reproducible.
    pub attrs: Attrs,
    /// The content.
    pub content: Content,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    /// Text. The encoder picks its wire form: token, packed digits, a JID form when the text is
    /// a JID on a known server that prints back identically, or raw bytes.
    Str(Text),
    /// A typed JID, always sent in a JID form (or refused if it has none).
    Jid(Jid),
}

/// A node's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Content {
    /// No content.
    #[default]
    None,
    /// Opaque bytes, sent as they are.
    Bytes(Payload),
    /// Text, encoded with the string rules like an attribute value.
    Str(Text),
    /// A typed JID.
    Jid(Jid),
    /// Child nodes. An empty list is kept apart from no content: the wire tells them apart.
    Nodes(Vec<Node>),
}

impl AttrValue {
    /// The value as text (a JID in its usual text form).
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            AttrValue::Str(s) => Cow::Borrowed(s.as_str()),
            AttrValue::Jid(j) => Cow::Owned(j.to_string()),
        }
    }

    /// The value a builder gives for `s`: a typed JID when the text is one that has a lossless
    /// wire form (the same rule the encoder applies to text), else text. The encoder then
    /// writes the JID without parsing it again.
    pub fn typed(s: &str) -> AttrValue {
        match classify(s, true) {
            Form::Jid(j, _) => AttrValue::Jid(j.to_owned()),
            _ => AttrValue::Str(Text::new(s)),
        }
    }

    /// The value as a JID: a typed JID, or text that parses as one.
    pub fn to_jid(&self) -> Option<Jid> {
        match self {
            AttrValue::Jid(j) => Some(j.clone()),
            AttrValue::Str(s) => s.parse().ok(),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(Text::new(s))
    }
}

impl From<&String> for AttrValue {
    fn from(s: &String) -> Self {
        AttrValue::Str(Text::new(s))
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s.into())
    }
}

impl From<Text> for AttrValue {
    fn from(s: Text) -> Self {
        AttrValue::Str(s)
    }
}

impl From<Jid> for AttrValue {
    fn from(j: Jid) -> Self {
        AttrValue::Jid(j)
    }
}

impl Node {
    /// A node with a tag and nothing else.
    pub fn new(tag: impl Into<Text>) -> Self {
        Node {
            tag: tag.into(),
            attrs: Attrs::new(),
            content: Content::None,
        }
    }

    /// Adds an attribute (builder style).
    pub fn with_attr(mut self, key: impl Into<Text>, value: impl Into<AttrValue>) -> Self {
        self.attrs.push((key.into(), value.into()));
        self
    }

    /// Sets child nodes as the content (builder style).
    pub fn with_children(mut self, children: Vec<Node>) -> Self {
        self.content = Content::Nodes(children);
        self
    }

    /// Sets bytes as the content (builder style).
    pub fn with_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.content = Content::Bytes(Payload::from(bytes.into()));
        self
    }

    /// Sets text as the content (builder style).
    pub fn with_text(mut self, text: impl Into<Text>) -> Self {
        self.content = Content::Str(text.into());
        self
    }

    /// The same node with every JID-looking attribute value typed ([`AttrValue::typed`]), as
    /// the engine's builders make them; text, JSON and wire forms are unchanged. Nodes nested
    /// deeper than [`MAX_DEPTH`] are left as they are (the encoder refuses them anyway), so the
    /// recursion is bounded.
    pub fn with_typed_jids(self) -> Self {
        self.typed_jids_at(0)
    }

    fn typed_jids_at(mut self, depth: usize) -> Self {
        if depth >= MAX_DEPTH {
            return self;
        }
        for (_, v) in self.attrs.iter_mut() {
            if let AttrValue::Str(s) = v {
                *v = AttrValue::typed(s);
            }
        }
        if let Content::Nodes(c) = &mut self.content {
            *c = std::mem::take(c)
                .into_iter()
                .map(|n| n.typed_jids_at(depth + 1))
                .collect();
        }
        self
    }

    /// A copy that shares nothing with this node: payloads are copied too, where `clone`
    /// shares them. For benches, which lay out their input as freshly built nodes would be.
    /// Nodes nested deeper than [`MAX_DEPTH`] are cloned (the recursion is bounded).
    pub fn deep_copy(&self) -> Node {
        self.deep_copy_at(0)
    }

    fn deep_copy_at(&self, depth: usize) -> Node {
        if depth >= MAX_DEPTH {
            return self.clone();
        }
        Node {
            tag: self.tag.clone(),
            attrs: self.attrs.clone(),
            content: match &self.content {
                Content::Bytes(b) => Content::Bytes(b.to_vec().into()),
                Content::Nodes(c) => {
                    Content::Nodes(c.iter().map(|n| n.deep_copy_at(depth + 1)).collect())
                }
                other => other.clone(),
            },
        }
    }

    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The child nodes (empty if the content is not a list).
    pub fn children(&self) -> &[Node] {
        match &self.content {
            Content::Nodes(n) => n,
            _ => &[],
        }
    }

    /// The first child with tag `tag`.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Content as bytes: raw bytes as they are, text and JIDs as their UTF-8.
    pub fn content_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match &self.content {
            Content::Bytes(b) => Some(Cow::Borrowed(b)),
            Content::Str(s) => Some(Cow::Borrowed(s.as_bytes())),
            Content::Jid(j) => Some(Cow::Owned(j.to_string().into_bytes())),
            Content::None | Content::Nodes(_) => None,
        }
    }
}

/// An owned copy of a string from a frame: tokens stay codes, short text goes inline.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn text_of(s: Str<'_>) -> Text {
    match s {
        Str::Token(c) => Text::from_token(c),
        Str::Static(t) | Str::Raw(t) => Text::new(t),
        Str::Packed { packing, data, odd } => Text::from_packed_data(packing, data, odd)
            .unwrap_or_else(|| s.with_text(Text::from_packed)),
    }
}

impl From<Value<'_>> for AttrValue {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Str(s) => AttrValue::Str(text_of(s)),
            Value::Jid(j) => AttrValue::Jid(j.to_owned()),
        }
    }
}

impl From<NodeRef<'_, '_>> for Node {
    fn from(n: NodeRef<'_, '_>) -> Self {
        let content = match n.content() {
            ContentRef::None => Content::None,
            ContentRef::Bytes(b) => Content::Bytes(b.into()),
            ContentRef::Value(Value::Str(s)) => Content::Str(text_of(s)),
            ContentRef::Value(Value::Jid(j)) => Content::Jid(j.to_owned()),
            // Depth is bounded by the decoder's MAX_DEPTH, so this recursion is too.
            ContentRef::Nodes(c) => Content::Nodes(c.map(Node::from).collect()),
        };
        let mut attrs = Attrs::with_capacity(n.attrs().len());
        for (k, v) in n.attrs() {
            attrs.push((text_of(*k), AttrValue::from(*v)));
        }
        Node {
            tag: text_of(n.tag()),
            attrs,
            content,
        }
    }
}
