//! Nibble and hex packing (`NIBBLE_8`, `HEX_8`): two characters a byte, odd length flagged in
//! the header's top bit and padded with `0xF` (protocol-binary.md §2.5).

use ascii::{AsciiChar, AsciiStr};

use super::Error;

/// Longest string the packed forms may carry (header holds the byte count in 7 bits, but the
/// protocol caps the character count at 127).
pub const PACKED_MAX: usize = 127;

/// Which packed alphabet a string fits, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// `0-9`, `-`, `.`
    Nibble,
    /// `0-9`, `A-F` (upper case only)
    Hex,
}

/// Character class table: bit 0 = nibble alphabet, bit 1 = hex alphabet. The encoder uses
/// the single pass of `classify.rs`; this stays as the plain reference for tests.
#[cfg(test)]
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 3;
        c += 1;
    }
    t[b'-' as usize] = 1;
    t[b'.' as usize] = 1;
    let mut c = b'A';
    while c <= b'F' {
        t[c as usize] = 2;
        c += 1;
    }
    t
};

/// The packing to use for `s`, nibble first (an all-digit string fits both).
#[cfg(test)]
pub fn classify(s: &[u8]) -> Option<Packing> {
    if s.is_empty() || s.len() > PACKED_MAX {
        return None;
    }
    let mut acc = 3u8;
    for &b in s {
        acc &= CLASS[b as usize];
        if acc == 0 {
            return None;
        }
    }
    if acc & 1 != 0 {
        Some(Packing::Nibble)
    } else {
        Some(Packing::Hex)
    }
}

/// Packed value of each character of either alphabet (others are never looked up).
static VALUE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = c - b'0';
        c += 1;
    }
    t[b'-' as usize] = 10;
    t[b'.' as usize] = 11;
    let mut c = b'A';
    while c <= b'F' {
        t[c as usize] = c - b'A' + 10;
        c += 1;
    }
    t
};

/// Appends the packed form of `s` (already classified) to `out`, tag byte included.
pub fn pack(s: &[u8], packing: Packing, out: &mut Vec<u8>) {
    let tag = match packing {
        Packing::Nibble => super::NIBBLE_8,
        Packing::Hex => super::HEX_8,
    };
    let n = s.len();
    let bytes = n.div_ceil(2);
    let header = (bytes as u8) | if n % 2 == 1 { 0x80 } else { 0 };
    // Packed into a stack buffer, then one copy: no per-byte capacity checks.
    let mut buf = [0u8; 2 + PACKED_MAX.div_ceil(2)];
    buf[0] = tag;
    buf[1] = header;
    let pairs = s.chunks_exact(2);
    if let [last] = pairs.remainder() {
        buf[1 + bytes] = (VALUE[*last as usize] << 4) | 0x0f;
    }
    for (dst, p) in buf[2..].iter_mut().zip(pairs) {
        *dst = (VALUE[p[0] as usize] << 4) | VALUE[p[1] as usize];
    }
    let total = 2 + bytes;
    if total <= SHORT {
        // A copy of a fixed size is a few stores; one of the exact length was a call to
        // `memcpy` (perf: 7 % of encoding group-create, whose JID users are phone numbers).
        let start = out.len();
        out.extend_from_slice(&buf[..SHORT]);
        out.truncate(start + total);
    } else {
        out.extend_from_slice(&buf[..total]);
    }
}

/// Packed strings up to this many bytes, header included, are copied out whole (see [`pack`]).
const SHORT: usize = 16;

/// Digit lookup for unpacking: 0xff marks a value outside the alphabet (the nibble pad 15 is
/// only legal as the dropped last half of an odd string, which is never looked up).
static NIBBLE_CHARS: [u8; 16] = *b"0123456789-.\xff\xff\xff\xff";
static HEX_CHARS: [u8; 16] = *b"0123456789ABCDEF";

/// Unpacks `data` (the bytes after the header) into `out`; `odd` drops the final pad.
/// `at` is the offset of `data` in the frame, for error messages.
pub fn unpack(
    packing: Packing,
    data: &[u8],
    odd: bool,
    at: usize,
    out: &mut String,
) -> Result<(), Error> {
    let table = match packing {
        Packing::Nibble => &NIBBLE_CHARS,
        Packing::Hex => &HEX_CHARS,
    };
    // Exactly the text's length: reserving `2 * data.len()` for an odd string made a caller
    // that had sized `out` to the text reallocate for the extra byte.
    out.reserve((data.len() * 2).saturating_sub(usize::from(odd)));
    let last = data.len().wrapping_sub(1);
    for (i, &b) in data.iter().enumerate() {
        let hi = table[(b >> 4) as usize];
        if hi == 0xff {
            return Err(Error::InvalidNibble {
                at: at + i,
                value: b >> 4,
            });
        }
        out.push(hi as char);
        if odd && i == last {
            // The low nibble is padding; whatever it holds is dropped, as every decoder does.
            break;
        }
        let lo = table[(b & 0x0f) as usize];
        if lo == 0xff {
            return Err(Error::InvalidNibble {
                at: at + i,
                value: b & 0x0f,
            });
        }
        out.push(lo as char);
    }
    Ok(())
}

/// Longest text a packed string can hold: 127 bytes of two characters each.
pub const UNPACKED_MAX: usize = 254;

/// Both characters of every byte, per alphabet. Values outside the alphabet map to `?`; they
/// are never read, because the decoder validates packed data before it hands a string out.
static NIBBLE_PAIRS: [[u8; 2]; 256] = pairs(b"0123456789-.????");
static HEX_PAIRS: [[u8; 2]; 256] = pairs(b"0123456789ABCDEF");

const fn pairs(chars: &[u8; 16]) -> [[u8; 2]; 256] {
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [chars[b >> 4], chars[b & 15]];
        b += 1;
    }
    t
}

/// Both characters of every byte as ASCII characters, per alphabet, for [`unpack_validated`].
static NIBBLE_ASCII: [[AsciiChar; 2]; 256] = ascii_pairs(&NIBBLE_PAIRS);
static HEX_ASCII: [[AsciiChar; 2]; 256] = ascii_pairs(&HEX_PAIRS);

const fn ascii_pairs(bytes: &[[u8; 2]; 256]) -> [[AsciiChar; 2]; 256] {
    let mut t = [[AsciiChar::Null; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [
            AsciiChar::new(bytes[b][0] as char),
            AsciiChar::new(bytes[b][1] as char),
        ];
        b += 1;
    }
    t
}

/// A buffer of ASCII characters to unpack into.
///
/// Why ASCII characters and not bytes: the text of a packed string is ASCII by construction,
/// but the crate forbids the unchecked conversion, and checking the bytes with `from_utf8`
/// was 8 % of decoding and reading the mixed corpus (perf). A slice of `AsciiChar` is `str`
/// by its type (the `ascii` crate), so the text needs no check.
pub struct UnpackBuf<const N: usize>(pub [AsciiChar; N]);

impl<const N: usize> UnpackBuf<N> {
    /// A buffer of NULs.
    pub const fn new() -> Self {
        UnpackBuf([AsciiChar::Null; N])
    }
}

/// Unpacks validated data into `buf` with one table load per byte (no per-character capacity
/// checks), and returns the text. `None` if `data` is longer than a packed string can be, or
/// than `buf` holds.
#[inline]
pub fn unpack_validated<'b, const N: usize>(
    packing: Packing,
    data: &[u8],
    odd: bool,
    buf: &'b mut UnpackBuf<N>,
) -> Option<&'b str> {
    let table = match packing {
        Packing::Nibble => &NIBBLE_ASCII,
        Packing::Hex => &HEX_ASCII,
    };
    let n = (data.len() * 2).checked_sub(usize::from(odd))?;
    if data.len() * 2 > N || data.len() * 2 > UNPACKED_MAX {
        return None;
    }
    for (dst, &b) in buf.0.chunks_exact_mut(2).zip(data) {
        dst.copy_from_slice(&table[b as usize]);
    }
    let text: &AsciiStr = buf.0.get(..n)?.into();
    Some(text.as_str())
}

/// Unpacks validated data to the front of `buf` as bytes (the pad of an odd string is written
/// past the text) and returns the text's length; `None` if `buf` is shorter than
/// `2 * data.len()`. For an owned node's inline text, which needs no `str` to be built.
pub fn unpack_bytes(packing: Packing, data: &[u8], odd: bool, buf: &mut [u8]) -> Option<usize> {
    let table = match packing {
        Packing::Nibble => &NIBBLE_PAIRS,
        Packing::Hex => &HEX_PAIRS,
    };
    let n = (data.len() * 2).checked_sub(usize::from(odd))?;
    if data.len() * 2 > buf.len() {
        return None;
    }
    for (dst, &b) in buf.chunks_exact_mut(2).zip(data) {
        dst.copy_from_slice(&table[b as usize]);
    }
    Some(n)
}

/// Checks packed data without building a string (the decoders use [`validate_in`]).
#[cfg(test)]
pub fn validate(packing: Packing, data: &[u8], odd: bool, at: usize) -> Result<(), Error> {
    // Every nibble is a hex digit.
    if packing == Packing::Hex || nibbles_ok(data, odd) {
        return Ok(());
    }
    find_bad_nibble(data, odd, at)
}

/// Checks packed data lying at `at` in `frame` without building a string: the decoders
/// validate eagerly so that a tree they hand out never fails later on access. When the frame has eight bytes from `at`
/// and the string is no longer, they are checked as one word, masked to the string, with no
/// loop (most packed strings are phone numbers of at most eight bytes; the table loop was
/// still ~5 % of decoding and reading the group-create corpus, perf).
#[inline]
pub fn validate_in(
    packing: Packing,
    frame: &[u8],
    at: usize,
    data: &[u8],
    odd: bool,
) -> Result<(), Error> {
    if packing == Packing::Hex {
        return Ok(());
    }
    let word = frame
        .get(at..)
        .and_then(|w| w.first_chunk::<8>())
        .filter(|_| data.len() <= 8);
    let ok = match word {
        Some(w) => word_ok(*w, data.len(), odd),
        None => nibbles_ok(data, odd),
    };
    if ok {
        Ok(())
    } else {
        find_bad_nibble(data, odd, at)
    }
}

/// Whether the first `len` (at most 8) bytes of `w` are nibble-packed data in the alphabet;
/// the pad of an odd string (the last low half) is not checked. A nibble of 12 to 15 is one
/// whose two top bits are both set.
#[inline(always)]
fn word_ok(w: [u8; 8], len: usize, odd: bool) -> bool {
    const TOP: u64 = 0x8888_8888_8888_8888;
    let keep = match len {
        8.. => u64::MAX,
        n => (1u64 << (8 * n)) - 1,
    };
    let pad = if odd && len > 0 {
        0x0fu64 << (8 * (len - 1))
    } else {
        0
    };
    let x = u64::from_le_bytes(w) & keep & !pad;
    x & (x << 1) & TOP == 0
}

/// Whether every nibble of nibble-packed `data` is in the alphabet (0 to 11), one table load
/// per byte and no branch; the pad of an odd string (the last low half) is not checked. Why:
/// the per-byte loop that tracks error positions was ~9 % of decoding and reading the
/// group-create corpus (perf); the position is found again only for a bad string.
#[cfg_attr(not(debug_assertions), inline(always))]
fn nibbles_ok(data: &[u8], odd: bool) -> bool {
    let (body, last) = match (odd, data.split_last()) {
        (true, Some((&last, body))) => (body, last >> 4),
        _ => (data, 0),
    };
    let mut bad = u8::from(last >= 12);
    for &b in body {
        bad |= BAD_NIBBLE[usize::from(b)];
    }
    bad == 0
}

/// 1 for a byte with a nibble of 12 to 15, either half.
static BAD_NIBBLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = ((b >> 4) >= 12 || (b & 15) >= 12) as u8;
        b += 1;
    }
    t
};

/// The first nibble outside the alphabet, as an error with its position.
#[cold]
fn find_bad_nibble(data: &[u8], odd: bool, at: usize) -> Result<(), Error> {
    let last = data.len().wrapping_sub(1);
    for (i, &b) in data.iter().enumerate() {
        let hi = b >> 4;
        if (12..=15).contains(&hi) {
            return Err(Error::InvalidNibble {
                at: at + i,
                value: hi,
            });
        }
        if odd && i == last {
            break;
        }
        let lo = b & 0x0f;
        if (12..=15).contains(&lo) {
            return Err(Error::InvalidNibble {
                at: at + i,
                value: lo,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        let p = classify(s.as_bytes()).expect("packable");
        pack(s.as_bytes(), p, &mut v);
        v
    }

    #[test]
    fn packs_the_fact_sheet_examples() {
        assert_eq!(packed("123.45-1"), [0xff, 0x04, 0x12, 0x3b, 0x45, 0xa1]);
        assert_eq!(packed("403"), [0xff, 0x82, 0x40, 0x3f]);
        assert_eq!(
            packed("-.0123456789"),
            [0xff, 0x06, 0xab, 0x01, 0x23, 0x45, 0x67, 0x89]
        );
        assert_eq!(
            packed("DEADBEEF1"),
            [0xfb, 0x85, 0xde, 0xad, 0xbe, 0xef, 0x1f]
        );
    }

    #[test]
    fn lower_case_hex_and_long_strings_are_not_packed() {
        assert_eq!(classify(b"deadbeef"), None);
        assert_eq!(classify(&[b'1'; 128]), None);
        assert_eq!(classify(&[b'1'; 127]), Some(Packing::Nibble));
        assert_eq!(classify(b""), None);
    }

    #[test]
    fn unpacks_validated_strings_of_both_parities() {
        let mut buf = UnpackBuf::<256>::new();
        for s in [
            "403",
            "12",
            "-.0123456789",
            "DEADBEEF1",
            "A",
            &"7".repeat(127),
        ] {
            let mut v = Vec::new();
            let p = classify(s.as_bytes()).expect("packable");
            pack(s.as_bytes(), p, &mut v);
            let got = unpack_validated(p, &v[2..], v[1] & 0x80 != 0, &mut buf);
            assert_eq!(got, Some(s));
            // A buffer sized to the text is not grown (the pad of an odd string used to be).
            let mut slow = String::with_capacity(s.len());
            let cap = slow.capacity();
            unpack(p, &v[2..], v[1] & 0x80 != 0, 0, &mut slow).expect("valid");
            assert_eq!(slow, s);
            assert_eq!(slow.capacity(), cap);
        }
    }

    #[test]
    fn rejects_nibbles_outside_the_alphabet() {
        let mut s = String::new();
        let err = unpack(Packing::Nibble, &[0x1c], false, 7, &mut s).unwrap_err();
        assert!(matches!(err, Error::InvalidNibble { at: 7, value: 12 }));
        assert!(validate(Packing::Nibble, &[0xd1], false, 0).is_err());
        // A pad nibble (15) in the middle of a nibble string is invalid too.
        assert!(validate(Packing::Nibble, &[0x1f, 0x11], false, 0).is_err());
        assert!(unpack(Packing::Nibble, &[0x1f, 0x11], false, 0, &mut s).is_err());
    }

    #[test]
    fn the_framed_word_check_agrees_with_the_byte_loop() {
        // Strings of 1 to 10 bytes at the start of a 12-byte frame, with any byte anywhere in
        // the frame (inside the string or after it), both parities.
        for len in 1..=10usize {
            for pos in 0..12 {
                for b in 0..=255u8 {
                    let mut frame = [0x12u8; 12];
                    frame[pos] = b;
                    let data = &frame[..len];
                    for odd in [false, true] {
                        let slow = find_bad_nibble(data, odd, 0).is_ok();
                        let fast = validate_in(Packing::Nibble, &frame, 0, data, odd).is_ok();
                        assert_eq!(fast, slow, "{frame:x?} len={len} odd={odd}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_word_check_agrees_with_the_byte_loop() {
        // Every byte in every position of strings up to 19 bytes, both parities.
        for len in 1..20usize {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut data = vec![0x12u8; len];
                    data[pos] = b;
                    for odd in [false, true] {
                        let slow = find_bad_nibble(&data, odd, 0).is_ok();
                        assert_eq!(nibbles_ok(&data, odd), slow, "{data:x?} odd={odd}");
                        assert_eq!(validate(Packing::Nibble, &data, odd, 0).is_ok(), slow);
                    }
                }
            }
        }
    }
}
