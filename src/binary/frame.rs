//! Frames: the flag byte, and zlib inflation of compressed frames (bounded), before the node
//! bytes reach a decoder; and compression, for tests and the sandbox.

use std::borrow::Cow;
use std::io::Write as _;

use super::{Error, FLAG_COMPRESSED};

/// Default cap on the size of an inflated (zlib) frame: 16 MiB, the largest frame the transport
/// can carry.
pub const DEFAULT_MAX_INFLATED: usize = 16 << 20;

/// Strips the flag byte and inflates a compressed frame (flag bit 2), refusing to inflate past
/// `max_inflated` bytes. Uncompressed frames are borrowed, not copied.
pub fn unpack(frame: &[u8], max_inflated: usize) -> Result<Cow<'_, [u8]>, Error> {
    let (&flag, body) = frame.split_first().ok_or(Error::EmptyFrame)?;
    if flag & FLAG_COMPRESSED == 0 {
        return Ok(Cow::Borrowed(body));
    }
    inflate(body, max_inflated).map(Cow::Owned)
}

fn inflate(body: &[u8], max: usize) -> Result<Vec<u8>, Error> {
    // Grow the output by doubling, up to one byte past the cap: a bomb is stopped there, never
    // expanded further.
    let hard = max.saturating_add(1);
    let mut z = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).clamp(256, hard));
    loop {
        if out.len() == out.capacity() {
            let cap = out.capacity().saturating_mul(2).min(hard);
            out.reserve_exact(cap - out.len());
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let input = body.get(in_before as usize..).unwrap_or_default();
        let status = z
            .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
            .map_err(Error::Inflate)?;
        if out.len() > max {
            return Err(Error::InflatedTooLarge { limit: max });
        }
        if status == flate2::Status::StreamEnd {
            return Ok(out);
        }
        let stalled = z.total_in() == in_before && z.total_out() == out_before;
        if stalled && out.len() < out.capacity() {
            return Err(Error::InflateTruncated);
        }
    }
}

/// Compresses node bytes into a packed payload with the compression flag (for tests and the
/// sandbox; WhatsApp clients send uncompressed frames).
pub fn compress(node_bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(vec![FLAG_COMPRESSED], flate2::Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = z.write_all(node_bytes);
    z.finish().unwrap_or_default()
}
