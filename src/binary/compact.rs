//! The owned node's strings: [`Text`] (a dictionary [`Token`] by reference, short text inline,
//! or longer text on the heap). The node's inline attribute list is in `attrs.rs`.
//!
//! Why: with a heap `String` per tag, key and value, the encoder's first touch of every string
//! was a cache miss on traffic-sized corpora (perf: 60-67 % of `write_str`'s samples), and
//! decoding into owned nodes spent ~44 % of its time in malloc and free. Tokens are held by
//! reference, and text of up to [`INLINE`] bytes sits inside the node.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use super::classify::{MAX_PACKABLE_TOKEN, inline_class};
use super::encode::token;
use super::packed::{self, Packing};
use super::tokens::{DOUBLE_BYTE, SINGLE_BYTE};
use super::value::Str;

/// Longest text kept inside a [`Text`] (longer text goes to the heap). At most 31: the length
/// shares its byte with the class bits.
pub const INLINE: usize = 22;

/// A string of an owned node. Dereferences to `str` and compares with `&str`, so it reads like
/// the `String` it replaces.
///
/// Invariant: text that is a dictionary token is always held as [`Text::token`] code (every
/// constructor looks it up), so the encoder writes an inline or heap text without a lookup.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    /// A dictionary token.
    Token(&'static Token),
    /// Up to [`INLINE`] bytes of UTF-8. `meta` holds the length (low five bits) and the
    /// string's class, found once when the text is made (see [`Class`]), so the encoder does
    /// not scan it again.
    Inline { meta: u8, buf: [u8; INLINE] },
    /// Longer text.
    Heap(Box<str>),
}

/// A dictionary token: its text and wire code (`1..=235`, or `0x100 * (1 + dict) + index`).
///
/// Held by reference in [`Str`](super::Str) and [`Text`]: an eight-byte pointer is written and
/// copied whole, where a bare `u16` code was written in two bytes and read back with wider
/// loads, stalling store forwarding in the decoder (perf: borrowed decode 25 % slower).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    text: &'static str,
    code: u16,
}

impl Token {
    /// The token's text.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The token's wire code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The token with this wire code.
    pub fn by_code(code: u16) -> Option<&'static Token> {
        let i = usize::from(code & 0xff);
        match code >> 8 {
            0 if (1..SINGLE_BYTE.len()).contains(&i) => SINGLE_TOKENS.get(i),
            0 => None,
            d => DOUBLE_TOKENS.get(usize::from(d) - 1).and_then(|t| t.get(i)),
        }
    }

    /// The single-byte token `1..=235` (index 0, reserved, is the empty text).
    pub(crate) fn single(byte: u8) -> &'static Token {
        &SINGLE_TOKENS[usize::from(byte).min(SINGLE_TOKENS.len() - 1)]
    }

    /// Token `index` of double-byte dictionary `dict` (`0..=3`).
    pub(crate) fn double(dict: u8, index: u8) -> &'static Token {
        &DOUBLE_TOKENS[usize::from(dict & 3)][usize::from(index)]
    }
}

static SINGLE_TOKENS: [Token; 236] = {
    let mut t = [Token { text: "", code: 0 }; 236];
    let mut i = 0;
    while i < 236 {
        t[i] = Token {
            text: SINGLE_BYTE[i],
            code: i as u16,
        };
        i += 1;
    }
    t
};

static DOUBLE_TOKENS: [[Token; 256]; 4] = {
    let mut t = [[Token { text: "", code: 0 }; 256]; 4];
    let mut d = 0;
    while d < 4 {
        let mut i = 0;
        while i < 256 {
            t[d][i] = Token {
                text: DOUBLE_BYTE[d][i],
                code: (((d + 1) << 8) | i) as u16,
            };
            i += 1;
        }
        d += 1;
    }
    t
};

/// An inline text's length bits, and its class bits (see [`Class`]).
const LEN_MASK: u8 = 0x1f;
const NIBBLE_BIT: u8 = 0x20;
const HEX_BIT: u8 = 0x40;
const NOT_JID_BIT: u8 = 0x80;

/// What the encoder needs to know of an inline text, which is never a token.
pub(crate) enum Class {
    /// Fits a packed alphabet (nibble first).
    Packed(Packing),
    /// Raw bytes: no packing fits, and it cannot be a JID.
    Raw,
    /// Could be a JID: the encoder parses it (only where a JID is allowed).
    MaybeJid,
}

impl Text {
    /// The empty text.
    pub const EMPTY: Text = Text(Repr::Inline {
        meta: NOT_JID_BIT,
        buf: [0; INLINE],
    });

    /// Inline text of `n` bytes from `buf`, classified now.
    fn inline(buf: [u8; INLINE], n: usize) -> Text {
        Text(Repr::Inline {
            meta: meta_of(&buf[..n]),
            buf,
        })
    }

    /// Sets this text to a string read from a frame, written where the text lies.
    ///
    /// Why in place: a `Text` made on the stack and then moved into a node is written in pieces
    /// (variant, length byte, bytes) and read back whole, and the wide load waits for the
    /// pieces to reach the cache (store forwarding fails; perf: about a third of `fill_node`).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn set_from_frame(&mut self, s: Str<'_>) {
        match s {
            Str::Token(t) => self.0 = Repr::Token(t),
            // Longer than any packable token, and short enough to sit inline.
            Str::Packed { packing, data, odd }
                if data.len() * 2 <= INLINE && data.len() * 2 > MAX_PACKABLE_TOKEN + 1 =>
            {
                self.0 = Repr::Inline {
                    meta: 0,
                    buf: [0; INLINE],
                };
                if let Repr::Inline { meta, buf } = &mut self.0 {
                    let n = packed::unpack_bytes(packing, data, odd, buf).unwrap_or(0);
                    *meta = match packing {
                        // Nibble digits need no scan: nibble packing comes first, and no '@'.
                        Packing::Nibble => n as u8 & LEN_MASK | NIBBLE_BIT | NOT_JID_BIT,
                        // Hex digits that are all decimal pack as nibbles: scan.
                        Packing::Hex => meta_of(&buf[..n]),
                    };
                }
            }
            Str::Raw(t) | Str::Static(t) => match token(t).and_then(Token::by_code) {
                Some(tok) => self.0 = Repr::Token(tok),
                None if t.len() <= INLINE => {
                    self.0 = Repr::Inline {
                        meta: 0,
                        buf: [0; INLINE],
                    };
                    if let Repr::Inline { meta, buf } = &mut self.0 {
                        let n = t.len();
                        buf[..n].copy_from_slice(t.as_bytes());
                        *meta = meta_of(&buf[..n]);
                    }
                }
                None => self.0 = Repr::Heap(t.into()),
            },
            other => *self = super::node::text_of(other),
        }
    }

    /// For the encoder: the class of an inline text; `None` for a token or heap text.
    pub(crate) fn inline_class(&self) -> Option<Class> {
        match self.0 {
            Repr::Inline { meta, .. } => Some(if meta & NIBBLE_BIT != 0 {
                Class::Packed(Packing::Nibble)
            } else if meta & HEX_BIT != 0 {
                Class::Packed(Packing::Hex)
            } else if meta & NOT_JID_BIT != 0 {
                Class::Raw
            } else {
                Class::MaybeJid
            }),
            _ => None,
        }
    }

    /// Text, held as a token when it is one.
    pub fn new(s: &str) -> Text {
        match token(s).and_then(Token::by_code) {
            Some(t) => Text(Repr::Token(t)),
            None => Text::non_token(s),
        }
    }

    /// Text known not to be a token: inline or on the heap.
    fn non_token(s: &str) -> Text {
        let b = s.as_bytes();
        if b.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Text::inline(buf, b.len())
        } else {
            Text(Repr::Heap(s.into()))
        }
    }

    /// Packed digits from a frame: only four digits or fewer can be a token, so longer ones
    /// skip the lookup.
    pub(crate) fn from_packed(s: &str) -> Text {
        if s.len() <= MAX_PACKABLE_TOKEN {
            Text::new(s)
        } else {
            Text::non_token(s)
        }
    }

    /// Packed digits from a frame, unpacked straight into the inline buffer (no `str` is built,
    /// so no UTF-8 check). `None` when the text is longer than [`INLINE`], or short enough to
    /// be a token: the caller then takes [`Text::from_packed`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn from_packed_data(packing: Packing, data: &[u8], odd: bool) -> Option<Text> {
        let mut buf = [0; INLINE];
        let n = packed::unpack_bytes(packing, data, odd, &mut buf)?;
        if n <= MAX_PACKABLE_TOKEN {
            return None;
        }
        Some(match packing {
            // Nibble digits need no scan: nibble packing comes first, and no '@' is possible.
            Packing::Nibble => Text(Repr::Inline {
                meta: n as u8 & LEN_MASK | NIBBLE_BIT | NOT_JID_BIT,
                buf,
            }),
            // Hex digits that are all decimal pack as nibbles: scan.
            Packing::Hex => Text::inline(buf, n),
        })
    }

    /// A token (from a decoded frame).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn from_token(t: &'static Token) -> Text {
        Text(Repr::Token(t))
    }

    /// The token, if this text is a dictionary token.
    pub fn token(&self) -> Option<&'static Token> {
        match self.0 {
            Repr::Token(t) => Some(t),
            _ => None,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Token(t) => t.text,
            // Built from a `&str` cut at its end, so always UTF-8.
            Repr::Inline { meta, buf } => {
                std::str::from_utf8(&buf[..usize::from(meta & LEN_MASK)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }

    /// The text's bytes (no UTF-8 check: what the encoder reads).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Token(t) => t.text.as_bytes(),
            Repr::Inline { meta, buf } => &buf[..usize::from(meta & LEN_MASK)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }
}

/// An inline text's length and class bits (see [`Class`]).
#[inline]
fn meta_of(b: &[u8]) -> u8 {
    let (packing, maybe_jid) = inline_class(b);
    let mut meta = b.len() as u8 & LEN_MASK;
    meta |= match packing {
        Some(Packing::Nibble) => NIBBLE_BIT,
        Some(Packing::Hex) => HEX_BIT,
        None => 0,
    };
    if !maybe_jid {
        meta |= NOT_JID_BIT;
    }
    meta
}

impl Default for Text {
    fn default() -> Self {
        Text::EMPTY
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        match token(&s).and_then(Token::by_code) {
            Some(t) => Text(Repr::Token(t)),
            None if s.len() <= INLINE => Text::non_token(&s),
            // Reuses the allocation.
            None => Text(Repr::Heap(s.into_boxed_str())),
        }
    }
}

impl From<std::borrow::Cow<'_, str>> for Text {
    fn from(s: std::borrow::Cow<'_, str>) -> Self {
        match s {
            std::borrow::Cow::Borrowed(s) => Text::new(s),
            std::borrow::Cow::Owned(s) => Text::from(s),
        }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        match t.0 {
            Repr::Heap(s) => s.into_string(),
            _ => t.as_str().to_owned(),
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder skips the empty-tag check for tokens (`Reader::node_head`).
    #[test]
    fn no_token_the_wire_can_name_is_empty() {
        for byte in 1..=235u8 {
            assert!(!Token::single(byte).text().is_empty(), "single {byte}");
        }
        for dict in 0..4u8 {
            for index in 0..=255u8 {
                assert!(
                    !Token::double(dict, index).text().is_empty(),
                    "{dict}/{index}"
                );
            }
        }
    }

    #[test]
    fn tokens_by_code_match_the_tables() {
        for code in 0..=u16::MAX {
            if let Some(t) = Token::by_code(code) {
                assert_eq!(t.code(), code);
                assert_eq!(token(t.text()), Some(code), "{code:#x}");
            }
        }
        assert!(Token::by_code(0).is_none() && Token::by_code(236).is_none());
        assert_eq!(Token::single(3).text(), "s.whatsapp.net");
    }

    #[test]
    fn tokens_inline_and_heap_read_back() {
        for s in [
            "iq",
            "s.whatsapp.net",
            "",
            "hello",
            "x".repeat(22).as_str(),
            &"y".repeat(23),
        ] {
            let t = Text::new(s);
            assert_eq!(t, s);
            assert_eq!(t.as_str(), s);
            assert_eq!(Text::from(s.to_owned()), t);
        }
        assert!(Text::new("iq").token().is_some());
        assert!(Text::new("iqx").token().is_none());
        assert!(Text::from_packed("1080").token().is_some());
        assert_eq!(std::mem::size_of::<Text>(), 24);
        assert!(std::mem::size_of::<crate::binary::Node>() <= 168);
    }
}
