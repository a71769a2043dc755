//! The encoder: an owned [`Node`] into a caller's buffer.
//!
//! String rules, in order (protocol-binary.md §2.3): empty → `FC 00`; dictionary token; nibble
//! packing; upper-case hex packing; a JID form when the text is a JID on a known server that
//! prints back exactly as written; raw bytes. The encoder is lossless or refuses: whatever it
//! writes decodes back to the same text.

use std::borrow::Cow;

use super::classify::{Form, classify, classify_non_token};
use super::compact::{Class, Text};
use super::jid::{self, Jid, JidRef};
use super::packed;
use super::token_hash::{TOKEN_TABLE_SLOTS, token_key, token_slot};
use super::tokens::{CODES, KEYS, LOOKUP, TEXTS};
use super::value::Str;
use super::*;

/// Longest token in the dictionaries: longer strings skip the lookup.
const MAX_TOKEN_LEN: usize = 48;

/// Encodes `node` as a packed payload (flag byte `00` first) appended to `out`. On error `out`
/// is left as it was.
pub fn encode(node: &Node, out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    out.push(0);
    let r = write_node(node, out, 0);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Encodes `node` into a new buffer (flag byte first).
pub fn encode_to_vec(node: &Node) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(64);
    encode(node, &mut out)?;
    Ok(out)
}

/// The wire code of a token: `1..=235` single byte, `0x100 * (1 + dict) + index` double byte.
#[inline]
pub fn token(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    let n = b.len();
    if n == 0 || n > MAX_TOKEN_LEN {
        return None;
    }
    let key = token_key(b);
    let mut slot = token_slot(key, n);
    loop {
        let entry = LOOKUP[slot] as usize;
        if entry == 0 {
            return None;
        }
        let i = entry - 1;
        let (len, k0, k1) = KEYS[i];
        // Up to 16 bytes, length and key determine the string: no byte comparison needed.
        if len as usize == n && (k0, k1) == key && (n <= 16 || TEXTS[i].as_bytes() == b) {
            return Some(CODES[i]);
        }
        slot = (slot + 1) & (TOKEN_TABLE_SLOTS - 1);
    }
}

fn write_node(node: &Node, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep {
            at: 0,
            max: MAX_DEPTH,
        });
    }
    if node.tag.as_bytes().is_empty() {
        return Err(Error::EmptyTag);
    }
    let has_content = !matches!(node.content, Content::None);
    let size = 1 + 2 * node.attrs.len() + usize::from(has_content);
    write_list_header(size, "attribute list", out)?;
    write_text(&node.tag, false, out)?;
    for (k, v) in node.attrs.iter() {
        write_text(k, false, out)?;
        match v {
            AttrValue::Str(s) => write_text(s, true, out)?,
            AttrValue::Jid(j) => write_owned_jid(j, out)?,
        }
    }
    match &node.content {
        Content::None => {}
        Content::Bytes(b) => write_bytes(b, out)?,
        Content::Str(s) => write_text(s, true, out)?,
        Content::Jid(j) => write_owned_jid(j, out)?,
        Content::Nodes(children) => {
            if children.is_empty() {
                out.push(LIST_EMPTY);
            } else {
                write_list_header(children.len(), "child list", out)?;
                for c in children {
                    write_node(c, out, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}

fn write_list_header(n: usize, what: &'static str, out: &mut Vec<u8>) -> Result<(), Error> {
    if n < 256 {
        out.extend_from_slice(&[LIST_8, n as u8]);
    } else if n <= 0xffff {
        out.extend_from_slice(&[LIST_16, (n >> 8) as u8, n as u8]);
    } else {
        return Err(Error::TooLarge {
            what,
            len: n,
            max: 0xffff,
        });
    }
    Ok(())
}

/// Raw bytes with the shortest length prefix.
fn write_bytes(b: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let n = b.len();
    if n < 256 {
        out.reserve(2 + n);
        out.extend_from_slice(&[BINARY_8, n as u8]);
    } else if n < 1 << 20 {
        out.reserve(4 + n);
        out.extend_from_slice(&[BINARY_20, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    } else {
        let len = u32::try_from(n).map_err(|_| Error::TooLarge {
            what: "binary payload",
            len: n,
            max: u32::MAX as usize,
        })?;
        out.reserve(5 + n);
        out.push(BINARY_32);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(b);
    Ok(())
}

/// Writes text with the string rules. Only text over 4 GiB, which has no length prefix, fails.
#[inline]
fn write_str(s: &str, allow_jid: bool, out: &mut Vec<u8>) -> Result<(), Error> {
    write_form(s.as_bytes(), classify(s, allow_jid), out)
}

/// Writes an owned node's text: a token by its code, other text classified without a lookup
/// (a [`Text`] that is not held as a token is none).
#[inline]
fn write_text(t: &Text, allow_jid: bool, out: &mut Vec<u8>) -> Result<(), Error> {
    if let Some(tok) = t.token() {
        write_token(tok.code(), out);
        return Ok(());
    }
    let b = t.as_bytes();
    match t.inline_class() {
        // Classified when the text was made: no scan here.
        Some(Class::Packed(p)) => {
            packed::pack(b, p, out);
            Ok(())
        }
        Some(Class::Raw) => write_form(b, if b.is_empty() { Form::Empty } else { Form::Raw }, out),
        Some(Class::MaybeJid) | None => write_form(b, classify_non_token(b, allow_jid), out),
    }
}

#[inline]
fn write_form(b: &[u8], form: Form<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    match form {
        Form::Empty => out.extend_from_slice(&[BINARY_8, 0]),
        Form::Token(code) => write_token(code, out),
        Form::Packed(p) => packed::pack(b, p, out),
        Form::Jid(j, form) => write_jid_form(&j, form, out)?,
        Form::Raw => write_bytes(b, out)?,
    }
    Ok(())
}

#[inline]
fn write_token(code: u16, out: &mut Vec<u8>) {
    if code < 0x100 {
        out.push(code as u8);
    } else {
        out.extend_from_slice(&[DICTIONARY_0 + ((code >> 8) - 1) as u8, code as u8]);
    }
}

/// Writes a string that may still be packed (a JID part taken from a decoded tree).
fn write_str_value(s: &Str<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    match *s {
        Str::Token(t) => {
            write_token(t.code(), out);
            Ok(())
        }
        Str::Static(t) => write_str(t, false, out),
        Str::Raw(t) => write_str(t, false, out),
        Str::Packed { packing, data, odd } => {
            out.push(match packing {
                packed::Packing::Nibble => NIBBLE_8,
                packed::Packing::Hex => HEX_8,
            });
            out.push(data.len() as u8 | if odd { 0x80 } else { 0 });
            out.extend_from_slice(data);
            Ok(())
        }
    }
}

/// Which JID form carries `j` without loss.
pub(crate) enum JidForm {
    Pair,
    Ad { domain: u8, device: u8 },
    Fb { device: u16 },
    Interop { device: u16 },
}

pub(crate) fn jid_form(j: &JidRef<'_>) -> Result<JidForm, &'static str> {
    let server = j.server;
    if let Some(device) = j.device {
        if server.eq_str(jid::SERVER_INTEROP) {
            return Ok(JidForm::Interop { device });
        }
        if server.eq_str(jid::SERVER_MSGR) {
            return Ok(JidForm::Fb { device });
        }
        if j.integrator != 0 {
            return Err("only interop JIDs carry an integrator");
        }
        let domain = [
            jid::SERVER_PN,
            jid::SERVER_LID,
            jid::SERVER_HOSTED,
            jid::SERVER_HOSTED_LID,
        ]
        .into_iter()
        .find(|s| server.eq_str(s))
        .and_then(jid::ad_domain)
        .ok_or("this server has no device form")?;
        let device = u8::try_from(device).map_err(|_| "device above 255")?;
        let domain = match (j.agent, domain) {
            (0, d) => d,
            (agent, 0) if !matches!(agent, 1 | 128 | 129) => agent,
            _ => return Err("an agent is only carried on s.whatsapp.net"),
        };
        return Ok(JidForm::Ad { domain, device });
    }
    if j.agent != 0 {
        return Err("an agent needs a device");
    }
    if j.integrator != 0 {
        return Err("an integrator needs a device");
    }
    if server.is_empty() {
        return Err("empty server");
    }
    Ok(JidForm::Pair)
}

fn write_jid_form(j: &JidRef<'_>, form: JidForm, out: &mut Vec<u8>) -> Result<(), Error> {
    let parts = JidParts {
        form,
        integrator: j.integrator,
        user_empty: j.user.is_empty(),
    };
    parts.write(
        out,
        |o| write_str_value(&j.user, o),
        |o| write_str_value(&j.server, o),
    )
}

/// Writes a typed JID: the user is a [`Text`] (a token by its code, other text classified
/// without a lookup and without a UTF-8 check), the server text (known servers are tokens).
fn write_owned_jid(j: &Jid, out: &mut Vec<u8>) -> Result<(), Error> {
    // The form depends on everything but the user.
    let shape = JidRef {
        user: Str::Static(""),
        server: match &j.server {
            Cow::Borrowed(s) => Str::Static(s),
            Cow::Owned(s) => Str::Raw(s),
        },
        agent: j.agent,
        device: j.device,
        integrator: j.integrator,
    };
    let form = jid_form(&shape).map_err(|reason| Error::JidNotEncodable {
        jid: j.to_string(),
        reason,
    })?;
    let parts = JidParts {
        form,
        integrator: j.integrator,
        user_empty: j.user.as_bytes().is_empty(),
    };
    parts.write(
        out,
        |o| write_text(&j.user, false, o),
        |o| match jid::server_token(&j.server) {
            Some(code) => {
                write_token(code, o);
                Ok(())
            }
            None => write_str(&j.server, false, o),
        },
    )
}

/// A JID's form and the parts of it that are not strings.
struct JidParts {
    form: JidForm,
    integrator: u16,
    user_empty: bool,
}

impl JidParts {
    fn write(
        self,
        out: &mut Vec<u8>,
        user: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
        server: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self.form {
            JidForm::Pair => {
                out.push(JID_PAIR);
                if self.user_empty {
                    out.push(LIST_EMPTY);
                } else {
                    user(out)?;
                }
                server(out)?;
            }
            JidForm::Ad { domain, device } => {
                out.extend_from_slice(&[AD_JID, domain, device]);
                user(out)?;
            }
            JidForm::Fb { device } => {
                out.push(FB_JID);
                user(out)?;
                out.extend_from_slice(&device.to_be_bytes());
                server(out)?;
            }
            JidForm::Interop { device } => {
                // The server trailer is written (whatsmeow's choice): every decoder reads one,
                // and whatsapp-rust's claim that WA Web omits it is unverified
                // (protocol-binary.md §10).
                out.push(INTEROP_JID);
                user(out)?;
                out.extend_from_slice(&device.to_be_bytes());
                out.extend_from_slice(&self.integrator.to_be_bytes());
                server(out)?;
            }
        }
        Ok(())
    }
}
