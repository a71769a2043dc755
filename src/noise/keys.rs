//! X25519 key types shared by the handshake, the certificate chain and XEdDSA.
//!
//! Keys travel as 32 raw bytes (Montgomery u-coordinate for public keys). Secret keys are
//! clamped once at construction, so the same bytes serve X25519 and XEdDSA (which reads the
//! clamped scalar, as libsignal does). Secrets are wiped on drop and never printed.

use std::fmt;

use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::Zeroizing;

/// Length of every key on these layers.
pub const KEY_LEN: usize = 32;

/// A 32-byte X25519 public key as it travels on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps raw key bytes. Any 32 bytes are accepted: X25519 public keys need no validation,
    /// and low-order keys are caught where they matter (a non-contributory DH result).
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads a key from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The raw 32 bytes, by value.
    pub const fn to_bytes(self) -> [u8; KEY_LEN] {
        self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A clamped X25519 secret key. Wiped on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(StaticSecret);

impl SecretKey {
    /// Builds a secret key from 32 bytes, clamping them (`k[0] &= 248; k[31] &= 127;
    /// k[31] |= 64`). Callers draw the bytes from their own RNG: this layer has none.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut k = Zeroizing::new(bytes);
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        Self(StaticSecret::from(*k))
    }

    /// Draws a fresh key from the caller's cryptographic RNG.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_bytes(*bytes)
    }

    /// The clamped secret bytes, wiped when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(DalekPublic::from(&self.0).to_bytes())
    }

    /// X25519 with a peer public key. `None` when the result is all zeros (the peer sent a
    /// low-order point), which would let an attacker fix the shared secret.
    pub(crate) fn diffie_hellman(&self, peer: &PublicKey) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let shared = self.0.diffie_hellman(&DalekPublic::from(peer.0));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A secret key with its public key cached beside it.
#[derive(Clone)]
pub struct KeyPair {
    secret: SecretKey,
    public: PublicKey,
}

impl KeyPair {
    /// Derives the public half from a secret key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }

    /// Draws a fresh pair from the caller's cryptographic RNG.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        Self::from_secret(SecretKey::generate(rng))
    }

    /// The public half.
    pub const fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The secret half.
    pub const fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_clamped_and_debug_redacts() {
        let sk = SecretKey::from_bytes([0xff; 32]);
        let b = sk.to_bytes();
        assert_eq!(b[0], 0xf8);
        assert_eq!(b[31], 0x7f);
        let shown = format!("{:?}", KeyPair::from_secret(sk));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("f8ffff"));
    }

    #[test]
    fn dh_agrees_and_rejects_low_order_points() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        let ab = a.diffie_hellman(&b.public_key());
        let ba = b.diffie_hellman(&a.public_key());
        assert!(ab.is_some());
        assert_eq!(ab.as_deref(), ba.as_deref());
        // u = 0 is a low-order point: the result is all zeros.
        assert!(a.diffie_hellman(&PublicKey::from_bytes([0; 32])).is_none());
    }
}
