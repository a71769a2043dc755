//! One pass over a string to choose its wire form, in the order of protocol-binary.md §2.3:
//! empty, dictionary token, nibble packing, hex packing, a JID form, raw bytes.
//!
//! Before this pass a JID-looking string was scanned four to five times (token lookup, packing
//! check, a search for `@`, the parse, then a token lookup and packing check again on its user
//! part). Now one scan gathers every character class at once; the token lookup runs only where
//! a token is still possible, and a JID is parsed only when every character could belong to one.

use super::encode::{JidForm, jid_form, token};
use super::jid::JidRef;
use super::packed::{PACKED_MAX, Packing};

/// The wire form chosen for a string.
pub(crate) enum Form<'s> {
    /// `FC 00`.
    Empty,
    /// A dictionary token's code (see [`token`]).
    Token(u16),
    /// Packed digits.
    Packed(Packing),
    /// A JID on a known server that prints back exactly as written, with its lossless form.
    Jid(JidRef<'s>, JidForm),
    /// Raw bytes.
    Raw,
}

/// In the nibble alphabet (`0-9 - .`).
const NIBBLE: u8 = 1;
/// In the upper-case hex alphabet (`0-9 A-F`).
const HEX: u8 = 2;
/// May appear in the text form of a JID: ASCII letters and digits, `- . _ : @`.
const JID_CHAR: u8 = 4;
/// `@`.
const AT: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_digit() {
            k |= NIBBLE | HEX;
        }
        if matches!(b, b'-' | b'.') {
            k |= NIBBLE;
        }
        if matches!(b, b'A'..=b'F') {
            k |= HEX;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'@') {
            k |= JID_CHAR;
        }
        if b == b'@' {
            k |= AT;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// Longest dictionary token that also fits a packed alphabet (`"1080"`, `"8000"`, ...). A packable string longer
/// than this cannot be a token, so its lookup is skipped; a test checks the constant against
/// the dictionaries.
pub(crate) const MAX_PACKABLE_TOKEN: usize = 4;

/// Chooses the wire form of `s`; `allow_jid` is false for tags, keys and JID parts.
///
/// A string that starts with a letter (tags, keys, most values) goes to the token lookup
/// first, as nearly all of them are tokens; one that starts with a digit or `A-F` (numbers,
/// ids, most JIDs) is scanned first, and skips the lookup when the scan rules a token out.
#[inline]
pub(crate) fn classify(s: &str, allow_jid: bool) -> Form<'_> {
    let b = s.as_bytes();
    let n = b.len();
    let Some(&first) = b.first() else {
        return Form::Empty;
    };
    let mut scanned = None;
    if CLASS[first as usize] & (NIBBLE | HEX) != 0 {
        let (all, any) = scan(b);
        if all & (NIBBLE | HEX) != 0 && n > MAX_PACKABLE_TOKEN && n <= PACKED_MAX {
            return Form::Packed(packing(all));
        }
        scanned = Some((all, any));
    }
    // No token contains `@` (a test checks), so a string known to have one skips the lookup.
    if scanned.is_none_or(|(_, any)| any & AT == 0) {
        if let Some(code) = token(s) {
            return Form::Token(code);
        }
    }
    let (all, any) = scanned.unwrap_or_else(|| scan(b));
    if all & (NIBBLE | HEX) != 0 && n <= PACKED_MAX {
        return Form::Packed(packing(all));
    }
    if allow_jid && all & JID_CHAR != 0 && any & AT != 0 {
        if let Some(j) = JidRef::parse_exact(s) {
            if let Ok(form) = jid_form(&j) {
                return Form::Jid(j, form);
            }
        }
    }
    Form::Raw
}

/// The form of text known not to be a token (an owned node's inline or heap text, whose
/// constructor already looked it up).
#[inline]
pub(crate) fn classify_non_token(b: &[u8], allow_jid: bool) -> Form<'_> {
    if b.is_empty() {
        return Form::Empty;
    }
    let (all, any) = scan(b);
    if all & (NIBBLE | HEX) != 0 && b.len() <= PACKED_MAX {
        return Form::Packed(packing(all));
    }
    if allow_jid && all & JID_CHAR != 0 && any & AT != 0 {
        // Every JID character is ASCII, so this is UTF-8.
        if let Some(j) = std::str::from_utf8(b).ok().and_then(JidRef::parse_exact) {
            if let Ok(form) = jid_form(&j) {
                return Form::Jid(j, form);
            }
        }
    }
    Form::Raw
}

/// The packing that fits short text known not to be a token, and whether it could be a JID
/// (computed once when an owned node's inline text is made).
pub(crate) fn inline_class(b: &[u8]) -> (Option<Packing>, bool) {
    if b.is_empty() {
        return (None, false);
    }
    let (all, any) = scan(b);
    let packing = (all & (NIBBLE | HEX) != 0 && b.len() <= PACKED_MAX).then(|| packing(all));
    (packing, all & JID_CHAR != 0 && any & AT != 0)
}

/// The classes every byte has (`all`) and any byte has (`any`). Works in chunks of 16 with a
/// check between them, so a long text stops at the first character that is in no alphabet and
/// cannot belong to a JID.
#[inline]
fn scan(b: &[u8]) -> (u8, u8) {
    let (mut all, mut any) = (NIBBLE | HEX | JID_CHAR, 0u8);
    for chunk in b.chunks(16) {
        for &c in chunk {
            let k = CLASS[c as usize];
            all &= k;
            any |= k;
        }
        if all == 0 {
            break;
        }
    }
    (all, any)
}

/// Nibble first: an all-digit string fits both alphabets.
#[inline]
fn packing(all: u8) -> Packing {
    if all & NIBBLE != 0 {
        Packing::Nibble
    } else {
        Packing::Hex
    }
}

#[cfg(test)]
mod tests {
    use super::super::packed;
    use super::super::tokens::{DOUBLE_BYTE, SINGLE_BYTE};
    use super::*;

    #[test]
    fn no_packable_token_is_longer_than_the_constant() {
        let all = SINGLE_BYTE.iter().chain(DOUBLE_BYTE.iter().flatten());
        for t in all.filter(|t| packed::classify(t.as_bytes()).is_some()) {
            assert!(t.len() <= MAX_PACKABLE_TOKEN, "{t:?}");
        }
    }

    #[test]
    fn no_token_contains_an_at_sign() {
        let all = SINGLE_BYTE.iter().chain(DOUBLE_BYTE.iter().flatten());
        assert!(all.filter(|t| t.contains('@')).count() == 0);
    }

    #[test]
    fn picks_forms_in_the_documented_order() {
        let kind = |s: &str| match classify(s, true) {
            Form::Empty => "empty",
            Form::Token(_) => "token",
            Form::Packed(Packing::Nibble) => "nibble",
            Form::Packed(Packing::Hex) => "hex",
            Form::Jid(..) => "jid",
            Form::Raw => "raw",
        };
        assert_eq!(kind(""), "empty");
        assert_eq!(kind("0"), "token");
        assert_eq!(kind("iq"), "token");
        assert_eq!(kind("s.whatsapp.net"), "token");
        assert_eq!(kind("12"), "token");
        assert_eq!(kind("12345"), "nibble");
        assert_eq!(kind("1.5-2"), "nibble");
        assert_eq!(kind("3EB0C5"), "hex");
        assert_eq!(kind("AB"), "hex");
        assert_eq!(kind("1080"), "token");
        assert_eq!(kind("3 little pigs"), "raw");
        assert_eq!(kind("5511999999999@s.whatsapp.net"), "jid");
        assert_eq!(kind("5511999999999:300@s.whatsapp.net"), "raw");
        assert_eq!(kind("a@b.com"), "raw");
        assert_eq!(kind(&"1".repeat(128)), "raw");
        assert_eq!(kind("hello world@s.whatsapp.net"), "raw");
        assert!(matches!(
            classify("5511999999999@s.whatsapp.net", false),
            Form::Raw
        ));
    }
}
