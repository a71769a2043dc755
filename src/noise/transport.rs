//! Transport encryption after the handshake (facts sheet 2.3).
//!
//! One AES-256-GCM key per direction, each with its own 32-bit frame counter starting at 0;
//! AAD is empty. The hot path works in place on caller buffers and allocates nothing (a
//! `Vec` only grows if the caller gave it too little capacity).
//!
//! Two deliberate departures from whatsmeow, which logs a failed decrypt and carries on:
//! a failed open poisons the receiver (every later call fails too, so the driver must close
//! the connection), and counters never wrap: after 2^32 frames in one direction the cipher
//! refuses to work rather than reuse a nonce.

use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use super::Error;
use super::frame::{LEN_PREFIX, MAX_FRAME_LEN, write_len};
use super::symmetric::{TAG_LEN, cipher, nonce};

/// Counter state shared by both halves: the next nonce, or exhausted.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Counter(Option<u32>);

impl Counter {
    const fn new() -> Self {
        Self(Some(0))
    }

    /// The nonce for this frame; advances the counter (to "exhausted" after u32::MAX).
    fn take(&mut self) -> Result<[u8; 12], Error> {
        let n = self.0.ok_or(Error::NonceExhausted)?;
        self.0 = n.checked_add(1);
        Ok(nonce(n))
    }
}

/// Sending half of the transport: encrypts outbound frames.
pub struct SendCipher {
    cipher: Aes256Gcm,
    counter: Counter,
}

/// Receiving half of the transport: decrypts inbound frames.
pub struct RecvCipher {
    cipher: Aes256Gcm,
    counter: Counter,
    poisoned: bool,
}

/// Both directions of an established channel. [`split`](Self::split) it to hand the halves
/// to different owners.
pub struct Transport {
    send: SendCipher,
    recv: RecvCipher,
}

impl SendCipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: cipher(key),
            counter: Counter::new(),
        }
    }

    /// Encrypts `buf` in place and returns the 16-byte tag, for callers that manage their
    /// own layout. Consumes one counter value.
    pub fn seal_detached(&mut self, buf: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        let n = self.counter.take()?;
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), &[], buf)
            .map_err(|_| Error::PlaintextTooLong)?;
        Ok(tag.into())
    }

    /// Encrypts `buf` in place and appends the tag.
    pub fn seal(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let tag = self.seal_detached(buf)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Appends one complete transport frame for `plaintext` to `out`: 3-byte length,
    /// ciphertext, tag. Fails (without touching `out` or the counter) if the frame would not
    /// fit a 3-byte length.
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let len = plaintext.len().saturating_add(TAG_LEN);
        if len > MAX_FRAME_LEN {
            return Err(super::FrameError::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            }
            .into());
        }
        out.reserve(LEN_PREFIX + len);
        write_len(len, out)?;
        let start = out.len();
        out.extend_from_slice(plaintext);
        match self.seal_detached(&mut out[start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                out.truncate(start - LEN_PREFIX);
                Err(e)
            }
        }
    }

    /// Frames sent so far (the next counter value), `None` once exhausted.
    pub fn frames_sent(&self) -> Option<u32> {
        self.counter.0
    }
}

impl RecvCipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: cipher(key),
            counter: Counter::new(),
            poisoned: false,
        }
    }

    /// Decrypts a frame payload (ciphertext || tag) in place and returns the plaintext part
    /// of `frame`. A failure is fatal: this and every later call return [`Error::Decrypt`].
    pub fn open_in_place<'a>(&mut self, frame: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        if self.poisoned {
            return Err(Error::Decrypt);
        }
        // Poisoned until proven otherwise, so every early return below is fatal too.
        self.poisoned = true;
        let n = self.counter.take()?;
        let body_len = frame.len().checked_sub(TAG_LEN).ok_or(Error::Decrypt)?;
        let (body, tag) = frame.split_at_mut(body_len);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), &[], body, Tag::from_slice(tag))
            .map_err(|_| Error::Decrypt)?;
        self.poisoned = false;
        Ok(body)
    }

    /// Decrypts `buf` (ciphertext || tag) in place and truncates the tag away.
    pub fn open(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.open_in_place(buf)?.len();
        buf.truncate(len);
        Ok(())
    }

    /// Frames received so far (the next counter value), `None` once exhausted.
    pub fn frames_received(&self) -> Option<u32> {
        self.counter.0
    }

    /// Whether a decrypt has failed; the connection must then be closed.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl Transport {
    pub(crate) fn new(send_key: &[u8; 32], recv_key: &[u8; 32]) -> Self {
        Self {
            send: SendCipher::new(send_key),
            recv: RecvCipher::new(recv_key),
        }
    }

    /// See [`SendCipher::seal_detached`].
    pub fn seal_detached(&mut self, buf: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        self.send.seal_detached(buf)
    }

    /// See [`SendCipher::seal`].
    pub fn seal(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.send.seal(buf)
    }

    /// See [`SendCipher::seal_frame`].
    pub fn seal_frame(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send.seal_frame(plaintext, out)
    }

    /// See [`RecvCipher::open`].
    pub fn open(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.recv.open(buf)
    }

    /// See [`RecvCipher::open_in_place`].
    pub fn open_in_place<'a>(&mut self, frame: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        self.recv.open_in_place(frame)
    }

    /// The two halves, for a driver that reads and writes from different places.
    pub fn split(self) -> (SendCipher, RecvCipher) {
        (self.send, self.recv)
    }

    #[cfg(test)]
    pub(crate) fn set_counters(&mut self, send: Option<u32>, recv: Option<u32>) {
        self.send.counter = Counter(send);
        self.recv.counter = Counter(recv);
    }
}

impl fmt::Debug for SendCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendCipher")
            .field("key", &"<redacted>")
            .field("frames_sent", &self.counter.0)
            .finish()
    }
}

impl fmt::Debug for RecvCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvCipher")
            .field("key", &"<redacted>")
            .field("frames_received", &self.counter.0)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("send", &self.send)
            .field("recv", &self.recv)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Transport, Transport) {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        (Transport::new(&a, &b), Transport::new(&b, &a))
    }

    #[test]
    fn seal_open_round_trip_both_ways() {
        let (mut a, mut b) = pair();
        for i in 0..5u8 {
            let mut buf = vec![i; 100 * usize::from(i)];
            a.seal(&mut buf).unwrap_or_default();
            b.open(&mut buf).unwrap_or_default();
            assert_eq!(buf, vec![i; 100 * usize::from(i)]);
            let mut frame = Vec::new();
            b.seal_frame(&[i; 7], &mut frame).unwrap_or_default();
            assert_eq!(frame[..3], [0, 0, 23]);
            assert_eq!(
                a.open_in_place(&mut frame[3..]).ok().map(|p| p.to_vec()),
                Some(vec![i; 7])
            );
        }
    }

    #[test]
    fn failed_open_poisons_the_receiver() {
        let (mut a, mut b) = pair();
        let mut good = b"one".to_vec();
        a.seal(&mut good).unwrap_or_default();
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(matches!(b.open(&mut bad), Err(Error::Decrypt)));
        assert!(matches!(b.open(&mut good), Err(Error::Decrypt)));
        let mut short = vec![0; TAG_LEN - 1];
        let (_, mut c) = pair();
        assert!(matches!(c.open(&mut short), Err(Error::Decrypt)));
    }

    #[test]
    fn counters_never_wrap() {
        let (mut a, mut b) = pair();
        a.set_counters(Some(u32::MAX), None);
        let mut buf = b"last".to_vec();
        assert!(a.seal(&mut buf).is_ok());
        assert_eq!(a.send.frames_sent(), None);
        assert!(matches!(a.seal(&mut buf), Err(Error::NonceExhausted)));
        b.set_counters(None, None);
        assert!(b.open(&mut buf).is_err());
    }

    #[test]
    fn oversized_frame_leaves_output_and_counter_untouched() {
        let (mut a, _) = pair();
        let mut out = vec![7];
        let big = vec![0; MAX_FRAME_LEN - TAG_LEN + 1];
        assert!(a.seal_frame(&big, &mut out).is_err());
        assert_eq!(out, vec![7]);
        assert_eq!(a.send.frames_sent(), Some(0));
    }
}
