//! The simulated phone's side of pairing by phone-number code (facts sheet 7.1, 7.3 and the
//! test-server recipe after 7.5), written apart from the engine's so the two check each other:
//! the typed code unwraps the companion's ephemeral key, the phone wraps its own, and the
//! companion's key bundle is opened and checked; both sides then hold the same ADV secret.
//!
//! A mistyped code cannot be noticed when it is typed (AES-CTR has no tag): the phone unwraps a
//! wrong key, and the bundle the companion seals then fails to open. That is when the phone says
//! "wrong code".

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use thiserror::Error;

use super::stanzas;
use crate::binary::Node;
use crate::noise::{KeyPair, PublicKey, SecretKey};

type Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The characters a code is made of (no 0, I, O, U).
const CODE_CHARS: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// PBKDF2-HMAC-SHA256 rounds.
const ROUNDS: u32 = 2 << 16;
/// `salt (32) || iv (16) || AES-CTR(key) (32)`.
pub const WRAPPED: usize = 80;
/// `salt (32) || nonce (12) || AES-GCM(96 bytes) (112)`.
pub const BUNDLE: usize = 156;

/// Why the phone refuses a code or a companion's material.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    /// Not 8 characters of the code alphabet (a hyphen may separate the halves).
    #[error("a pairing code is 8 characters of 1-9 and A-Z without I, O and U")]
    Malformed,
    /// The companion's wrapped key is not 80 bytes.
    #[error("the companion's wrapped key has {0} bytes, expected 80")]
    WrappedLength(usize),
    /// The key bundle is not 156 bytes.
    #[error("the key bundle has {0} bytes, expected 156")]
    BundleLength(usize),
    /// The bundle does not open: the code typed is not the companion's.
    #[error("the code does not match the companion's")]
    WrongCode,
    /// The bundle opened but names another companion identity than the finish.
    #[error("the key bundle names another companion identity")]
    IdentityMismatch,
    /// The bundle opened but names another account than this phone's.
    #[error("the key bundle names another account")]
    AccountMismatch,
    /// A key agreement gave zeros (a low-order point).
    #[error("a weak key")]
    WeakKey,
}

/// A companion's `companion_hello`, checked for shape.
#[derive(Debug)]
pub struct CompanionHello {
    /// The phone number the code is for (digits).
    pub phone: String,
    /// Its ephemeral key, wrapped with the code (80 bytes).
    pub wrapped: Vec<u8>,
    /// The Noise static key it claims: must be its connection's.
    pub noise_key: PublicKey,
}

/// A companion's `companion_finish`.
#[derive(Debug)]
pub struct CompanionFinish {
    /// The ref its hello got.
    pub reference: String,
    /// The key bundle (156 bytes).
    pub bundle: Vec<u8>,
    /// Its identity key.
    pub identity: PublicKey,
}

/// The `link_code_companion_reg` child of an `md` IQ and its stage, if it has one.
pub fn stage(iq: &Node) -> Option<(String, &Node)> {
    let reg = iq.child("link_code_companion_reg")?;
    Some((stanzas::attr(reg, "stage").unwrap_or_default(), reg))
}

fn bytes(reg: &Node, tag: &'static str) -> Result<Vec<u8>, &'static str> {
    reg.child(tag)
        .and_then(Node::content_bytes)
        .map(|b| b.into_owned())
        .ok_or(tag)
}

fn key(reg: &Node, tag: &'static str) -> Result<PublicKey, &'static str> {
    let raw: [u8; 32] = bytes(reg, tag)?.try_into().map_err(|_| tag)?;
    Ok(PublicKey::from_bytes(raw))
}

/// Reads a `companion_hello` strictly (facts sheet 7.2); the error names the part at fault.
pub fn read_hello(reg: &Node) -> Result<CompanionHello, &'static str> {
    let jid = reg.attr("jid").and_then(|j| j.to_jid()).ok_or("jid")?;
    if jid.server != crate::binary::jid::SERVER_PN || jid.device.unwrap_or(0) != 0 {
        return Err("jid");
    }
    let wrapped = bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")?;
    if wrapped.len() != WRAPPED {
        return Err("link_code_pairing_wrapped_companion_ephemeral_pub");
    }
    let platform = String::from_utf8(bytes(reg, "companion_platform_id")?)
        .map_err(|_| "companion_platform_id")?;
    let mut chars = platform.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c.is_ascii_lowercase() => {}
        _ => return Err("companion_platform_id"),
    }
    // `Browser (OS)`: the server refuses other shapes with 400.
    let display = String::from_utf8(bytes(reg, "companion_platform_display")?)
        .map_err(|_| "companion_platform_display")?;
    let shaped = display
        .strip_suffix(')')
        .and_then(|d| d.split_once(" ("))
        .is_some_and(|(browser, os)| !browser.trim().is_empty() && !os.trim().is_empty());
    if !shaped {
        return Err("companion_platform_display");
    }
    bytes(reg, "link_code_pairing_nonce")?;
    Ok(CompanionHello {
        phone: jid.user.to_string(),
        wrapped,
        noise_key: key(reg, "companion_server_auth_key_pub")?,
    })
}

/// Reads a `companion_finish` (facts sheet 7.5).
pub fn read_finish(reg: &Node) -> Result<CompanionFinish, &'static str> {
    let reference = String::from_utf8(bytes(reg, "link_code_pairing_ref")?)
        .map_err(|_| "link_code_pairing_ref")?;
    Ok(CompanionFinish {
        reference,
        bundle: bytes(reg, "link_code_pairing_wrapped_key_bundle")?,
        identity: key(reg, "companion_identity_public")?,
    })
}

/// The answer to a hello: the ref the phone's hello and the finish will name.
pub fn hello_result(id: &str, reference: &str) -> Node {
    stanzas::iq_result(
        id,
        stanzas::server_jid(),
        vec![Node::new("link_code_companion_reg").with_children(vec![
            Node::new("link_code_pairing_ref").with_bytes(reference.as_bytes().to_vec()),
        ])],
    )
}

/// The notification carrying the phone's hello to the companion (facts sheet 7.3).
pub fn primary_hello(id: &str, reference: &str, wrapped: Vec<u8>, account: &PublicKey) -> Node {
    Node::new("notification")
        .with_attr("from", stanzas::server_jid())
        .with_attr("id", id)
        .with_attr("type", "link_code_companion_reg")
        .with_children(vec![
            Node::new("link_code_companion_reg")
                .with_attr("stage", "primary_hello")
                .with_children(vec![
                    Node::new("link_code_pairing_ref").with_bytes(reference.as_bytes().to_vec()),
                    Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .with_bytes(wrapped),
                    Node::new("primary_identity_pub").with_bytes(account.as_bytes().to_vec()),
                ]),
        ])
}

/// A fresh ref for a code: the shape of real ones.
pub fn new_ref(rng: &mut impl RngCore) -> String {
    let mut raw = [0u8; 16];
    rng.fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("2@{hex}")
}

/// A code as typed on the phone: upper-cased, hyphen dropped.
pub fn parse_code(typed: &str) -> Result<[u8; 8], CodeError> {
    let chars: Vec<u8> = typed
        .trim()
        .bytes()
        .filter(|b| *b != b'-')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let code: [u8; 8] = chars.try_into().map_err(|_| CodeError::Malformed)?;
    if code.iter().all(|c| CODE_CHARS.contains(c)) {
        Ok(code)
    } else {
        Err(CodeError::Malformed)
    }
}

fn code_key(code: &[u8; 8], salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(code, salt, ROUNDS, &mut key);
    key
}

/// Opens `salt || iv || ciphertext` with the code.
pub fn unwrap_key(code: &[u8; 8], wrapped: &[u8]) -> Result<PublicKey, CodeError> {
    let (salt, iv, sealed) = match wrapped.len() {
        WRAPPED => (&wrapped[..32], &wrapped[32..48], &wrapped[48..]),
        n => return Err(CodeError::WrappedLength(n)),
    };
    let mut key = [0u8; 32];
    key.copy_from_slice(sealed);
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    Ctr::new(&code_key(code, salt).into(), &iv16.into()).apply_keystream(&mut key);
    Ok(PublicKey::from_bytes(key))
}

/// Seals `key` with the code under a fresh salt and iv.
pub fn wrap_key(code: &[u8; 8], key: &PublicKey, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    let mut sealed = *key.as_bytes();
    Ctr::new(&code_key(code, &salt).into(), &iv.into()).apply_keystream(&mut sealed);
    [&salt[..], &iv[..], &sealed[..]].concat()
}

/// What the phone keeps between its hello and the companion's finish.
pub struct PhoneHello {
    /// The phone's ephemeral key for this attempt.
    pub ephemeral: SecretKey,
    /// The companion's ephemeral key as the typed code unwrapped it.
    pub companion_ephemeral: PublicKey,
}

/// The phone's hello for a typed code: its ephemeral key, wrapped with the code, and what it
/// keeps for the finish.
pub fn phone_hello(
    code: &[u8; 8],
    companion_wrapped: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<u8>, PhoneHello), CodeError> {
    let companion_ephemeral = unwrap_key(code, companion_wrapped)?;
    let ephemeral = SecretKey::generate(rng);
    let wrapped = wrap_key(code, &ephemeral.public_key(), rng);
    Ok((
        wrapped,
        PhoneHello {
            ephemeral,
            companion_ephemeral,
        },
    ))
}

/// Opens the companion's key bundle (checking it names `companion_identity` and this account)
/// and derives the ADV secret the `pair-success` HMAC is keyed with.
pub fn open_finish(
    hello: &PhoneHello,
    account: &KeyPair,
    bundle: &[u8],
    companion_identity: &PublicKey,
) -> Result<[u8; 32], CodeError> {
    if bundle.len() != BUNDLE {
        return Err(CodeError::BundleLength(bundle.len()));
    }
    let shared_e = hello
        .ephemeral
        .diffie_hellman(&hello.companion_ephemeral)
        .ok_or(CodeError::WeakKey)?;
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&bundle[..32]), shared_e.as_ref())
        .expand(b"link_code_pairing_key_bundle_encryption_key", &mut key)
        .map_err(|_| CodeError::WrongCode)?;
    let plain = Aes256Gcm::new(&key.into())
        .decrypt(Nonce::from_slice(&bundle[32..44]), &bundle[44..])
        .map_err(|_| CodeError::WrongCode)?;
    if plain.len() != 96 {
        return Err(CodeError::WrongCode);
    }
    if &plain[..32] != companion_identity.as_bytes() {
        return Err(CodeError::IdentityMismatch);
    }
    if &plain[32..64] != account.public().as_bytes() {
        return Err(CodeError::AccountMismatch);
    }
    let shared_i = account
        .secret()
        .diffie_hellman(companion_identity)
        .ok_or(CodeError::WeakKey)?;
    let ikm = [shared_e.as_ref(), shared_i.as_ref(), &plain[64..]].concat();
    let mut adv = [0u8; 32];
    Hkdf::<Sha256>::new(None, &ikm)
        .expand(b"adv_secret", &mut adv)
        .map_err(|_| CodeError::WrongCode)?;
    Ok(adv)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn codes_are_read_as_typed() {
        assert_eq!(parse_code("abcd-efgh"), Ok(*b"ABCDEFGH"));
        assert_eq!(parse_code(" ZZZZ1111 "), Ok(*b"ZZZZ1111"));
        for bad in ["ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFGI", "ABCD-0FGH", ""] {
            assert_eq!(parse_code(bad), Err(CodeError::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_wrapped_key_opens_with_its_code_only() {
        let mut rng = StdRng::seed_from_u64(3);
        let key = SecretKey::generate(&mut rng).public_key();
        let wrapped = wrap_key(b"ABCDEFGH", &key, &mut rng);
        assert_eq!(wrapped.len(), WRAPPED);
        assert_eq!(unwrap_key(b"ABCDEFGH", &wrapped), Ok(key));
        assert_ne!(unwrap_key(b"ABCDEFGJ", &wrapped), Ok(key));
        assert_eq!(
            unwrap_key(b"ABCDEFGH", &wrapped[1..]),
            Err(CodeError::WrappedLength(79))
        );
    }
}
