//! What the sandbox's data directory holds, one record at a time, and why reading it can fail.
//!
//! A record is a version byte (1) and JSON: an account, a linked device, a phone behaviour or a
//! group, each on its own so a change rewrites only the record it touched (`persist` puts
//! them in sled). The root key is the version byte and the 32 secret bytes. Keys are hex in the
//! JSON, as in the `sandbox.json` of earlier builds (`legacy` reads that with these shapes).

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::bundle::{KeyBundle, SignedKey};
use super::keys::{hex, secret_from_hex, unhex};
use super::model::{GroupRecord, PhoneBehaviour};
use super::state::{Account, Device};
use crate::noise::{KeyPair, PublicKey, SecretKey};

/// The record layout this build writes and reads (the first byte of every value).
const RECORD_VERSION: u8 = 1;

/// Which kind of record is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// The store's layout version.
    Schema,
    /// The root key clients trust.
    Root,
    /// A phone number's account (identity key, LID, device numbering).
    Account,
    /// A linked device.
    Device,
    /// A phone number's configured behaviour.
    Phone,
    /// A created group.
    Group,
    /// A stanza kept for an absent device.
    Offline,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Schema => "schema",
            Self::Root => "root key",
            Self::Account => "account",
            Self::Device => "device",
            Self::Phone => "phone behaviour",
            Self::Group => "group",
            Self::Offline => "offline stanza",
        })
    }
}

/// What is wrong with one record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The record is not there although others need it.
    #[error("missing")]
    Missing,
    /// The value is empty.
    #[error("empty value")]
    Empty,
    /// The value starts with a version this build does not know.
    #[error("unknown record version {0}")]
    Version(u8),
    /// The JSON does not parse as this kind of record.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A field parses but holds no valid value (a key that is not 32 bytes of hex, ...).
    #[error("bad {0}")]
    Field(&'static str),
    /// The key is not of the shape this kind of record is filed under, or names another
    /// record than the value does.
    #[error("key is not {0}")]
    Key(&'static str),
}

/// Why the data directory could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing failed (the store's own failures included).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another sandbox, in this process or another, has the directory open.
    #[error("{path}: in use by another sandbox")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// A newer build wrote the store.
    #[error("{path}: store layout {found} is newer than this build's {supported}")]
    UnsupportedSchema {
        /// The data directory.
        path: PathBuf,
        /// The layout found.
        found: u64,
        /// The newest layout this build reads.
        supported: u64,
    },
    /// A record of the store cannot be read.
    #[error("{path}: damaged {kind} record {key}: {damage}")]
    Damaged {
        /// The data directory.
        path: PathBuf,
        /// Which kind of record.
        kind: RecordKind,
        /// Its key, as text.
        key: String,
        /// What is wrong with it.
        damage: Damage,
    },
    /// The `sandbox.json` of an earlier build is not a sandbox data file of its version.
    #[error("{path}: not a sandbox data file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds a `sandbox.json` and a store with another root key: migrating the
    /// file would replace the store's directory, so neither is touched.
    #[error("{path}: a store with another root key is already beside it; move one of them away")]
    Conflict {
        /// The `sandbox.json`.
        path: PathBuf,
    },
}

/// Everything a data directory held.
pub(crate) struct Loaded {
    pub root: KeyPair,
    pub accounts: Vec<(String, Account)>,
    pub devices: Vec<Device>,
    pub phones: Vec<(String, PhoneBehaviour)>,
    /// Groups in creation order.
    pub groups: Vec<GroupRecord>,
    /// The sequence number each of `groups` is filed under (a change rewrites that record).
    pub group_seqs: Vec<u64>,
    /// The sequence number the next group is filed under.
    pub next_group: u64,
    /// Stanzas kept for absent devices: device JID, sequence number, stanza; in key order
    /// (by device, then in the order they were queued).
    pub offline: Vec<(String, u64, crate::binary::Node)>,
}

/// An account as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    identity_secret: String,
    lid: String,
    raw_id: u32,
    next_device: u16,
    next_key_index: u32,
}

impl AccountRecord {
    pub fn new(a: &Account) -> Self {
        Self {
            identity_secret: secret_hex(a.identity.secret()),
            lid: a.lid.clone(),
            raw_id: a.raw_id,
            next_device: a.next_device,
            next_key_index: a.next_key_index,
        }
    }

    pub fn into_account(self) -> Result<Account, Damage> {
        let secret =
            secret_from_hex(&self.identity_secret).ok_or(Damage::Field("identity_secret"))?;
        Ok(Account {
            identity: KeyPair::from_secret(secret),
            lid: self.lid,
            raw_id: self.raw_id,
            next_device: self.next_device,
            next_key_index: self.next_key_index,
        })
    }
}

/// A linked device as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    phone: String,
    device: u16,
    lid: String,
    noise_key: String,
    identity_key: String,
    registration_id: u32,
    key_index: u32,
    os: Option<String>,
    paired_at: u64,
    removed: bool,
    /// One-time keys held (older builds kept only this count).
    #[serde(default)]
    prekeys: u32,
    signed_identity: String,
    /// The key bundle itself; absent in older records (read as none: the device's digest
    /// check then uploads it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<BundleRecord>,
}

/// A device's key bundle as stored: keys in hex.
#[derive(Serialize, Deserialize)]
struct BundleRecord {
    signed: Option<SignedRecord>,
    one_time: Vec<(u32, String)>,
}

#[derive(Serialize, Deserialize)]
struct SignedRecord {
    id: u32,
    value: String,
    signature: String,
}

impl BundleRecord {
    fn new(b: &KeyBundle) -> Option<Self> {
        if b.signed.is_none() && b.one_time.is_empty() {
            return None;
        }
        Some(BundleRecord {
            signed: b.signed.as_ref().map(|s| SignedRecord {
                id: s.id,
                value: hex(&s.value),
                signature: hex(&s.signature),
            }),
            one_time: b.one_time.iter().map(|(id, k)| (*id, hex(k))).collect(),
        })
    }

    fn into_bundle(self) -> Result<KeyBundle, Damage> {
        fn fixed<const N: usize>(s: &str) -> Result<[u8; N], Damage> {
            unhex(s)
                .and_then(|b| <[u8; N]>::try_from(b.as_slice()).ok())
                .ok_or(Damage::Field("bundle"))
        }
        let signed = match self.signed {
            Some(s) => Some(SignedKey {
                id: s.id,
                value: fixed(&s.value)?,
                signature: fixed(&s.signature)?,
            }),
            None => None,
        };
        let one_time = self
            .one_time
            .iter()
            .map(|(id, k)| Ok((*id, fixed(k)?)))
            .collect::<Result<_, Damage>>()?;
        Ok(KeyBundle {
            signed,
            one_time,
            ..KeyBundle::default()
        })
    }
}

impl DeviceRecord {
    pub fn new(d: &Device) -> Self {
        Self {
            phone: d.phone.clone(),
            device: d.device,
            lid: d.lid.clone(),
            noise_key: hex(d.noise_key.as_bytes()),
            identity_key: hex(d.identity_key.as_bytes()),
            registration_id: d.registration_id,
            key_index: d.key_index,
            os: d.os.clone(),
            paired_at: d.paired_at,
            removed: d.removed,
            prekeys: d.keys.count(),
            signed_identity: hex(&d.signed_identity),
            bundle: BundleRecord::new(&d.keys),
        }
    }

    pub fn into_device(self) -> Result<Device, Damage> {
        let public = |s: &str, field| {
            unhex(s)
                .and_then(|b| PublicKey::from_slice(&b))
                .ok_or(Damage::Field(field))
        };
        Ok(Device {
            noise_key: public(&self.noise_key, "noise_key")?,
            identity_key: public(&self.identity_key, "identity_key")?,
            signed_identity: unhex(&self.signed_identity)
                .ok_or(Damage::Field("signed_identity"))?,
            phone: self.phone,
            device: self.device,
            lid: self.lid,
            registration_id: self.registration_id,
            key_index: self.key_index,
            os: self.os,
            paired_at: self.paired_at,
            removed: self.removed,
            keys: self
                .bundle
                .map(BundleRecord::into_bundle)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// An `accounts` entry: the phone number (the key) and its account.
pub(crate) fn account_entry(key: &[u8], value: &[u8]) -> Result<(String, Account), Damage> {
    let account = decode::<AccountRecord>(value)?.into_account()?;
    Ok((text_key(key)?, account))
}

/// A `devices` entry, which must be filed under its own JID.
pub(crate) fn device_entry(key: &[u8], value: &[u8]) -> Result<Device, Damage> {
    let device = decode::<DeviceRecord>(value)?.into_device()?;
    if device.jid().as_bytes() != key {
        return Err(Damage::Key("the JID of the device it holds"));
    }
    Ok(device)
}

/// A `phones` entry: the phone number (the key) and its behaviour.
pub(crate) fn phone_entry(key: &[u8], value: &[u8]) -> Result<(String, PhoneBehaviour), Damage> {
    Ok((text_key(key)?, decode(value)?))
}

/// A `groups` entry: the sequence number (the key, 8 bytes big-endian) and the group.
pub(crate) fn group_entry(key: &[u8], value: &[u8]) -> Result<(u64, GroupRecord), Damage> {
    let seq = <[u8; 8]>::try_from(key).map_err(|_| Damage::Key("8 bytes"))?;
    Ok((u64::from_be_bytes(seq), decode(value)?))
}

fn text_key(key: &[u8]) -> Result<String, Damage> {
    String::from_utf8(key.to_vec()).map_err(|_| Damage::Key("UTF-8 text"))
}

/// 64 hex digits of a secret key.
pub(crate) fn secret_hex(k: &SecretKey) -> String {
    hex(k.to_bytes().as_ref())
}

/// The version byte and `value` as JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = vec![RECORD_VERSION];
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// The JSON after the version byte.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Damage> {
    Ok(serde_json::from_slice(body(bytes)?)?)
}

/// The version byte and the root's 32 secret bytes.
pub(crate) fn encode_root(root: &KeyPair) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    out.extend_from_slice(root.secret().to_bytes().as_ref());
    out
}

pub(crate) fn decode_root(bytes: &[u8]) -> Result<KeyPair, Damage> {
    let secret = <[u8; 32]>::try_from(body(bytes)?).map_err(|_| Damage::Field("secret key"))?;
    Ok(KeyPair::from_secret(SecretKey::from_bytes(secret)))
}

/// A value without its version byte, which must be this build's.
fn body(bytes: &[u8]) -> Result<&[u8], Damage> {
    match bytes.split_first() {
        None => Err(Damage::Empty),
        Some((&RECORD_VERSION, rest)) => Ok(rest),
        Some((&v, _)) => Err(Damage::Version(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::keys::new_rng;

    #[test]
    fn records_round_trip_and_name_what_is_wrong() {
        let mut rng = new_rng(Some(1));
        let account = Account {
            identity: KeyPair::generate(&mut rng),
            lid: "100000000000001".into(),
            raw_id: 9,
            next_device: 3,
            next_key_index: 4,
        };
        let bytes = encode(&AccountRecord::new(&account)).unwrap();
        let back = decode::<AccountRecord>(&bytes)
            .unwrap()
            .into_account()
            .unwrap();
        assert_eq!(back.identity.public(), account.identity.public());
        assert_eq!((back.next_device, back.next_key_index), (3, 4));

        let root = KeyPair::generate(&mut rng);
        assert_eq!(
            decode_root(&encode_root(&root)).unwrap().public(),
            root.public()
        );
        assert!(matches!(decode_root(&[1, 2, 3]), Err(Damage::Field(_))));
        assert!(matches!(decode::<GroupRecord>(&[]), Err(Damage::Empty)));
        assert!(matches!(
            decode::<GroupRecord>(b"\x07{}"),
            Err(Damage::Version(7))
        ));
        assert!(matches!(
            decode::<GroupRecord>(b"\x01{"),
            Err(Damage::Json(_))
        ));
        let mut bad = AccountRecord::new(&account);
        bad.identity_secret = "zz".into();
        assert!(matches!(
            bad.into_account(),
            Err(Damage::Field("identity_secret"))
        ));
    }
}
