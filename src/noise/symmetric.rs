//! The Noise symmetric state as WhatsApp runs it (facts sheet 2.1).
//!
//! Two types, because WhatsApp only encrypts after the first MixKey: [`HashState`] (h and ck,
//! no cipher yet) becomes [`KeyedState`] on its first `mix_key`. That rules out, by
//! construction, the one place WhatsApp departs from the Noise spec: for message 1 (`-> e`)
//! Noise would EncryptAndHash an empty payload, which with no key is a MixHash of nothing and
//! turns h into SHA-256(h). WhatsApp skips it, so `HashState` has no encrypt method at all.
//!
//! We write this by hand instead of using a Noise library (e.g. `snow`) for that reason: a
//! spec-exact library would not interoperate.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of h, ck and every symmetric key.
const HASH_LEN: usize = 32;

/// Length of the AES-GCM authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// `Noise_XX_25519_AESGCM_SHA256` padded with four zero bytes to exactly 32 bytes. Because it
/// is exactly HASHLEN it is used as h₀ directly, not hashed.
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// The 12-byte AES-GCM nonce: eight zero bytes then the 32-bit counter big-endian. Same
/// bytes as Noise's 4 zero bytes + BE64(n) for every counter we allow (n < 2^32).
pub(crate) fn nonce(counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// HKDF-SHA256 with salt = ck, empty info, 64 bytes out, split into two 32-byte halves.
fn hkdf2(ck: &[u8; HASH_LEN], ikm: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut okm = Zeroizing::new([0u8; 64]);
    let hk = Hkdf::<Sha256>::new(Some(ck), ikm);
    // HKDF-SHA256 can produce up to 255 * 32 bytes; 64 is always within range.
    #[allow(clippy::expect_used)]
    hk.expand(&[], okm.as_mut())
        .expect("invariant: 64 <= 255 * HashLen");
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

/// h = SHA-256(h || data), shared by both states.
fn mix_hash(h: &mut [u8; HASH_LEN], data: &[u8]) {
    *h = Sha256::new()
        .chain_update(*h)
        .chain_update(data)
        .finalize()
        .into();
}

/// Builds an AES-256-GCM instance from a derived key.
pub(crate) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Symmetric state before any key exists: only MixHash and the first MixKey are possible.
#[derive(Clone)]
pub(crate) struct HashState {
    h: [u8; HASH_LEN],
    ck: Zeroizing<[u8; HASH_LEN]>,
}

impl HashState {
    /// h = ck = the protocol name, then MixHash(prologue).
    pub(crate) fn new(prologue: &[u8]) -> Self {
        let mut s = Self {
            h: *PROTOCOL_NAME,
            ck: Zeroizing::new(*PROTOCOL_NAME),
        };
        s.mix_hash(prologue);
        s
    }

    /// h = SHA-256(h || data).
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        mix_hash(&mut self.h, data);
    }

    /// The first MixKey: the state gains a cipher key and its counter starts at 0.
    pub(crate) fn mix_key(self, ikm: &[u8]) -> KeyedState {
        let (ck, k) = hkdf2(&self.ck, ikm);
        KeyedState {
            h: self.h,
            ck,
            cipher: cipher(&k),
            n: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn hash(&self) -> &[u8; 32] {
        &self.h
    }
}

/// Symmetric state with a cipher key. One counter serves both directions within a key epoch.
pub(crate) struct KeyedState {
    h: [u8; HASH_LEN],
    ck: Zeroizing<[u8; HASH_LEN]>,
    cipher: Aes256Gcm,
    n: u32,
}

/// The two transport keys from `Split()`, named from the initiator's side.
pub(crate) struct SplitKeys {
    /// okm[0..32]: encrypts initiator → responder frames.
    pub(crate) initiator_to_responder: Zeroizing<[u8; 32]>,
    /// okm[32..64]: encrypts responder → initiator frames.
    pub(crate) responder_to_initiator: Zeroizing<[u8; 32]>,
}

impl KeyedState {
    /// h = SHA-256(h || data).
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        mix_hash(&mut self.h, data);
    }

    /// (ck, k) = HKDF(ck, ikm); the counter restarts at 0.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = cipher(&k);
        self.n = 0;
    }

    /// Seals `plaintext` with aad = h, then MixHash(ciphertext). Handshake payloads are small
    /// and the counter is at most 1 here, so neither can fail in practice; a failure still
    /// comes back as `None` rather than a panic.
    pub(crate) fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce(self.n)), &self.h, &mut buf)
            .ok()?;
        buf.extend_from_slice(&tag);
        self.n = self.n.checked_add(1)?;
        self.mix_hash(&buf);
        Some(buf)
    }

    /// Opens `ciphertext` with aad = h; on success MixHash(ciphertext) (the ciphertext, not
    /// the plaintext, is hashed). `None` on a bad tag or a too-short input.
    pub(crate) fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let body_len = ciphertext.len().checked_sub(TAG_LEN)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let mut buf = body.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce(self.n)),
                &self.h,
                &mut buf,
                aes_gcm::Tag::from_slice(tag),
            )
            .ok()?;
        self.n = self.n.checked_add(1)?;
        self.mix_hash(ciphertext);
        Some(buf)
    }

    /// HKDF(ck, empty) into the two transport keys; the handshake state is consumed.
    pub(crate) fn split(self) -> SplitKeys {
        let (a, b) = hkdf2(&self.ck, &[]);
        SplitKeys {
            initiator_to_responder: a,
            responder_to_initiator: b,
        }
    }

    #[cfg(test)]
    pub(crate) fn hash(&self) -> &[u8; 32] {
        &self.h
    }

    #[cfg(test)]
    pub(crate) fn chaining_key(&self) -> &[u8; 32] {
        &self.ck
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::frame::PROLOGUE;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn protocol_name_is_32_bytes_used_as_is() {
        assert_eq!(
            PROTOCOL_NAME.to_vec(),
            hex("4e6f6973655f58585f32353531395f41455347434d5f53484132353600000000")
        );
    }

    #[test]
    fn hash_after_prologue_matches_facts_sheet() {
        let s = HashState::new(&PROLOGUE);
        assert_eq!(
            s.hash().to_vec(),
            hex("ffff0c9267310966f1311170c04b38c79504285bf5edf763e5c946492a50a755")
        );
    }

    #[test]
    fn nonce_layout_is_eight_zeros_then_be32() {
        assert_eq!(nonce(0x0102_0304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn encrypt_decrypt_mirror_and_hash_ciphertext() {
        let mut a = HashState::new(b"p").mix_key(b"ikm");
        let mut b = HashState::new(b"p").mix_key(b"ikm");
        let c = a.encrypt_and_hash(b"hello").unwrap_or_default();
        assert_eq!(c.len(), 5 + TAG_LEN);
        assert_eq!(b.decrypt_and_hash(&c).as_deref(), Some(&b"hello"[..]));
        assert_eq!(a.hash(), b.hash());
        // Counter advanced on both sides: the same ciphertext does not open twice.
        assert!(b.decrypt_and_hash(&c).is_none());
        assert!(b.decrypt_and_hash(&c[..10]).is_none());
    }
}
