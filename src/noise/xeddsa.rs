//! XEdDSA signatures over X25519 keys, the way libsignal's curve25519 module does them.
//!
//! This is not the XEdDSA paper's variant: instead of negating the key so the Edwards sign bit
//! is 0, libsignal keeps the key and carries the sign bit of `A` in the top bit of the
//! signature's last byte (facts sheet 8.4). Every WhatsApp client (whatsmeow, Baileys,
//! whatsapp-rust) signs and verifies this way, so we must too: the server certificate chain,
//! the signed pre-key and the ADV signatures all use it.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::keys::{PublicKey, SecretKey};

/// Length of a signature: `R || S`, with the sign bit of `A` in bit 7 of byte 63.
pub const SIGNATURE_LEN: usize = 64;

/// Length of the per-signature random input `Z`.
pub const NONCE_LEN: usize = 64;

/// Signs `message` with an X25519 secret key. `z` must be 64 fresh random bytes from the
/// caller (it hedges the deterministic nonce; reusing it is safe but loses that hedge).
pub fn sign(secret: &SecretKey, message: &[u8], z: &[u8; NONCE_LEN]) -> [u8; SIGNATURE_LEN] {
    let k = secret.to_bytes();
    let a = Zeroizing::new(Scalar::from_bytes_mod_order(*k));
    let big_a = EdwardsPoint::mul_base(&a).compress();
    let sign_bit = big_a.as_bytes()[31] & 0x80;

    // r = H(0xFE || 0xFF*31 || k || M || Z): libsignal's "hash1" domain separation.
    let mut prefix = [0xffu8; 32];
    prefix[0] = 0xfe;
    let r_hash: [u8; 64] = Sha512::new()
        .chain_update(prefix)
        .chain_update(k.as_ref())
        .chain_update(message)
        .chain_update(z)
        .finalize()
        .into();
    let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&r_hash));
    let big_r = EdwardsPoint::mul_base(&r).compress();

    let h = challenge(big_r.as_bytes(), big_a.as_bytes(), message);
    let s = *r + h * *a;

    let mut sig = [0u8; SIGNATURE_LEN];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig[63] = (sig[63] & 0x7f) | sign_bit;
    sig
}

/// Signs with randomness drawn from the caller's RNG.
pub fn sign_with_rng(
    secret: &SecretKey,
    message: &[u8],
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> [u8; SIGNATURE_LEN] {
    let mut z = Zeroizing::new([0u8; NONCE_LEN]);
    rng.fill_bytes(z.as_mut());
    sign(secret, message, &z)
}

/// Verifies a signature made by [`sign`] (or any libsignal-compatible signer). Returns
/// `false` for a signature of the wrong length, an invalid key or a mismatch; never panics.
pub fn verify(public: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    let sign = sig[63] >> 7;
    // to_edwards ignores the top bit of u, as libsignal does.
    let Some(big_a) = MontgomeryPoint(public.to_bytes()).to_edwards(sign) else {
        return false;
    };
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7f;
    // libsignal rejects S with any of the top three bits set (S must be below 2^253).
    if s_bytes[31] & 0xe0 != 0 {
        return false;
    }
    // S·B is the same for S and S mod ℓ (B has order ℓ), so reducing matches libsignal's
    // use of the unreduced bits.
    let s = Scalar::from_bytes_mod_order(s_bytes);
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let h = challenge(&r_bytes, big_a.compress().as_bytes(), message);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &(-big_a), &s);
    check.compress() == CompressedEdwardsY(r_bytes)
}

/// h = SHA-512(R || A || M) reduced mod ℓ.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let digest: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes([seed; 32])
    }

    #[test]
    fn sign_then_verify_round_trips() {
        for seed in 1..20u8 {
            let sk = key(seed);
            let msg = [seed; 33];
            let sig = sign(&sk, &msg, &[seed; 64]);
            assert!(verify(&sk.public_key(), &msg, &sig), "seed {seed}");
            assert!(!verify(&sk.public_key(), &msg[1..], &sig));
            assert!(!verify(&key(seed + 100).public_key(), &msg, &sig));
        }
    }

    #[test]
    fn rejects_wrong_length_and_high_bits() {
        let sk = key(7);
        let sig = sign(&sk, b"m", &[0; 64]);
        assert!(!verify(&sk.public_key(), b"m", &sig[..63]));
        let mut high = sig;
        high[63] |= 0x60;
        assert!(!verify(&sk.public_key(), b"m", &high));
    }

    #[test]
    fn every_flipped_bit_fails() {
        let sk = key(9);
        let sig = sign(&sk, b"message", &[3; 64]);
        for i in 0..SIGNATURE_LEN * 8 {
            let mut bad = sig;
            bad[i / 8] ^= 1 << (i % 8);
            assert!(!verify(&sk.public_key(), b"message", &bad), "bit {i}");
        }
    }
}
