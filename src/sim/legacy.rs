//! `sandbox.json`, the whole-directory file earlier builds rewrote after every change. It is
//! read once, when a data directory that has one is opened: its records are copied into the
//! store (the root last, then a flush) and the file is renamed to `sandbox.json.migrated`, so
//! operators' existing directories keep working. Nothing writes it any more.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::keys::secret_from_hex;
use super::model::{GroupRecord, PhoneBehaviour};
use super::persist::Store;
use super::records::{AccountRecord, DeviceRecord, Loaded, PersistError};
use crate::noise::KeyPair;

/// The file's name inside the data directory.
pub(crate) const FILE_NAME: &str = "sandbox.json";
/// What the file is renamed to once its contents are in the store.
pub(crate) const MIGRATED_NAME: &str = "sandbox.json.migrated";
const VERSION: u32 = 1;

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    root_secret: String,
    accounts: BTreeMap<String, AccountRecord>,
    devices: Vec<DeviceRecord>,
    phones: BTreeMap<String, PhoneBehaviour>,
    groups: Vec<GroupRecord>,
}

/// Opens the data directory `dir`: the store, with an earlier build's `sandbox.json` moved
/// into it first; returns what it holds (`None` if no sandbox ever ran there).
pub(crate) fn open(dir: &Path) -> Result<(Store, Option<Loaded>), PersistError> {
    let store = Store::open(dir)?;
    migrate(&store)?;
    let loaded = store.load()?;
    Ok((store, loaded))
}

/// Moves an earlier build's `sandbox.json` into the store, then renames it.
fn migrate(store: &Store) -> Result<(), PersistError> {
    let from = store.dir().join(FILE_NAME);
    let Some(old) = load(&from)? else {
        return Ok(());
    };
    match store.root()? {
        // An earlier migration stopped before the rename; the root is written last, so
        // everything before it is in.
        Some(root) if root.public() == old.root.public() => {}
        Some(_) => return Err(PersistError::Conflict { path: from }),
        None => {
            for (phone, account) in &old.accounts {
                store.put_account(phone, account)?;
            }
            for device in &old.devices {
                store.put_device(device)?;
            }
            for (phone, behaviour) in &old.phones {
                store.put_phone(phone, behaviour)?;
            }
            for (seq, group) in (0..).zip(&old.groups) {
                store.put_group(seq, group)?;
            }
            store.put_root(&old.root)?;
            store.flush()?;
        }
    }
    let to = store.dir().join(MIGRATED_NAME);
    fs::rename(&from, &to).map_err(|source| PersistError::Io { path: from, source })?;
    tracing::info!(
        accounts = old.accounts.len(),
        devices = old.devices.len(),
        groups = old.groups.len(),
        kept = %to.display(),
        "sandbox.json moved into the sandbox's store"
    );
    Ok(())
}

/// Reads `path`; `Ok(None)` if there is no such file.
pub(crate) fn load(path: &Path) -> Result<Option<Loaded>, PersistError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let snap: Snapshot = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if snap.version != VERSION {
        return Err(corrupt(format!("unknown version {}", snap.version)));
    }
    let root = secret_from_hex(&snap.root_secret)
        .map(KeyPair::from_secret)
        .ok_or_else(|| corrupt("bad root secret".into()))?;
    let mut accounts = Vec::with_capacity(snap.accounts.len());
    for (phone, a) in snap.accounts {
        let account = a
            .into_account()
            .map_err(|e| corrupt(format!("account {phone}: {e}")))?;
        accounts.push((phone, account));
    }
    let mut devices = Vec::with_capacity(snap.devices.len());
    for (i, d) in snap.devices.into_iter().enumerate() {
        devices.push(
            d.into_device()
                .map_err(|e| corrupt(format!("device {i}: {e}")))?,
        );
    }
    let next_group = snap.groups.len() as u64;
    Ok(Some(Loaded {
        root,
        accounts,
        devices,
        phones: snap.phones.into_iter().collect(),
        group_seqs: (0..next_group).collect(),
        groups: snap.groups,
        next_group,
        // Earlier builds kept no offline queue.
        offline: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_of_earlier_builds_and_refuses_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(load(&path).unwrap().is_none());
        let text = serde_json::json!({
            "version": 1,
            "root_public_key": "informational",
            "root_secret": "11".repeat(32),
            "accounts": {"5511": {
                "identity_secret": "22".repeat(32), "lid": "100000000000001", "raw_id": 5,
                "next_device": 2, "next_key_index": 2
            }},
            "devices": [],
            "phones": {"5512": {"on_add": "invite_only"}},
            "groups": []
        });
        fs::write(&path, text.to_string()).unwrap();
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.accounts[0].0, "5511");
        assert_eq!(loaded.accounts[0].1.next_device, 2);
        assert_eq!(loaded.phones.len(), 1);
        fs::write(&path, "{").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Corrupt { .. })));
    }

    /// A group as an earlier build wrote it.
    fn group(n: u32) -> serde_json::Value {
        serde_json::json!({
            "jid": format!("120363{n:012}@g.us"), "subject": format!("g{n}"),
            "creator": "5511@s.whatsapp.net", "created_by": "5511:1@s.whatsapp.net",
            "creation": 1, "description": null, "announcement": false, "locked": false,
            "join_approval": false, "member_add_mode": "all_member_add", "ephemeral": 0,
            "community": false, "linked_parent": null,
            "participants": [{"jid": "5511@s.whatsapp.net", "role": "superadmin"}],
            "failed": []
        })
    }

    /// The `sandbox.json` an earlier build wrote: root `root_byte` x 32, account 5511 with
    /// device 1, a phone behaviour for 5512 and two groups.
    fn legacy_file(dir: &Path, root_byte: &str) {
        let text = serde_json::json!({
            "version": 1,
            "root_public_key": "informational",
            "root_secret": root_byte.repeat(32),
            "accounts": {"5511": {
                "identity_secret": "22".repeat(32), "lid": "100000000000001", "raw_id": 5,
                "next_device": 2, "next_key_index": 2
            }},
            "devices": [{
                "phone": "5511", "device": 1, "lid": "100000000000001",
                "noise_key": "01".repeat(32), "identity_key": "02".repeat(32),
                "registration_id": 7, "key_index": 1, "os": "wuts", "paired_at": 5,
                "removed": false, "prekeys": 3, "signed_identity": "010203"
            }],
            "phones": {"5512": {"on_add": "invite_only"}},
            "groups": [group(0), group(1)]
        });
        fs::write(dir.join(FILE_NAME), text.to_string()).unwrap();
    }

    #[test]
    fn moves_an_earlier_builds_file_into_the_store_once() {
        let dir = tempfile::tempdir().unwrap();
        legacy_file(dir.path(), "11");
        let (store, loaded) = open(dir.path()).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!((loaded.accounts.len(), loaded.devices.len()), (1, 1));
        assert_eq!(loaded.devices[0].jid(), "5511:1@s.whatsapp.net");
        assert_eq!((loaded.phones.len(), loaded.groups.len()), (1, 2));
        assert_eq!(loaded.next_group, 2);
        assert!(!dir.path().join(FILE_NAME).exists());
        assert!(dir.path().join(MIGRATED_NAME).exists());
        drop(store);

        // From the store now, the file aside.
        let (_store, again) = open(dir.path()).unwrap();
        let again = again.unwrap();
        assert_eq!(again.root.public(), loaded.root.public());
        assert_eq!(again.groups, loaded.groups);
        assert_eq!(again.accounts[0].1.next_device, 2);
    }

    #[test]
    fn a_file_beside_a_store_of_the_same_root_is_an_interrupted_migration() {
        let dir = tempfile::tempdir().unwrap();
        legacy_file(dir.path(), "11");
        drop(open(dir.path()).unwrap());
        // The rename never happened: the file is back beside its own copy in the store.
        fs::rename(dir.path().join(MIGRATED_NAME), dir.path().join(FILE_NAME)).unwrap();
        let (_store, loaded) = open(dir.path()).unwrap();
        assert_eq!(loaded.unwrap().groups.len(), 2);
        assert!(!dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn a_file_beside_a_store_of_another_root_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = open(dir.path()).unwrap();
        let other = secret_from_hex(&"44".repeat(32)).unwrap();
        store.put_root(&KeyPair::from_secret(other)).unwrap();
        drop(store);
        legacy_file(dir.path(), "33");
        assert!(matches!(
            open(dir.path()),
            Err(PersistError::Conflict { .. })
        ));
        assert!(dir.path().join(FILE_NAME).exists());
    }
}
