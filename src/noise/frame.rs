//! Framing below the Noise layer (facts sheet 1.2, 1.3): the intro header, 3-byte big-endian
//! lengths, and a sans-IO decoder.
//!
//! The inbound direction is a byte stream: one WebSocket message may carry several frames or
//! part of one. [`FrameDecoder`] buffers what it is fed and hands out complete frames; it
//! tells "need more bytes" (`Ok(None)`) from "these bytes are wrong" (`Err`). It never panics,
//! buffers only what it is fed, and rejects an oversized frame as soon as its length is read,
//! without waiting for its body.

use thiserror::Error;

/// `'W' 'A'`, magic 6, dictionary version 3: the intro header, and also the Noise prologue.
pub const PROLOGUE: [u8; 4] = [0x57, 0x41, 0x06, 0x03];

/// `'E' 'D' 0x00 0x01`: marks the optional edge-routing prefix in front of [`PROLOGUE`].
pub const ROUTING_MAGIC: [u8; 4] = [0x45, 0x44, 0x00, 0x01];

/// Largest payload a 3-byte length can describe (2^24 − 1); also the default frame cap.
pub const MAX_FRAME_LEN: usize = 0xff_ffff;

/// Largest edge-routing info the server-side decoder accepts. The format allows 2^24 − 1, but
/// real routing info is a handful of bytes (6 in a capture, whatsapp-rust issue #941), and
/// the prefix arrives before any authentication, so we refuse to buffer more than this.
pub const MAX_ROUTING_INFO_LEN: usize = 4096;

/// Length of the big-endian frame length prefix.
pub const LEN_PREFIX: usize = 3;

/// What can be wrong with framed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream did not start with `[ED 00 01 len routing] WA 06 03`.
    #[error("bad intro header: expected WA 06 03 (optionally after ED 00 01), got {found:02x?}")]
    BadIntro {
        /// The bytes found where the header was expected (up to 4).
        found: Vec<u8>,
    },
    /// A frame (or routing prefix) announces more bytes than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced or requested length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The stream ended inside a frame or header.
    #[error("stream ended inside a frame: {buffered} bytes buffered, {expected} expected")]
    Truncated {
        /// Bytes buffered when the stream ended.
        buffered: usize,
        /// Bytes the pending frame or header needs.
        expected: usize,
    },
}

/// Reads a 3-byte big-endian length.
fn be24(b: &[u8]) -> Option<usize> {
    match b {
        [a, b, c, ..] => Some(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
        _ => None,
    }
}

/// Appends a 3-byte big-endian length. Fails for lengths above [`MAX_FRAME_LEN`].
pub fn write_len(len: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let n = u32::try_from(len)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME_LEN)
        .ok_or(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        })?;
    out.extend_from_slice(&n.to_be_bytes()[1..]);
    Ok(())
}

/// Appends the intro header a client sends once, before its first frame: the optional
/// edge-routing prefix (`ED 00 01` + 3-byte length + routing info), then `WA 06 03`.
/// The routing prefix is never part of the Noise prologue.
pub fn write_intro(routing_info: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), FrameError> {
    if let Some(info) = routing_info {
        out.extend_from_slice(&ROUTING_MAGIC);
        write_len(info.len(), out)?;
        out.extend_from_slice(info);
    }
    out.extend_from_slice(&PROLOGUE);
    Ok(())
}

/// Appends one frame: 3-byte length then the payload.
pub fn write_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    write_len(payload.len(), out)?;
    out.extend_from_slice(payload);
    Ok(())
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Server side, before the client's intro header has been read.
    Intro,
    /// Reading frames.
    Frames,
    /// A previous call found invalid bytes; the stream is dead.
    Failed(FrameError),
}

/// Sans-IO frame decoder: [`feed`](Self::feed) bytes in, [`next_frame`](Self::next_frame)
/// complete frames out.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`; consumed bytes are dropped lazily on the next feed.
    start: usize,
    stage: Stage,
    max_frame_len: usize,
    routing_info: Option<Vec<u8>>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder for the client side: the server sends frames with no intro header.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            stage: Stage::Frames,
            max_frame_len: MAX_FRAME_LEN,
            routing_info: None,
        }
    }

    /// A decoder for the server side: the stream starts with the client's intro header
    /// (`[ED 00 01 len routing] WA 06 03`), which is checked and stripped.
    pub fn expecting_intro() -> Self {
        Self {
            stage: Stage::Intro,
            ..Self::new()
        }
    }

    /// Lowers the largest accepted frame (and routing prefix) length; values above
    /// [`MAX_FRAME_LEN`] are capped to it.
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max.min(MAX_FRAME_LEN);
        self
    }

    /// The edge-routing info the client sent in its intro header, once the header is read.
    pub fn routing_info(&self) -> Option<&[u8]> {
        self.routing_info.as_deref()
    }

    /// Buffers bytes received from the transport.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as (part of) a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are needed, or `Err` if
    /// the stream is invalid (then every later call returns the same error). The slice is
    /// mutable so the transport can decrypt it in place.
    pub fn next_frame(&mut self) -> Result<Option<&mut [u8]>, FrameError> {
        match &self.stage {
            Stage::Failed(e) => return Err(e.clone()),
            Stage::Intro => match self.read_intro() {
                Ok(true) => self.stage = Stage::Frames,
                Ok(false) => return Ok(None),
                Err(e) => return Err(self.fail(e)),
            },
            Stage::Frames => {}
        }
        let rest = &self.buf[self.start..];
        let Some(len) = be24(rest) else {
            return Ok(None);
        };
        if len > self.max_frame_len {
            return Err(self.fail(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            }));
        }
        let end = LEN_PREFIX + len;
        if rest.len() < end {
            return Ok(None);
        }
        let from = self.start + LEN_PREFIX;
        self.start += end;
        Ok(self.buf.get_mut(from..from + len))
    }

    /// Declares the end of the stream: an error if a partial header or frame is buffered.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Stage::Failed(e) = &self.stage {
            return Err(e.clone());
        }
        let buffered = self.buffered();
        if buffered == 0 {
            return Ok(());
        }
        let rest = &self.buf[self.start..];
        let expected = match self.stage {
            Stage::Intro => PROLOGUE.len().max(buffered + 1),
            _ => be24(rest).map_or(LEN_PREFIX, |n| LEN_PREFIX + n),
        };
        Err(FrameError::Truncated { buffered, expected })
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.stage = Stage::Failed(e.clone());
        e
    }

    /// Consumes the intro header if it is complete. `Ok(false)`: need more bytes.
    fn read_intro(&mut self) -> Result<bool, FrameError> {
        let rest = &self.buf[self.start..];
        let bad = |found: &[u8]| FrameError::BadIntro {
            found: found[..found.len().min(4)].to_vec(),
        };
        let mut at = 0;
        let mut routing = None;
        if rest.first() == Some(&ROUTING_MAGIC[0]) {
            let head = &rest[..rest.len().min(4)];
            if !ROUTING_MAGIC.starts_with(head) {
                return Err(bad(head));
            }
            let Some(len) = rest.get(4..).and_then(be24) else {
                return Ok(false);
            };
            let max = MAX_ROUTING_INFO_LEN.min(self.max_frame_len);
            if len > max {
                return Err(FrameError::TooLarge { len, max });
            }
            at = 7 + len;
            let Some(info) = rest.get(7..at) else {
                return Ok(false);
            };
            routing = Some(info);
        }
        let wa = rest.get(at..).unwrap_or_default();
        let wa = &wa[..wa.len().min(PROLOGUE.len())];
        if !PROLOGUE.starts_with(wa) {
            return Err(bad(wa));
        }
        if wa.len() < PROLOGUE.len() {
            return Ok(false);
        }
        self.routing_info = routing.map(<[u8]>::to_vec);
        self.start += at + PROLOGUE.len();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(dec: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame()? {
            out.push(f.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn intro_then_frames_byte_by_byte() {
        let mut wire = Vec::new();
        write_intro(Some(&[1, 2, 3, 4, 5, 6]), &mut wire).unwrap_or_default();
        write_frame(b"hello", &mut wire).unwrap_or_default();
        write_frame(b"", &mut wire).unwrap_or_default();
        write_frame(&[9; 300], &mut wire).unwrap_or_default();
        let mut dec = FrameDecoder::expecting_intro();
        let mut got = Vec::new();
        for b in &wire {
            dec.feed(&[*b]);
            got.extend(frames(&mut dec).unwrap_or_default());
        }
        assert_eq!(got, vec![b"hello".to_vec(), vec![], vec![9; 300]]);
        assert_eq!(dec.routing_info(), Some(&[1, 2, 3, 4, 5, 6][..]));
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn first_client_message_matches_facts_sheet() {
        let mut wire = Vec::new();
        write_intro(None, &mut wire).unwrap_or_default();
        let mut hello = vec![0x12, 0x22, 0x0a, 0x20];
        hello.extend([0x11; 32]);
        write_frame(&hello, &mut wire).unwrap_or_default();
        assert_eq!(wire.len(), 43);
        assert_eq!(
            wire[..11],
            [0x57, 0x41, 6, 3, 0, 0, 0x24, 0x12, 0x22, 0x0a, 0x20]
        );
    }

    #[test]
    fn rejects_bad_intro_early_and_stays_failed() {
        let mut dec = FrameDecoder::expecting_intro();
        dec.feed(b"WB");
        assert!(matches!(dec.next_frame(), Err(FrameError::BadIntro { .. })));
        dec.feed(b"\x06\x03");
        assert!(matches!(dec.next_frame(), Err(FrameError::BadIntro { .. })));
        let mut dec = FrameDecoder::expecting_intro();
        dec.feed(&[0x45, 0x44, 0, 1, 0, 0, 1, 7, 0x57, 0x41, 6, 4]);
        assert!(matches!(dec.next_frame(), Err(FrameError::BadIntro { .. })));
    }

    #[test]
    fn rejects_frame_over_max_size() {
        let mut dec = FrameDecoder::new().with_max_frame_len(10);
        dec.feed(&[0, 0, 11]);
        assert_eq!(
            dec.next_frame(),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        let mut out = Vec::new();
        assert!(write_frame(&vec![0; MAX_FRAME_LEN + 1], &mut out).is_err());
    }

    #[test]
    fn truncated_stream_is_reported_at_finish() {
        let mut dec = FrameDecoder::new();
        dec.feed(&[0, 0, 5, 1, 2]);
        assert_eq!(dec.next_frame(), Ok(None));
        assert_eq!(
            dec.finish(),
            Err(FrameError::Truncated {
                buffered: 5,
                expected: 8
            })
        );
    }
}
