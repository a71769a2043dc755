//! Key material and identity values the store keeps for each device.
//!
//! These are plain byte containers. The engine generates and uses keys (X25519, XEdDSA); the store
//! only keeps them, so nothing here depends on a crypto crate. `Debug` never prints private key
//! bytes or the ADV secret, so a stray `{:?}` in a log line cannot leak them.

use crate::jid::DeviceJid;
use std::fmt;

/// Writes `bytes` as lower-case hex. Used by the `Debug` impls of public values.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

/// A 32-byte X25519 private key (already clamped by whoever generated it).
///
/// `Debug` prints `PrivateKey(<redacted>)`. Equality is not constant time; it exists so records
/// can be compared in tests and idempotency checks, never to authenticate anything.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A 32-byte X25519 public key, raw (without libsignal's `0x05` type prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// An X25519 key pair.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyPair {
    /// The private half; redacted in `Debug`.
    pub private: PrivateKey,
    /// The public half.
    pub public: PublicKey,
}

/// A 64-byte XEdDSA signature (protocol sheet section 8.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps raw signature bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The raw signature bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// The 32-byte ADV secret shown in the QR code and used to check the pairing HMAC.
///
/// It is a secret: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdvSecret([u8; 32]);

impl AdvSecret {
    /// Wraps raw secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw secret bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for AdvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdvSecret(<redacted>)")
    }
}

/// A Signal registration id.
///
/// libsignal draws these from 1..=16380 (14 bits, protocol sheet section 8.3); the references
/// disagree, so the store accepts exactly libsignal's range and the engine maps randomness into
/// it with [`RegistrationId::from_random`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RegistrationId(u32);

impl RegistrationId {
    /// The smallest valid id.
    pub const MIN: u32 = 1;
    /// The largest valid id (libsignal's upper bound).
    pub const MAX: u32 = 16380;

    /// Accepts `value` if it lies in `MIN..=MAX`.
    pub const fn new(value: u32) -> Option<Self> {
        if value >= Self::MIN && value <= Self::MAX {
            Some(Self(value))
        } else {
            None
        }
    }

    /// Maps any random `u32` into the valid range, so the engine can feed raw rng output.
    pub const fn from_random(random: u32) -> Self {
        Self(random % Self::MAX + Self::MIN)
    }

    /// The numeric id (sent as 4 bytes big-endian in the registration payload).
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// The id of a signed or one-time pre-key.
///
/// Pre-key ids travel as 3 bytes on the wire (protocol sheet section 4.2), so only
/// `0..=0xFF_FFFF` is accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PreKeyId(u32);

impl PreKeyId {
    /// The largest id that fits in the 3-byte wire field.
    pub const MAX: u32 = 0xFF_FFFF;

    /// The id of a device's first one-time pre-key (and, in every reference, its signed pre-key).
    pub const FIRST: Self = Self(1);

    /// Accepts `value` if it fits in 3 bytes.
    pub const fn new(value: u32) -> Option<Self> {
        if value <= Self::MAX {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The numeric id.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id after this one; after `MAX` it wraps to 1 (0 is skipped, as no reference uses it
    /// for one-time keys).
    pub const fn next(self) -> Self {
        if self.0 >= Self::MAX {
            Self(1)
        } else {
            Self(self.0 + 1)
        }
    }
}

/// The signed pre-key: its id, its key pair and the identity key's signature over
/// `0x05 || public` (protocol sheet section 8.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedPreKey {
    /// Pre-key id (1 in every reference implementation).
    pub id: PreKeyId,
    /// The pre-key pair.
    pub key_pair: KeyPair,
    /// XEdDSA signature by the identity key.
    pub signature: Signature,
}

/// A one-time pre-key, uploaded to the server in batches and consumed by the first message of a
/// new Signal session.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OneTimePreKey {
    /// Pre-key id.
    pub id: PreKeyId,
    /// The pre-key pair.
    pub key_pair: KeyPair,
}

/// Credentials the engine generates for a fresh device before its first connect (protocol sheet
/// section 4.6). They never change afterwards; pairing adds a [`PairedIdentity`] beside them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceKeys {
    /// Static key of the Noise handshake.
    pub noise: KeyPair,
    /// Signal identity key.
    pub identity: KeyPair,
    /// Signed pre-key.
    pub signed_pre_key: SignedPreKey,
    /// Signal registration id.
    pub registration_id: RegistrationId,
    /// Secret shared with the phone through the QR code.
    pub adv_secret: AdvSecret,
}

/// What pairing established (protocol sheet section 6.6, step 7).
///
/// JIDs are typed ([`DeviceJid`]); protobufs are kept byte for byte so the engine can resend
/// them exactly.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PairedIdentity {
    /// Own phone-number JID, the `jid` attribute of `<device>`, e.g. `559984726662:77@s.whatsapp.net`.
    pub jid: DeviceJid,
    /// Own LID, the `lid` attribute of `<device>`, when the server sent one.
    pub lid: Option<DeviceJid>,
    /// The primary's platform, the `name` of `<platform>` (e.g. `android`).
    pub platform: String,
    /// Business name from `<biz>`, for business accounts.
    pub business_name: Option<String>,
    /// The serialized `ADVSignedDeviceIdentity` including account signature key and device
    /// signature, later sent as `<device-identity>` in `pkmsg` messages.
    pub signed_device_identity: Vec<u8>,
    /// The account signature key: the primary's identity key.
    pub account_signature_key: PublicKey,
    /// `ADVDeviceIdentity.keyIndex`, sent as `key-index`.
    pub key_index: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_private_key_and_adv_secret() {
        let pair = KeyPair {
            private: PrivateKey::from_bytes([0xAB; 32]),
            public: PublicKey::from_bytes([0x01; 32]),
        };
        let text = format!("{pair:?} {:?}", AdvSecret::from_bytes([0xCD; 32]));
        assert!(!text.contains("ab"), "private bytes leaked: {text}");
        assert!(!text.contains("cd"), "adv secret leaked: {text}");
        assert!(text.contains("<redacted>"));
        assert!(
            text.contains(&"01".repeat(32)),
            "public key should print: {text}"
        );
    }

    #[test]
    fn registration_id_accepts_libsignal_range_only() {
        assert_eq!(RegistrationId::new(0), None);
        assert_eq!(RegistrationId::new(1).map(RegistrationId::get), Some(1));
        assert_eq!(
            RegistrationId::new(16380).map(RegistrationId::get),
            Some(16380)
        );
        assert_eq!(RegistrationId::new(16381), None);
    }

    #[test]
    fn registration_id_from_random_stays_in_range() {
        for random in [0, 1, 16379, 16380, 16381, u32::MAX] {
            let id = RegistrationId::from_random(random).get();
            assert!(
                (RegistrationId::MIN..=RegistrationId::MAX).contains(&id),
                "{random} -> {id}"
            );
        }
    }

    #[test]
    fn pre_key_id_fits_three_bytes_and_wraps_past_zero() {
        assert!(PreKeyId::new(0xFF_FFFF).is_some());
        assert!(PreKeyId::new(0x100_0000).is_none());
        let last = PreKeyId::new(PreKeyId::MAX);
        assert_eq!(last.map(|id| id.next().get()), Some(1));
        assert_eq!(PreKeyId::new(7).map(|id| id.next().get()), Some(8));
    }
}
