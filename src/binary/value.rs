//! Borrowed string and attribute values as they sit on the wire.
//!
//! The borrowing decoder does not unpack anything: a packed string stays packed until somebody
//! asks for its text, and a raw string is a slice of the frame. That is what makes decoding
//! allocation-free apart from the tree's two arenas.

use std::borrow::Cow;
use std::fmt;

use super::compact::Token;
use super::jid::JidRef;
use super::packed::{self, Packing};

/// A string value: a token, a slice of the frame, or packed digits.
#[derive(Clone, Copy)]
pub enum Str<'a> {
    /// A dictionary token: kept as the token so that an owned copy holds it without a lookup
    /// and re-encoding writes its code as it came.
    Token(&'static Token),
    /// Another string with a static lifetime (known JID servers, the empty string).
    Static(&'static str),
    /// Raw UTF-8 text, borrowed.
    Raw(&'a str),
    /// A `NIBBLE_8` / `HEX_8` string, still packed: `data` is the bytes after the header.
    Packed {
        packing: Packing,
        data: &'a [u8],
        odd: bool,
    },
}

impl<'a> Str<'a> {
    /// Length of the text in bytes (all packed characters are ASCII).
    pub fn len(&self) -> usize {
        match self {
            Str::Token(t) => t.text().len(),
            Str::Static(s) => s.len(),
            Str::Raw(s) => s.len(),
            Str::Packed { data, odd, .. } => data.len() * 2 - usize::from(*odd),
        }
    }

    /// Whether the text is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, borrowed where it can be, unpacked where it must be.
    pub fn as_str(&self) -> Cow<'a, str> {
        match *self {
            Str::Token(t) => Cow::Borrowed(t.text()),
            Str::Static(s) => Cow::Borrowed(s),
            Str::Raw(s) => Cow::Borrowed(s),
            Str::Packed { .. } => Cow::Owned(self.with_text(str::to_owned)),
        }
    }

    /// Calls `f` with the text, unpacking a packed string on the stack: no allocation.
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let text = match *self {
            Str::Static(s) | Str::Raw(s) => s,
            Str::Token(t) => t.text(),
            Str::Packed { packing, data, odd } => return with_packed(packing, data, odd, f),
        };
        f(text)
    }

    /// Appends the text to `out`.
    pub fn push_to(&self, out: &mut String) {
        self.with_text(|s| out.push_str(s));
    }

    /// Compares the text with `other` without allocating.
    pub fn eq_str(&self, other: &str) -> bool {
        match *self {
            Str::Token(t) => t.text() == other,
            Str::Static(s) => s == other,
            Str::Raw(s) => s == other,
            Str::Packed { .. } => self.len() == other.len() && self.with_text(|s| s == other),
        }
    }

    /// The text's bytes, unpacked lazily.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (whole, packed) = match *self {
            Str::Token(t) => (t.text().as_bytes(), None),
            Str::Static(s) => (s.as_bytes(), None),
            Str::Raw(s) => (s.as_bytes(), None),
            Str::Packed { packing, data, odd } => (&[][..], Some((packing, data, odd))),
        };
        let unpacked = packed.into_iter().flat_map(|(packing, data, odd)| {
            let n = data.len() * 2 - usize::from(odd);
            (0..n).map(move |i| {
                let b = data[i / 2];
                let v = if i % 2 == 0 { b >> 4 } else { b & 0x0f };
                match (packing, v) {
                    (_, 0..=9) => b'0' + v,
                    (Packing::Nibble, 10) => b'-',
                    (Packing::Nibble, 11) => b'.',
                    (Packing::Hex, _) => b'A' + v - 10,
                    _ => b'?',
                }
            })
        });
        whole.iter().copied().chain(unpacked)
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Str::Token(t) => f.write_str(t.text()),
            Str::Static(s) => f.write_str(s),
            Str::Raw(s) => f.write_str(s),
            Str::Packed { .. } => self.with_text(|s| f.write_str(s)),
        }
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

/// A decoded attribute value or string content: plain text, or a JID if the wire used a JID
/// form.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// A string value.
    Str(Str<'a>),
    /// A JID value.
    Jid(JidRef<'a>),
}

impl<'a> Value<'a> {
    /// The value as text (a JID in its usual text form).
    pub fn as_str(&self) -> Cow<'a, str> {
        match self {
            Value::Str(s) => s.as_str(),
            Value::Jid(j) => Cow::Owned(j.to_string()),
        }
    }

    /// The JID, if the wire carried one.
    pub fn as_jid(&self) -> Option<&JidRef<'a>> {
        match self {
            Value::Jid(j) => Some(j),
            Value::Str(_) => None,
        }
    }

    /// Compares the value's text with `other`; JIDs compare by their text form.
    pub fn eq_str(&self, other: &str) -> bool {
        match self {
            Value::Str(s) => s.eq_str(other),
            Value::Jid(j) => j.to_string() == other,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => fmt::Display::fmt(s, f),
            Value::Jid(j) => fmt::Display::fmt(j, f),
        }
    }
}

/// Unpacks a packed string on the stack and calls `f` with its text. Kept out of line: its
/// buffers would otherwise give every caller of [`Str::with_text`] a large frame to set up,
/// even for a token.
#[inline(never)]
fn with_packed<R>(packing: Packing, data: &[u8], odd: bool, f: impl FnOnce(&str) -> R) -> R {
    // Most packed strings (numbers, ids, JID users) fit 32 characters: a small buffer spares
    // filling the largest one.
    let mut small = packed::UnpackBuf::<32>::new();
    if let Some(s) = packed::unpack_validated(packing, data, odd, &mut small) {
        return f(s);
    }
    let mut buf = packed::UnpackBuf::<256>::new();
    match packed::unpack_validated(packing, data, odd, &mut buf) {
        Some(s) => f(s),
        None => {
            // Longer than a decoded packed string can be (built by hand): unpack the slow
            // way. Invalid digits would only leave the text short.
            let mut s = String::new();
            let _ = packed::unpack(packing, data, odd, 0, &mut s);
            f(&s)
        }
    }
}

/// Hands every string of a decoded stanza (tags, keys, values, JID parts) to `read` and sums
/// what it returns; payloads count by length. The "read every string" measure of `wuts stanza
/// bench --read-strings` and of `cargo bench --bench binary`, so both time the same walk.
/// Recursion is bounded by the decoder's depth limit.
pub fn sum_strings<F: Fn(Str<'_>) -> usize>(
    node: crate::binary::NodeRef<'_, '_>,
    read: &F,
) -> usize {
    use crate::binary::ContentRef;
    // Inlined by hand: as a closure it stayed a call per attribute (perf).
    #[inline(always)]
    fn value<F: Fn(Str<'_>) -> usize>(x: &Value<'_>, read: &F) -> usize {
        match x {
            Value::Str(x) => read(*x),
            Value::Jid(j) => read(j.user) + read(j.server) + usize::from(j.device.unwrap_or(0)),
        }
    }
    let mut acc = read(node.tag());
    for (k, x) in node.attrs() {
        acc += read(*k) + value(x, read);
    }
    acc + match node.content() {
        ContentRef::None => 0,
        ContentRef::Bytes(b) => b.len(),
        ContentRef::Value(x) => value(&x, read),
        ContentRef::Nodes(c) => c.map(|c| sum_strings(c, read)).sum(),
    }
}
