// Shared by build.rs (which lays out the token lookup table) and the encoder (which probes it):
// both sides must hash identically, so the function lives in one file included by both.

/// Number of slots in the token lookup table: a power of two, about three times the token count,
/// so linear probes stay short.
pub const TOKEN_TABLE_SLOTS: usize = 4096;

/// FNV-1a over the token's bytes, folded to a slot index.
#[inline]
pub const fn token_slot(s: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < s.len() {
        h ^= s[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    (h ^ (h >> 16)) as usize & (TOKEN_TABLE_SLOTS - 1)
}
