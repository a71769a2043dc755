//! The sandbox's key material and randomness: the certificate chain it presents, the phone
//! accounts' identity keys, and the generator everything else draws from.
//!
//! With a seed every key is derived from `(seed, label)`, so two runs with the same seed present
//! the same root key and the same phone identities whatever order things happen in, and every
//! other random choice (refs, ids, signatures, each connection's Noise ephemeral) comes from a
//! generator seeded from it. Without a seed keys are random and, if a data directory is given,
//! kept there (see `persist`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use crate::noise::{CertChainBuilder, KeyPair, SecretKey, ServerIdentity};

/// 32 bytes from the seed and a label naming their purpose.
fn derive(seed: u64, label: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"wuts-sim/v1/")
        .chain_update(seed.to_be_bytes())
        .chain_update(label.as_bytes())
        .finalize()
        .into()
}

/// Derives a secret key from the seed and a label naming its purpose (`root`, `account/<phone>`).
pub(crate) fn derive_secret(seed: u64, label: &str) -> SecretKey {
    SecretKey::from_bytes(derive(seed, label))
}

/// A key pair from the seed if there is one, else from `rng`.
pub(crate) fn key_pair(seed: Option<u64>, label: &str, rng: &mut StdRng) -> KeyPair {
    match seed {
        Some(seed) => KeyPair::from_secret(derive_secret(seed, label)),
        None => KeyPair::generate(rng),
    }
}

/// The generator for ids, refs and signatures: seeded (reproducible) or from the OS.
pub(crate) fn new_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    }
}

/// The generator of connection number `conn` (its Noise ephemeral key). Seeded: derived from
/// `(seed, conn)` rather than drawn from the shared generator, so connections never perturb
/// the refs and ids the shared one hands out, and the n-th connection of a sandbox always gets
/// the same ephemeral. Distinct per connection, as Noise requires.
pub(crate) fn conn_rng(seed: Option<u64>, conn: u64) -> StdRng {
    match seed {
        Some(seed) => StdRng::from_seed(derive(seed, &format!("conn/{conn}"))),
        None => StdRng::from_entropy(),
    }
}

/// Everything the Noise responder presents. The intermediate and the server static key are
/// made fresh at every start (clients pin only the root, and the real leaf rotates every few
/// months); only the root must survive restarts.
pub(crate) fn server_identity(
    root: &KeyPair,
    seed: Option<u64>,
    rng: &mut StdRng,
) -> ServerIdentity {
    let intermediate = key_pair(seed, "intermediate", rng);
    let static_key = key_pair(seed, "server-static", rng);
    // Serials as in the real chain's shape: the intermediate names the root (serial 0) as its
    // issuer, the leaf names the intermediate.
    let builder = CertChainBuilder::new(root.clone(), intermediate);
    ServerIdentity::generate(&builder, static_key, rng)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| {
            let hi = char::from(p[0]).to_digit(16)?;
            let lo = char::from(p[1]).to_digit(16)?;
            u8::try_from(hi << 4 | lo).ok()
        })
        .collect()
}

/// A secret key from 64 hex digits.
pub(crate) fn secret_from_hex(s: &str) -> Option<SecretKey> {
    let bytes = <[u8; 32]>::try_from(unhex(s)?).ok()?;
    Some(SecretKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::cert::verify_chain;

    #[test]
    fn seeded_keys_are_stable_and_distinct_per_label() {
        let a = derive_secret(7, "root").public_key();
        assert_eq!(a, derive_secret(7, "root").public_key());
        assert_ne!(a, derive_secret(8, "root").public_key());
        assert_ne!(a, derive_secret(7, "account/1").public_key());
    }

    #[test]
    fn connection_generators_follow_the_seed_and_the_connection() {
        let first = |seed, conn| SecretKey::generate(&mut conn_rng(seed, conn)).public_key();
        assert_eq!(first(Some(7), 1), first(Some(7), 1));
        assert_ne!(first(Some(7), 1), first(Some(7), 2));
        assert_ne!(first(Some(7), 1), first(Some(8), 1));
        assert_ne!(first(None, 1), first(None, 1));
    }

    #[test]
    fn server_identity_chains_to_the_root() {
        let mut rng = new_rng(Some(1));
        let root = key_pair(Some(1), "root", &mut rng);
        let id = server_identity(&root, Some(1), &mut rng);
        let chain = verify_chain(
            id.cert_chain(),
            root.public(),
            id.static_public(),
            1_700_000_000,
        );
        assert_eq!(chain.map(|c| c.intermediate.issuer_serial), Ok(0));
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert!(secret_from_hex(&"11".repeat(32)).is_some());
        assert!(secret_from_hex("11").is_none());
    }
}
