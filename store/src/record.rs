//! On-disk record layouts: a version byte, then fixed-order fields (see `codec.rs`).
//!
//! Every record type has its own version sequence, starting at 1. Decoding dispatches on the
//! version byte, so an upgrade adds a `2 => decode_v2(..)` arm and keeps the `1` arm, converting
//! old records to the current types; a record from a newer build fails with
//! [`RecordError::UnsupportedVersion`] instead of being misread. Version 0 was never written and
//! counts as damage.
//!
//! Layouts are hand-written rather than derived so the bytes on disk are stable across compiler
//! and dependency versions, and so every length is checked in one place.

use crate::codec::{Reader, RecordError, Writer};
use crate::error::Error;
use crate::jid::DeviceJid;
use crate::keys::{
    AdvSecret, DeviceKeys, KeyPair, OneTimePreKey, PairedIdentity, PreKeyId, PrivateKey, PublicKey,
    RegistrationId, Signature, SignedPreKey,
};
use crate::model::DeviceId;

/// Current version of each record type.
const DEVICE_KEYS_VERSION: u8 = 1;
const PAIRED_VERSION: u8 = 1;
const PRE_KEY_VERSION: u8 = 1;
const PRE_KEY_COUNTER_VERSION: u8 = 1;
const META_VERSION: u8 = 1;
const COUNTER_VERSION: u8 = 1;

/// Opens `record` and checks that its version is `newest` (the only one written so far).
pub(crate) fn open_v1(record: &[u8], newest: u8) -> Result<Reader<'_>, RecordError> {
    let (version, reader) = Reader::open(record)?;
    match version {
        0 => Err(RecordError::InvalidTag {
            field: "version",
            value: 0,
        }),
        v if v > newest => Err(RecordError::UnsupportedVersion { found: v, newest }),
        _ => Ok(reader),
    }
}

fn write_key_pair(w: &mut Writer, pair: &KeyPair) {
    w.fixed(pair.private.as_bytes());
    w.fixed(pair.public.as_bytes());
}

fn read_key_pair(
    r: &mut Reader<'_>,
    private: &'static str,
    public: &'static str,
) -> Result<KeyPair, RecordError> {
    Ok(KeyPair {
        private: PrivateKey::from_bytes(r.array(private)?),
        public: PublicKey::from_bytes(r.array(public)?),
    })
}

fn read_pre_key_id(r: &mut Reader<'_>, field: &'static str) -> Result<PreKeyId, RecordError> {
    PreKeyId::new(r.u32(field)?).ok_or(RecordError::OutOfRange { field })
}

/// `DeviceKeys` v1: fixed 297 bytes.
pub(crate) fn encode_device_keys(keys: &DeviceKeys) -> Vec<u8> {
    let mut w = Writer::new(DEVICE_KEYS_VERSION);
    write_key_pair(&mut w, &keys.noise);
    write_key_pair(&mut w, &keys.identity);
    w.u32(keys.signed_pre_key.id.get());
    write_key_pair(&mut w, &keys.signed_pre_key.key_pair);
    w.fixed(keys.signed_pre_key.signature.as_bytes());
    w.u32(keys.registration_id.get());
    w.fixed(keys.adv_secret.as_bytes());
    w.finish()
}

pub(crate) fn decode_device_keys(record: &[u8]) -> Result<DeviceKeys, RecordError> {
    let mut r = open_v1(record, DEVICE_KEYS_VERSION)?;
    let noise = read_key_pair(&mut r, "noise.private", "noise.public")?;
    let identity = read_key_pair(&mut r, "identity.private", "identity.public")?;
    let spk_id = read_pre_key_id(&mut r, "signed_pre_key.id")?;
    let spk_pair = read_key_pair(&mut r, "signed_pre_key.private", "signed_pre_key.public")?;
    let signature = Signature::from_bytes(r.array("signed_pre_key.signature")?);
    let registration_id =
        RegistrationId::new(r.u32("registration_id")?).ok_or(RecordError::OutOfRange {
            field: "registration_id",
        })?;
    let adv_secret = AdvSecret::from_bytes(r.array("adv_secret")?);
    r.finish()?;
    Ok(DeviceKeys {
        noise,
        identity,
        signed_pre_key: SignedPreKey {
            id: spk_id,
            key_pair: spk_pair,
            signature,
        },
        registration_id,
        adv_secret,
    })
}

/// `PairedIdentity` v1.
pub(crate) fn encode_paired(paired: &PairedIdentity) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(PAIRED_VERSION);
    w.bytes("jid", paired.jid.to_string().as_bytes())?;
    w.opt_str(
        "lid",
        paired.lid.as_ref().map(ToString::to_string).as_deref(),
    )?;
    w.bytes("platform", paired.platform.as_bytes())?;
    w.opt_str("business_name", paired.business_name.as_deref())?;
    w.bytes("signed_device_identity", &paired.signed_device_identity)?;
    w.fixed(paired.account_signature_key.as_bytes());
    w.u32(paired.key_index);
    Ok(w.finish())
}

/// A stored JID that does not read back is a damaged record, not a guess.
fn device_jid(text: String, field: &'static str) -> Result<DeviceJid, RecordError> {
    text.parse().map_err(|_| RecordError::OutOfRange { field })
}

pub(crate) fn decode_paired(record: &[u8]) -> Result<PairedIdentity, RecordError> {
    let mut r = open_v1(record, PAIRED_VERSION)?;
    let paired = PairedIdentity {
        jid: device_jid(r.str("jid")?, "jid")?,
        lid: r
            .opt_str("lid")?
            .map(|lid| device_jid(lid, "lid"))
            .transpose()?,
        platform: r.str("platform")?,
        business_name: r.opt_str("business_name")?,
        signed_device_identity: r.bytes("signed_device_identity")?.to_vec(),
        account_signature_key: PublicKey::from_bytes(r.array("account_signature_key")?),
        key_index: r.u32("key_index")?,
    };
    r.finish()?;
    Ok(paired)
}

/// A one-time pre-key as stored: the key plus whether the server has it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct StoredPreKey {
    pub(crate) key: OneTimePreKey,
    pub(crate) uploaded: bool,
}

const PRE_KEY_UPLOADED: u8 = 0b1;

/// Pre-key v1: id (repeated from the storage key, to catch misplaced records), flags, key pair.
pub(crate) fn encode_pre_key(stored: &StoredPreKey) -> Vec<u8> {
    let mut w = Writer::new(PRE_KEY_VERSION);
    w.u32(stored.key.id.get());
    w.u8(if stored.uploaded { PRE_KEY_UPLOADED } else { 0 });
    write_key_pair(&mut w, &stored.key.key_pair);
    w.finish()
}

/// Decodes a pre-key record and checks it belongs under `expected` id.
pub(crate) fn decode_pre_key(
    record: &[u8],
    expected: PreKeyId,
) -> Result<StoredPreKey, RecordError> {
    let mut r = open_v1(record, PRE_KEY_VERSION)?;
    let id = read_pre_key_id(&mut r, "pre_key.id")?;
    if id != expected {
        return Err(RecordError::OutOfRange {
            field: "pre_key.id",
        });
    }
    let flags = r.u8("pre_key.flags")?;
    if flags & !PRE_KEY_UPLOADED != 0 {
        return Err(RecordError::InvalidTag {
            field: "pre_key.flags",
            value: flags,
        });
    }
    let key_pair = read_key_pair(&mut r, "pre_key.private", "pre_key.public")?;
    r.finish()?;
    Ok(StoredPreKey {
        key: OneTimePreKey { id, key_pair },
        uploaded: flags & PRE_KEY_UPLOADED != 0,
    })
}

/// Per-device "next pre-key id" counter v1.
/// A checked batch of new pre-keys: each id with its record, and the next counter record.
pub(crate) type PreKeyBatch = (Vec<(PreKeyId, Vec<u8>)>, Option<Vec<u8>>);

/// A batch of new (not uploaded) one-time pre-keys, checked and encoded for any backend: each
/// id with its record, in order, and the counter record that follows the batch's last id.
/// Fails with [`Error::DuplicatePreKey`] when an id repeats within the batch.
pub(crate) fn new_pre_key_batch(
    device: DeviceId,
    keys: &[OneTimePreKey],
) -> Result<PreKeyBatch, Error> {
    let mut seen = std::collections::BTreeSet::new();
    let mut records = Vec::with_capacity(keys.len());
    for key in keys {
        if !seen.insert(key.id) {
            return Err(Error::DuplicatePreKey {
                device,
                pre_key: key.id,
            });
        }
        let stored = StoredPreKey {
            key: key.clone(),
            uploaded: false,
        };
        records.push((key.id, encode_pre_key(&stored)));
    }
    let next = keys.last().map(|key| encode_pre_key_counter(key.id.next()));
    Ok((records, next))
}

pub(crate) fn encode_pre_key_counter(next: PreKeyId) -> Vec<u8> {
    let mut w = Writer::new(PRE_KEY_COUNTER_VERSION);
    w.u32(next.get());
    w.finish()
}

pub(crate) fn decode_pre_key_counter(record: &[u8]) -> Result<PreKeyId, RecordError> {
    let mut r = open_v1(record, PRE_KEY_COUNTER_VERSION)?;
    let next = read_pre_key_id(&mut r, "next_pre_key_id")?;
    r.finish()?;
    Ok(next)
}

/// Metadata value v1: the caller's bytes, length-prefixed.
pub(crate) fn encode_meta(value: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(META_VERSION);
    w.bytes("meta.value", value)?;
    Ok(w.finish())
}

pub(crate) fn decode_meta(record: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut r = open_v1(record, META_VERSION)?;
    let value = r.bytes("meta.value")?.to_vec();
    r.finish()?;
    Ok(value)
}

/// A store-wide `u64` (the schema version, the device-id counter) v1.
pub(crate) fn encode_counter(value: u64) -> Vec<u8> {
    let mut w = Writer::new(COUNTER_VERSION);
    w.u64(value);
    w.finish()
}

pub(crate) fn decode_counter(record: &[u8]) -> Result<u64, RecordError> {
    let mut r = open_v1(record, COUNTER_VERSION)?;
    let value = r.u64("counter")?;
    r.finish()?;
    Ok(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn pair(seed: u8) -> KeyPair {
        KeyPair {
            private: PrivateKey::from_bytes([seed; 32]),
            public: PublicKey::from_bytes([seed.wrapping_add(1); 32]),
        }
    }

    pub(crate) fn sample_keys(seed: u8) -> Option<DeviceKeys> {
        Some(DeviceKeys {
            noise: pair(seed),
            identity: pair(seed.wrapping_add(10)),
            signed_pre_key: SignedPreKey {
                id: PreKeyId::new(1)?,
                key_pair: pair(seed.wrapping_add(20)),
                signature: Signature::from_bytes([seed; 64]),
            },
            registration_id: RegistrationId::new(1234)?,
            adv_secret: AdvSecret::from_bytes([seed.wrapping_add(30); 32]),
        })
    }

    fn sample_paired() -> PairedIdentity {
        PairedIdentity {
            jid: "559984726662:77@s.whatsapp.net".parse().unwrap(),
            lid: Some("236395184570386:77@lid".parse().unwrap()),
            platform: "android".to_owned(),
            business_name: None,
            signed_device_identity: vec![0x0A, 0x12, 0x00, 0xFF],
            account_signature_key: PublicKey::from_bytes([9; 32]),
            key_index: 19,
        }
    }

    #[test]
    fn device_keys_round_trip_at_fixed_size() -> Result<(), RecordError> {
        let keys = sample_keys(1).ok_or(RecordError::Empty)?;
        let record = encode_device_keys(&keys);
        assert_eq!(record.len(), 297);
        assert_eq!(record.first(), Some(&1));
        assert_eq!(decode_device_keys(&record)?, keys);
        Ok(())
    }

    #[test]
    fn paired_identity_round_trips_with_and_without_options() -> Result<(), RecordError> {
        let mut paired = sample_paired();
        assert_eq!(decode_paired(&encode_paired(&paired)?)?, paired);
        paired.lid = None;
        paired.business_name = Some("Padaria São João".to_owned());
        assert_eq!(decode_paired(&encode_paired(&paired)?)?, paired);
        Ok(())
    }

    #[test]
    fn pre_key_round_trips_and_checks_its_id() -> Result<(), RecordError> {
        let id = PreKeyId::new(42).ok_or(RecordError::Empty)?;
        let stored = StoredPreKey {
            key: OneTimePreKey {
                id,
                key_pair: pair(5),
            },
            uploaded: true,
        };
        let record = encode_pre_key(&stored);
        assert_eq!(decode_pre_key(&record, id)?, stored);
        let other = PreKeyId::new(43).ok_or(RecordError::Empty)?;
        assert!(matches!(
            decode_pre_key(&record, other),
            Err(RecordError::OutOfRange { .. })
        ));
        Ok(())
    }

    #[test]
    fn future_version_is_a_typed_error() -> Result<(), RecordError> {
        let keys = sample_keys(1).ok_or(RecordError::Empty)?;
        let mut record = encode_device_keys(&keys);
        if let Some(version) = record.first_mut() {
            *version = 2;
        }
        assert_eq!(
            decode_device_keys(&record),
            Err(RecordError::UnsupportedVersion {
                found: 2,
                newest: 1
            })
        );
        Ok(())
    }

    #[test]
    fn version_zero_and_truncation_are_damage() -> Result<(), RecordError> {
        assert!(matches!(
            decode_counter(&[0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(RecordError::InvalidTag {
                field: "version",
                ..
            })
        ));
        let record = encode_paired(&sample_paired())?;
        for cut in 0..record.len() {
            let truncated = record.get(..cut).unwrap_or_default();
            assert!(decode_paired(truncated).is_err(), "cut at {cut} decoded");
        }
        Ok(())
    }

    #[test]
    fn rejects_out_of_range_registration_id() -> Result<(), RecordError> {
        let keys = sample_keys(1).ok_or(RecordError::Empty)?;
        let mut record = encode_device_keys(&keys);
        // Version, noise and identity pairs, signed pre-key id, pair and signature come first.
        let at = 1 + 128 + 4 + 64 + 64;
        if let Some(slot) = record.get_mut(at..at + 4) {
            slot.copy_from_slice(&0u32.to_be_bytes());
        }
        assert_eq!(
            decode_device_keys(&record),
            Err(RecordError::OutOfRange {
                field: "registration_id"
            })
        );
        Ok(())
    }

    #[test]
    fn small_records_round_trip() -> Result<(), RecordError> {
        let next = PreKeyId::new(813).ok_or(RecordError::Empty)?;
        assert_eq!(decode_pre_key_counter(&encode_pre_key_counter(next))?, next);
        assert_eq!(decode_meta(&encode_meta(b"lc=3")?)?, b"lc=3");
        assert_eq!(decode_counter(&encode_counter(u64::MAX))?, u64::MAX);
        Ok(())
    }
}
