//! Pairing by phone-number code, the companion's cryptography (facts §7): the 8-character code,
//! the companion ephemeral key wrapped with a key derived from it, and — once the phone's own
//! wrapped ephemeral arrives — the key bundle and the ADV secret that replaces the random one.
//! Pure functions: randomness comes in as arguments.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::noise::{KeyPair, PublicKey, SecretKey};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// PBKDF2 rounds (`2 << 16`).
pub const ITERATIONS: u32 = 131_072;
/// The code's alphabet: Crockford-like base32 without 0, I, O, U.
const ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// `salt (32) || iv (16) || AES-CTR(ephemeral pub) (32)`.
pub const WRAPPED_LEN: usize = 80;
/// `salt (32) || nonce (12) || AES-GCM(3 × 32 bytes) (112)`.
pub const BUNDLE_LEN: usize = 156;
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
const ADV_INFO: &[u8] = b"adv_secret";

/// Why a pairing-code step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairCodeError {
    /// A wrapped key is not 80 bytes.
    #[error("a wrapped ephemeral key has {0} bytes, expected 80")]
    WrappedLength(usize),
    /// A key agreement gave all zeros (a low-order point).
    #[error("the phone sent a weak key")]
    WeakKey,
    /// A key was derived with another salt than the wrapped key's.
    #[error("the derived key is for another salt")]
    SaltMismatch,
    /// The key bundle did not seal (it cannot fail with valid lengths).
    #[error("the key bundle could not be sealed")]
    Seal,
}

/// The code the user types on the phone: 8 characters of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct PairCode([u8; 8]);

impl PairCode {
    /// The code for 5 random bytes (40 bits, 5 bits a character, most significant first).
    pub fn from_random(random: [u8; 5]) -> Self {
        let bits = random.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
        let mut code = [0u8; 8];
        for (i, c) in code.iter_mut().enumerate() {
            let index = (bits >> (35 - 5 * i)) & 0x1F;
            *c = ALPHABET[index as usize];
        }
        PairCode(code)
    }

    /// Reads a code as typed (`ABCD-EFGH` or `abcdefgh`); `None` unless it is 8 characters of
    /// the alphabet.
    pub fn parse(text: &str) -> Option<Self> {
        let mut code = [0u8; 8];
        let mut n = 0;
        for b in text.bytes().filter(|b| *b != b'-') {
            let b = b.to_ascii_uppercase();
            if n == 8 || !ALPHABET.contains(&b) {
                return None;
            }
            code[n] = b;
            n += 1;
        }
        (n == 8).then_some(PairCode(code))
    }

    /// The 8 characters, as the key derivation uses them.
    pub fn as_str(&self) -> &str {
        // The bytes are all from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// `XXXX-XXXX`, as shown to people.
    pub fn display(&self) -> String {
        let s = self.as_str();
        format!("{}-{}", &s[..4], &s[4..])
    }
}

/// The key a code and a salt derive: PBKDF2-HMAC-SHA256, [`ITERATIONS`] rounds. Costly on
/// purpose (tens of milliseconds in release builds), so the driver runs it off the async
/// workers ([`CodeKeyJob`]).
pub struct CodeKey {
    salt: [u8; 32],
    key: Zeroizing<[u8; 32]>,
}

impl CodeKey {
    /// The salt it was derived with.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }
}

impl std::fmt::Debug for CodeKey {
    /// Redacted: the key unwraps what the code protects.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

/// A derivation to run: [`CodeKeyJob::run`] is pure and slow.
#[derive(Clone, Debug)]
pub struct CodeKeyJob {
    code: PairCode,
    salt: [u8; 32],
}

impl CodeKeyJob {
    /// The derivation of `code` with `salt`.
    pub fn new(code: &PairCode, salt: [u8; 32]) -> Self {
        CodeKeyJob {
            code: code.clone(),
            salt,
        }
    }

    /// Derives the key.
    pub fn run(&self) -> CodeKey {
        let mut key = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<Sha256>(&self.code.0, &self.salt, ITERATIONS, key.as_mut());
        CodeKey {
            salt: self.salt,
            key,
        }
    }
}

/// The salt a wrapped key was made with (its first 32 bytes).
pub fn wrapped_salt(wrapped: &[u8]) -> Result<[u8; 32], PairCodeError> {
    wrapped
        .get(..32)
        .filter(|_| wrapped.len() == WRAPPED_LEN)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or(PairCodeError::WrappedLength(wrapped.len()))
}

impl std::fmt::Debug for PairCode {
    /// Redacted: the code is a secret while it is valid.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairCode(<redacted>)")
    }
}

/// Wraps an ephemeral public key with the code: what the companion sends in `companion_hello`
/// and the phone in its `primary_hello`.
pub fn wrap(code: &PairCode, salt: [u8; 32], iv: [u8; 16], key: &PublicKey) -> [u8; WRAPPED_LEN] {
    wrap_with(&CodeKeyJob::new(code, salt).run(), iv, key)
}

/// [`wrap`] with the key derived already.
pub fn wrap_with(derived: &CodeKey, iv: [u8; 16], key: &PublicKey) -> [u8; WRAPPED_LEN] {
    let mut out = [0u8; WRAPPED_LEN];
    out[..32].copy_from_slice(&derived.salt);
    out[32..48].copy_from_slice(&iv);
    out[48..].copy_from_slice(key.as_bytes());
    Aes256Ctr::new(derived.key.as_ref().into(), (&iv).into()).apply_keystream(&mut out[48..]);
    out
}

/// Unwraps the other side's ephemeral public key.
pub fn unwrap(code: &PairCode, wrapped: &[u8]) -> Result<PublicKey, PairCodeError> {
    let salt = wrapped_salt(wrapped)?;
    unwrap_with(&CodeKeyJob::new(code, salt).run(), wrapped)
}

/// [`unwrap`] with the key derived already (from the wrapped key's own salt).
pub fn unwrap_with(derived: &CodeKey, wrapped: &[u8]) -> Result<PublicKey, PairCodeError> {
    if wrapped_salt(wrapped)? != derived.salt {
        return Err(PairCodeError::SaltMismatch);
    }
    let (_, rest) = wrapped.split_at(32);
    let (iv, sealed) = rest.split_at(16);
    let mut key = [0u8; 32];
    key.copy_from_slice(sealed);
    let derived = &derived.key;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| PairCodeError::WrappedLength(wrapped.len()))?;
    Aes256Ctr::new(derived.as_ref().into(), (&iv).into()).apply_keystream(&mut key);
    Ok(PublicKey::from_bytes(key))
}

/// The randomness `companion_finish` needs.
pub struct FinishRandom {
    /// HKDF salt of the bundle key.
    pub bundle_salt: [u8; 32],
    /// AES-GCM nonce of the bundle.
    pub bundle_nonce: [u8; 12],
    /// Mixed into the ADV secret.
    pub adv_random: [u8; 32],
}

/// What `companion_finish` sends and what pairing then checks `pair-success` with.
pub struct Finish {
    /// `link_code_pairing_wrapped_key_bundle` (156 bytes).
    pub wrapped_bundle: Vec<u8>,
    /// The ADV secret that replaces the random one for this pairing.
    pub adv_secret: Zeroizing<[u8; 32]>,
}

/// The companion's answer to the phone's `primary_hello` (facts §7.4).
/// `derived` is the code's key for the salt of `primary_wrapped` ([`wrapped_salt`]).
pub fn finish(
    derived: &CodeKey,
    companion_ephemeral: &SecretKey,
    identity: &KeyPair,
    primary_wrapped: &[u8],
    primary_identity: &PublicKey,
    random: &FinishRandom,
) -> Result<Finish, PairCodeError> {
    let primary_ephemeral = unwrap_with(derived, primary_wrapped)?;
    let shared_e = companion_ephemeral
        .diffie_hellman(&primary_ephemeral)
        .ok_or(PairCodeError::WeakKey)?;
    let mut bundle_key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&random.bundle_salt), shared_e.as_ref())
        .expand(BUNDLE_INFO, bundle_key.as_mut())
        .map_err(|_| PairCodeError::Seal)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(96));
    plain.extend_from_slice(identity.public().as_bytes());
    plain.extend_from_slice(primary_identity.as_bytes());
    plain.extend_from_slice(&random.adv_random);
    let sealed = Aes256Gcm::new(bundle_key.as_ref().into())
        .encrypt(
            Nonce::from_slice(&random.bundle_nonce),
            Payload {
                msg: &plain,
                aad: &[],
            },
        )
        .map_err(|_| PairCodeError::Seal)?;
    let mut wrapped_bundle = Vec::with_capacity(BUNDLE_LEN);
    wrapped_bundle.extend_from_slice(&random.bundle_salt);
    wrapped_bundle.extend_from_slice(&random.bundle_nonce);
    wrapped_bundle.extend_from_slice(&sealed);
    let shared_i = identity
        .secret()
        .diffie_hellman(primary_identity)
        .ok_or(PairCodeError::WeakKey)?;
    Ok(Finish {
        wrapped_bundle,
        adv_secret: adv_secret(&shared_e, &shared_i, &random.adv_random)?,
    })
}

/// `HKDF-SHA256(shared_e || shared_i || adv_random, no salt, "adv_secret")`: both sides compute
/// it, and `pair-success` is checked with it.
pub fn adv_secret(
    shared_e: &[u8; 32],
    shared_i: &[u8; 32],
    adv_random: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, PairCodeError> {
    let mut ikm = Zeroizing::new([0u8; 96]);
    ikm[..32].copy_from_slice(shared_e);
    ikm[32..64].copy_from_slice(shared_i);
    ikm[64..].copy_from_slice(adv_random);
    let mut secret = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, ikm.as_ref())
        .expand(ADV_INFO, secret.as_mut())
        .map_err(|_| PairCodeError::Seal)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn codes_are_eight_characters_of_the_alphabet() {
        assert_eq!(PairCode::from_random([0; 5]).as_str(), "11111111");
        assert_eq!(PairCode::from_random([0xFF; 5]).as_str(), "ZZZZZZZZ");
        let code = PairCode::from_random([0x12, 0x34, 0x56, 0x78, 0x9A]);
        assert_eq!(code.display().len(), 9);
        assert_eq!(PairCode::parse(&code.display()), Some(code.clone()));
        assert_eq!(PairCode::parse(&code.as_str().to_lowercase()), Some(code));
        for bad in ["", "1234567", "123456789", "0OIU1111", "ABCD EFGH"] {
            assert_eq!(PairCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_phone_reads_the_bundle_and_both_sides_agree_on_the_adv_secret() {
        let mut rng = StdRng::seed_from_u64(7);
        let code = PairCode::from_random([1, 2, 3, 4, 5]);
        // Companion hello: its ephemeral, wrapped; the phone unwraps it with the code.
        let companion_e = SecretKey::generate(&mut rng);
        let hello = wrap(&code, [3; 32], [4; 16], &companion_e.public_key());
        assert_eq!(unwrap(&code, &hello), Ok(companion_e.public_key()));
        let wrong = PairCode::from_random([9, 9, 9, 9, 9]);
        assert_ne!(unwrap(&wrong, &hello), Ok(companion_e.public_key()));
        // Primary hello, then the companion's finish.
        let primary_e = SecretKey::generate(&mut rng);
        let primary_identity = KeyPair::generate(&mut rng);
        let identity = KeyPair::generate(&mut rng);
        let primary_hello = wrap(&code, [5; 32], [6; 16], &primary_e.public_key());
        let random = FinishRandom {
            bundle_salt: [7; 32],
            bundle_nonce: [8; 12],
            adv_random: [9; 32],
        };
        // A key for another salt is refused.
        let other = CodeKeyJob::new(&code, [1; 32]).run();
        assert_eq!(
            unwrap_with(&other, &primary_hello),
            Err(PairCodeError::SaltMismatch)
        );
        let derived = CodeKeyJob::new(&code, wrapped_salt(&primary_hello).unwrap()).run();
        let done = finish(
            &derived,
            &companion_e,
            &identity,
            &primary_hello,
            primary_identity.public(),
            &random,
        )
        .unwrap();
        assert_eq!(done.wrapped_bundle.len(), BUNDLE_LEN);
        // The phone's side (facts §7.5, test-server recipe).
        let shared_e = primary_e.diffie_hellman(&companion_e.public_key()).unwrap();
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&done.wrapped_bundle[..32]), shared_e.as_ref())
            .expand(BUNDLE_INFO, &mut key)
            .unwrap();
        let plain = Aes256Gcm::new((&key).into())
            .decrypt(
                Nonce::from_slice(&done.wrapped_bundle[32..44]),
                &done.wrapped_bundle[44..],
            )
            .unwrap();
        assert_eq!(&plain[..32], identity.public().as_bytes());
        assert_eq!(&plain[32..64], primary_identity.public().as_bytes());
        let shared_i = primary_identity
            .secret()
            .diffie_hellman(identity.public())
            .unwrap();
        let mut adv_random = [0u8; 32];
        adv_random.copy_from_slice(&plain[64..]);
        let phone_adv = adv_secret(&shared_e, &shared_i, &adv_random).unwrap();
        assert_eq!(*phone_adv, *done.adv_secret);
        assert_eq!(
            unwrap(&code, &hello[..79]),
            Err(PairCodeError::WrappedLength(79))
        );
    }
}
