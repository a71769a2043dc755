//! WABinary: WhatsApp's binary XML stanza codec (dictionary version 3).
//!
//! - [`encode`] writes an owned [`Node`] into a caller's buffer, flag byte first.
//! - [`unpack`] strips the flag byte of a received frame and inflates it if compressed.
//! - [`Tree::decode`] is the zero-copy decoder for the hot path: strings stay in the frame.
//!   [`decode_owned`] / [`Node::decode`] read straight into an owned [`Node`] for everything
//!   else.
//! - [`Jid`] / [`JidRef`] cover every JID wire form; [`json`] is the inspector's JSON form;
//!   nodes print in an XML-like text form with `{}` (one line) or `{:#}` (indented).
//!
//! Facts: protocol-binary.md; choices where public implementations differ are written where
//! they are made (strings become JID forms only when lossless, see [`encode`]). No I/O here.

#![deny(clippy::disallowed_methods)]

mod arena;
mod attrs;
mod classify;
mod compact;
mod decode;
mod encode;
mod error;
mod frame;
pub mod jid;
pub mod json;
mod node;
mod owned;
mod packed;
mod payload;
mod text;
#[allow(dead_code)]
mod token_hash;
mod value;

#[allow(clippy::all)]
mod tokens {
    include!(concat!(env!("OUT_DIR"), "/tokens.rs"));
}

pub use attrs::{Attrs, INLINE_ATTRS};
pub use compact::{INLINE, Text, Token};
pub use decode::{Children, ContentRef, NodeRef, Tree};
pub use encode::{encode, encode_to_vec, token};
pub use error::Error;
pub use frame::{DEFAULT_MAX_INFLATED, compress, unpack};
pub use jid::{Jid, JidRef, ParseJidError};
pub use node::{AttrValue, Content, Node};
pub use owned::decode_owned;
pub use packed::{PACKED_MAX, Packing};
pub use payload::Payload;
pub use value::{Str, Value, sum_strings};

/// Deepest nesting the decoder and encoder accept. Real stanzas nest fewer than 10 levels.
pub const MAX_DEPTH: usize = 128;
/// Flag bit of a packed payload: the body is a zlib stream.
pub const FLAG_COMPRESSED: u8 = 0x02;

pub(crate) const LIST_EMPTY: u8 = 0;
pub(crate) const DICTIONARY_0: u8 = 236;
pub(crate) const DICTIONARY_3: u8 = 239;
pub(crate) const INTEROP_JID: u8 = 245;
pub(crate) const FB_JID: u8 = 246;
pub(crate) const AD_JID: u8 = 247;
pub(crate) const LIST_8: u8 = 248;
pub(crate) const LIST_16: u8 = 249;
pub(crate) const JID_PAIR: u8 = 250;
pub(crate) const HEX_8: u8 = 251;
pub(crate) const BINARY_8: u8 = 252;
pub(crate) const BINARY_20: u8 = 253;
pub(crate) const BINARY_32: u8 = 254;
pub(crate) const NIBBLE_8: u8 = 255;
