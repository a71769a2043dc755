//! Pieces both handshake roles share: message decoding, field checks, DH with the
//! low-order-point guard.

use prost::Message;
use zeroize::Zeroizing;

use super::Error;
use super::keys::{KEY_LEN, PublicKey, SecretKey};
use super::symmetric::TAG_LEN;
use crate::proto::wa6::HandshakeMessage;

/// An encrypted static key: 32 bytes plus the tag.
pub(crate) const SEALED_KEY_LEN: usize = KEY_LEN + TAG_LEN;

/// Decodes a handshake frame payload.
pub(crate) fn decode(frame: &[u8]) -> Result<HandshakeMessage, Error> {
    Ok(HandshakeMessage::decode(frame)?)
}

/// A required bytes field, with an exact length when `len` is given.
pub(crate) fn field<'a>(
    value: Option<&'a Vec<u8>>,
    name: &'static str,
    len: Option<usize>,
) -> Result<&'a [u8], Error> {
    let v = value.ok_or(Error::MissingField(name))?;
    match len {
        Some(expected) if v.len() != expected => Err(Error::FieldLength {
            field: name,
            expected,
            got: v.len(),
        }),
        _ => Ok(v),
    }
}

/// A required 32-byte public key field.
pub(crate) fn key_field(value: Option<&Vec<u8>>, name: &'static str) -> Result<PublicKey, Error> {
    key_from(field(value, name, None)?, name)
}

/// X25519, refusing a non-contributory result (`peer` names the peer key for the error).
pub(crate) fn dh(
    secret: &SecretKey,
    public: &PublicKey,
    peer: &'static str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, Error> {
    secret.diffie_hellman(public).ok_or(Error::WeakKey(peer))
}

/// Reads a 32-byte key (a received ephemeral, or a decrypted static key, which is 32 bytes
/// whenever its ciphertext was 48).
pub(crate) fn key_from(bytes: &[u8], name: &'static str) -> Result<PublicKey, Error> {
    PublicKey::from_slice(bytes).ok_or(Error::FieldLength {
        field: name,
        expected: KEY_LEN,
        got: bytes.len(),
    })
}
