// Shared by build.rs (which lays out the token lookup table) and the encoder (which probes it):
// both sides must compute keys and slots identically, so the functions live in one file
// included by both.

/// Number of slots in the token lookup table: a power of two, about three times the token count,
/// so linear probes stay short.
pub const TOKEN_TABLE_SLOTS: usize = 4096;

/// A string's key: two words from fixed-size, overlapping loads of its first and last bytes.
/// For strings of at most 16 bytes the key and the length together determine the string, so a
/// token candidate of that size is confirmed without comparing bytes.
#[inline]
pub fn token_key(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    if n >= 8 {
        (load8(&s[..8]), load8(&s[n - 8..]))
    } else if n >= 4 {
        (load4(&s[..4]) | load4(&s[n - 4..]) << 32, 0)
    } else if n > 0 {
        (
            s[0] as u64 | (s[n / 2] as u64) << 8 | (s[n - 1] as u64) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The slot of a key in the lookup table.
#[inline]
pub fn token_slot(key: (u64, u64), len: usize) -> usize {
    let h =
        (key.0 ^ key.1.rotate_left(31) ^ (len as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 52) as usize & (TOKEN_TABLE_SLOTS - 1)
}

#[inline]
fn load4(s: &[u8]) -> u64 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(s);
    u32::from_le_bytes(buf) as u64
}

#[inline]
fn load8(s: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(s);
    u64::from_le_bytes(buf)
}
