//! Keeping the sandbox's directory in `DATA_DIR/sandbox.json`: the root key (so clients that
//! trust it keep working), accounts with their identity keys, linked devices, phone behaviours
//! and groups. Connections and faults are not kept.
//!
//! Written whole after each change that matters (pairing, removal, group creation, behaviour),
//! through a temporary file and a rename so a crash never leaves half a file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::{hex, secret_from_hex, unhex};
use super::model::{GroupRecord, PhoneBehaviour, StoreWrites};
use super::state::{Account, Device, State};
use crate::noise::{KeyPair, PublicKey, SecretKey};

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "sandbox.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    /// Informational: the key to give clients.
    root_public_key: String,
    root_secret: String,
    accounts: BTreeMap<String, AccountSnap>,
    devices: Vec<DeviceSnap>,
    phones: BTreeMap<String, PhoneBehaviour>,
    groups: Vec<GroupRecord>,
}

#[derive(Serialize, Deserialize)]
struct AccountSnap {
    identity_secret: String,
    lid: String,
    raw_id: u32,
    next_device: u16,
    next_key_index: u32,
}

#[derive(Serialize, Deserialize)]
struct DeviceSnap {
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
    prekeys: u32,
    signed_identity: String,
}

/// What a data file held.
pub(crate) struct Loaded {
    pub root: KeyPair,
    pub accounts: Vec<(String, Account)>,
    pub devices: Vec<Device>,
    pub phones: Vec<(String, PhoneBehaviour)>,
    pub groups: Vec<GroupRecord>,
}

/// Why a data file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a sandbox data file of this version.
    #[error("{path}: not a sandbox data file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The data file in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads `dir/sandbox.json`; `Ok(None)` if there is none yet.
pub(crate) fn load(dir: &Path) -> Result<Option<Loaded>, PersistError> {
    let path = path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Io { path, source }),
    };
    let corrupt = |reason: &str| PersistError::Corrupt {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let snap: Snapshot = serde_json::from_str(&text).map_err(|e| corrupt(&e.to_string()))?;
    if snap.version != VERSION {
        return Err(corrupt("unknown version"));
    }
    let secret = |s: &str| secret_from_hex(s).ok_or_else(|| corrupt("bad secret key"));
    let public = |s: &str| {
        unhex(s)
            .and_then(|b| PublicKey::from_slice(&b))
            .ok_or_else(|| corrupt("bad public key"))
    };
    let root = KeyPair::from_secret(secret(&snap.root_secret)?);
    let mut accounts = Vec::new();
    for (phone, a) in snap.accounts {
        accounts.push((
            phone,
            Account {
                identity: KeyPair::from_secret(secret(&a.identity_secret)?),
                lid: a.lid,
                raw_id: a.raw_id,
                next_device: a.next_device,
                next_key_index: a.next_key_index,
            },
        ));
    }
    let mut devices = Vec::new();
    for d in snap.devices {
        devices.push(Device {
            noise_key: public(&d.noise_key)?,
            identity_key: public(&d.identity_key)?,
            signed_identity: unhex(&d.signed_identity).ok_or_else(|| corrupt("bad identity"))?,
            phone: d.phone,
            device: d.device,
            lid: d.lid,
            registration_id: d.registration_id,
            key_index: d.key_index,
            os: d.os,
            paired_at: d.paired_at,
            removed: d.removed,
            prekeys: d.prekeys,
        });
    }
    Ok(Some(Loaded {
        root,
        accounts,
        devices,
        phones: snap.phones.into_iter().collect(),
        groups: snap.groups,
    }))
}

/// Writes the directory half of `state` to `dir/sandbox.json`; returns what that wrote.
pub(crate) fn save(dir: &Path, state: &State) -> Result<StoreWrites, PersistError> {
    let secret_hex = |k: &SecretKey| hex(k.to_bytes().as_ref());
    let snap = Snapshot {
        version: VERSION,
        root_public_key: hex(state.root.public().as_bytes()),
        root_secret: secret_hex(state.root.secret()),
        accounts: state
            .accounts
            .iter()
            .map(|(phone, a)| {
                let snap = AccountSnap {
                    identity_secret: secret_hex(a.identity.secret()),
                    lid: a.lid.clone(),
                    raw_id: a.raw_id,
                    next_device: a.next_device,
                    next_key_index: a.next_key_index,
                };
                (phone.clone(), snap)
            })
            .collect(),
        devices: state
            .devices
            .values()
            .map(|d| DeviceSnap {
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
                prekeys: d.prekeys,
                signed_identity: hex(&d.signed_identity),
            })
            .collect(),
        phones: state
            .phones
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        groups: state.groups.clone(),
    };
    let path = path(dir);
    let io_err = |source| PersistError::Io {
        path: path.clone(),
        source,
    };
    let text = serde_json::to_string_pretty(&snap).map_err(|e| io_err(io::Error::other(e)))?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    fs::create_dir_all(dir).map_err(io_err)?;
    let written = StoreWrites {
        records: 1 + [
            snap.accounts.len(),
            snap.devices.len(),
            snap.phones.len(),
            snap.groups.len(),
        ]
        .iter()
        .map(|&n| n as u64)
        .sum::<u64>(),
        bytes: text.len() as u64,
    };
    fs::write(&tmp, text).map_err(io_err)?;
    fs::rename(&tmp, &path).map_err(io_err)?;
    Ok(written)
}

/// Puts what a file held into a fresh state.
pub(crate) fn restore(state: &mut State, loaded: Loaded) {
    state.accounts.extend(loaded.accounts);
    for d in loaded.devices {
        state.devices.insert(d.jid(), d);
    }
    state.phones.extend(loaded.phones);
    state.group_jids = loaded.groups.iter().map(|g| g.jid.clone()).collect();
    state.groups = loaded.groups;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::keys::new_rng;

    #[test]
    fn round_trips_accounts_devices_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = new_rng(None);
        let root = KeyPair::generate(&mut rng);
        let mut s = State::new(rng, None, root.clone());
        let lid = s.account("5511999999999").lid.clone();
        s.devices.insert(
            "5511999999999:1@s.whatsapp.net".into(),
            Device {
                phone: "5511999999999".into(),
                device: 1,
                lid,
                noise_key: PublicKey::from_bytes([1; 32]),
                identity_key: PublicKey::from_bytes([2; 32]),
                registration_id: 7,
                key_index: 1,
                os: Some("wuts".into()),
                paired_at: 5,
                removed: false,
                prekeys: 3,
                signed_identity: vec![1, 2, 3],
            },
        );
        save(dir.path(), &s).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.root.public(), root.public());
        let mut fresh = State::new(new_rng(None), None, loaded.root.clone());
        restore(&mut fresh, loaded);
        assert_eq!(
            fresh.accounts["5511999999999"].identity.public(),
            s.accounts["5511999999999"].identity.public()
        );
        assert_eq!(fresh.devices.len(), 1);
        assert!(load(tempfile::tempdir().unwrap().path()).unwrap().is_none());
    }

    #[test]
    fn refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), "{").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(PersistError::Corrupt { .. })
        ));
    }
}
