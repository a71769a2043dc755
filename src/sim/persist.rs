//! The sandbox's data directory: the root key (so clients that trust it keep working), accounts
//! with their identity keys, linked devices, phone behaviours and groups. Connections and
//! faults are not kept.
//!
//! # Layout
//!
//! `DIR/sandbox.lock` (held while a sandbox has the directory open) and a sled database in
//! `DIR/sandbox.sled/`, one tree per kind of record (encodings in `records`):
//!
//! | tree       | key                                   | value                  |
//! |------------|---------------------------------------|------------------------|
//! | `meta`     | `schema`, `root`                      | layout version, root   |
//! | `accounts` | phone number                          | account record         |
//! | `devices`  | device JID (`phone:n@s.whatsapp.net`) | device record          |
//! | `phones`   | phone number                          | phone behaviour record |
//! | `groups`   | creation sequence number (8 B BE)     | group record           |
//! | `offline`  | device JID, `00`, sequence (8 B BE)   | a queued stanza (`offline`) |
//!
//! # Writes
//!
//! A change writes the records it touched and nothing else: a group its own record, a pairing
//! the account and the device, so a change costs the same with ten groups or a million (the
//! `sandbox.json` of earlier builds was rewritten whole, under the state lock, every time).
//! Records that change in place (accounts, devices, phones) are written under the state lock, so
//! two changes to one record reach the store in the order they were made; that is one small
//! write. A group record never changes once created, so it is written after the lock is
//! released, filed under a sequence number taken under it.
//!
//! # Durability
//!
//! sled keeps writes in memory and flushes them every 500 ms in the background: a crash (or
//! `kill -9`) loses at most the last half second of changes, which a simulator can afford. The
//! root key is flushed before the sandbox starts serving, and a clean shutdown
//! ([`SandboxHandle::shutdown`](super::SandboxHandle::shutdown), or dropping the last handle)
//! flushes everything.
//!
//! # Earlier builds
//!
//! A `DIR/sandbox.json` left by an earlier build is read once, copied into the store and
//! renamed (`legacy`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fs2::FileExt;
use serde::Serialize;
use sled::{Db, Tree};

use super::model::{GroupRecord, PhoneBehaviour, StoreWrites};
use super::records::{self, AccountRecord, Damage, DeviceRecord, Loaded, PersistError, RecordKind};
use super::state::{Account, Device, State};
use crate::noise::KeyPair;

mod offline;

/// The store's layout; bump it, with a migration in `check_schema`, when trees or keys change
/// (record layouts carry their own version byte).
const SCHEMA: u64 = 1;
const LOCK_FILE: &str = "sandbox.lock";
const DB_DIR: &str = "sandbox.sled";
const SCHEMA_KEY: &[u8] = b"schema";
const ROOT_KEY: &[u8] = b"root";
/// sled's background flush interval: what a crash can lose.
const FLUSH_EVERY_MS: u64 = 500;
/// sled's page cache (its default is 1 GB). The store is read only at start, when everything
/// goes into the state in memory, so a large cache would only hold written pages twice.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// An open data directory. Dropping it flushes and closes the store, then releases the lock.
pub(crate) struct Store {
    dir: PathBuf,
    db: Db,
    meta: Tree,
    accounts: Tree,
    devices: Tree,
    phones: Tree,
    groups: Tree,
    offline: Tree,
    /// [`StoreWrites`] so far, as two counters.
    records: AtomicU64,
    bytes: AtomicU64,
    /// Held while the store is open; declared last so it is released after sled is closed.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. `legacy::open` is the way in that also
    /// moves an earlier build's `sandbox.json` into it.
    ///
    /// Fails with [`PersistError::Locked`] while another sandbox has `dir` open.
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PersistError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if let Err(error) = lock.try_lock_exclusive() {
            return Err(if error.kind() == fs2::lock_contended_error().kind() {
                PersistError::Locked {
                    path: dir.to_path_buf(),
                }
            } else {
                PersistError::Io {
                    path: lock_path,
                    source: error,
                }
            });
        }
        let db_path = dir.join(DB_DIR);
        let sled_err = |e: sled::Error| PersistError::Io {
            path: db_path.clone(),
            source: e.into(),
        };
        let db = open_db(&db_path).map_err(sled_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let store = Self {
            dir: dir.to_path_buf(),
            meta: tree("meta")?,
            accounts: tree("accounts")?,
            devices: tree("devices")?,
            phones: tree("phones")?,
            groups: tree("groups")?,
            offline: tree("offline")?,
            db,
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            _lock: lock,
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn put_root(&self, root: &KeyPair) -> Result<(), PersistError> {
        self.put(&self.meta, ROOT_KEY, records::encode_root(root))
    }

    pub fn put_account(&self, phone: &str, account: &Account) -> Result<(), PersistError> {
        let value = self.encode(&AccountRecord::new(account))?;
        self.put(&self.accounts, phone.as_bytes(), value)
    }

    pub fn put_device(&self, device: &Device) -> Result<(), PersistError> {
        let value = self.encode(&DeviceRecord::new(device))?;
        self.put(&self.devices, device.jid().as_bytes(), value)
    }

    pub fn put_phone(&self, phone: &str, behaviour: &PhoneBehaviour) -> Result<(), PersistError> {
        let value = self.encode(behaviour)?;
        self.put(&self.phones, phone.as_bytes(), value)
    }

    /// Files `group` under sequence number `seq`; groups load back in sequence order.
    pub fn put_group(&self, seq: u64, group: &GroupRecord) -> Result<(), PersistError> {
        let value = self.encode(group)?;
        self.put(&self.groups, &seq.to_be_bytes(), value)
    }

    /// Writes everything so far to disk.
    pub fn flush(&self) -> Result<(), PersistError> {
        self.db.flush().map(drop).map_err(|e| self.sled_error(e))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the store was given since it was opened.
    pub fn writes(&self) -> StoreWrites {
        StoreWrites {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    fn put(&self, tree: &Tree, key: &[u8], value: Vec<u8>) -> Result<(), PersistError> {
        let bytes = (key.len() + value.len()) as u64;
        tree.insert(key, value).map_err(|e| self.sled_error(e))?;
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, PersistError> {
        records::encode(value).map_err(|e| PersistError::Io {
            path: self.db_path(),
            source: e.into(),
        })
    }

    fn db_path(&self) -> PathBuf {
        self.dir.join(DB_DIR)
    }

    fn sled_error(&self, e: sled::Error) -> PersistError {
        PersistError::Io {
            path: self.db_path(),
            source: e.into(),
        }
    }

    fn damaged(&self, kind: RecordKind, key: &[u8], damage: Damage) -> PersistError {
        let key = match (kind, <[u8; 8]>::try_from(key)) {
            (RecordKind::Group, Ok(seq)) => u64::from_be_bytes(seq).to_string(),
            _ => String::from_utf8(key.to_vec()).unwrap_or_else(|_| super::keys::hex(key)),
        };
        PersistError::Damaged {
            path: self.dir.clone(),
            kind,
            key,
            damage,
        }
    }

    /// Records the layout in a new store; refuses one a newer build wrote.
    fn check_schema(&self) -> Result<(), PersistError> {
        let found = self.meta.get(SCHEMA_KEY).map_err(|e| self.sled_error(e))?;
        let Some(found) = found else {
            return self.put(&self.meta, SCHEMA_KEY, SCHEMA.to_be_bytes().to_vec());
        };
        let found = <[u8; 8]>::try_from(found.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| self.damaged(RecordKind::Schema, SCHEMA_KEY, Damage::Field("version")))?;
        if found > SCHEMA {
            return Err(PersistError::UnsupportedSchema {
                path: self.dir.clone(),
                found,
                supported: SCHEMA,
            });
        }
        Ok(())
    }

    /// The root key, if a sandbox ever started here.
    pub fn root(&self) -> Result<Option<KeyPair>, PersistError> {
        let value = self.meta.get(ROOT_KEY).map_err(|e| self.sled_error(e))?;
        value
            .map(|v| {
                records::decode_root(&v).map_err(|d| self.damaged(RecordKind::Root, ROOT_KEY, d))
            })
            .transpose()
    }

    /// Everything in the store; `None` if no sandbox ever started here (no root key).
    pub fn load(&self) -> Result<Option<Loaded>, PersistError> {
        let Some(root) = self.root()? else {
            let orphans = [
                &self.accounts,
                &self.devices,
                &self.phones,
                &self.groups,
                &self.offline,
            ]
            .iter()
            .any(|t| !t.is_empty());
            if orphans {
                return Err(self.damaged(RecordKind::Root, ROOT_KEY, Damage::Missing));
            }
            return Ok(None);
        };
        let groups = self.entries(&self.groups, RecordKind::Group, records::group_entry)?;
        Ok(Some(Loaded {
            root,
            accounts: self.entries(&self.accounts, RecordKind::Account, records::account_entry)?,
            devices: self.entries(&self.devices, RecordKind::Device, records::device_entry)?,
            phones: self.entries(&self.phones, RecordKind::Phone, records::phone_entry)?,
            // Sequence numbers may have gaps (a crash can lose a group before a kept one):
            // the next goes after the last, never over it.
            next_group: groups.last().map_or(0, |(seq, _)| seq.saturating_add(1)),
            group_seqs: groups.iter().map(|(seq, _)| *seq).collect(),
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            offline: self.entries(&self.offline, RecordKind::Offline, offline::entry)?,
        }))
    }

    /// Every entry of `tree` in key order, decoded by `decode`.
    fn entries<T>(
        &self,
        tree: &Tree,
        kind: RecordKind,
        decode: fn(&[u8], &[u8]) -> Result<T, Damage>,
    ) -> Result<Vec<T>, PersistError> {
        let mut out = Vec::with_capacity(tree.len());
        for entry in tree.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            out.push(decode(&key, &value).map_err(|d| self.damaged(kind, &key, d))?);
        }
        Ok(out)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Before the lock goes. Best effort: there is no caller to tell, and `shutdown` has
        // flushed (and reported) already.
        let _ = self.db.flush();
    }
}

/// Opens sled, waiting briefly if its own file lock is still held. We hold the directory's
/// lock already, so a held sled lock can only be an earlier store of this process whose
/// background threads have not let go yet (sled releases it when its last thread ends, after
/// `Db` is dropped); without the wait, reopening right after a clean shutdown fails now and
/// then. The gateway's store (`store/src/sled.rs`) waits the same way.
fn open_db(path: &Path) -> Result<Db, sled::Error> {
    let mut tries = 0;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .open();
        match opened {
            // sled reports its lock as an `Other` I/O error with this text (sled 0.34
            // `Config::try_lock`).
            Err(sled::Error::Io(e))
                if tries < 100 && e.to_string().contains("could not acquire lock") =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Puts what a data directory held into a fresh state.
pub(crate) fn restore(state: &mut State, loaded: Loaded) {
    state.accounts.extend(loaded.accounts);
    for d in loaded.devices {
        state.devices.insert(d.jid(), d);
    }
    state.phones.extend(loaded.phones);
    state.group_jids = loaded.groups.iter().map(|g| g.jid.clone()).collect();
    state.group_seqs = loaded
        .groups
        .iter()
        .zip(loaded.group_seqs)
        .map(|(g, seq)| (g.jid.clone(), seq))
        .collect();
    state.groups = loaded.groups;
    state.next_group = loaded.next_group;
    for (jid, seq, node) in loaded.offline {
        state.next_offline = state.next_offline.max(seq.saturating_add(1));
        state.offline.entry(jid).or_default().push_back((seq, node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::PublicKey;
    use crate::sim::keys::new_rng;
    use crate::sim::model::Member;

    fn device(phone: &str, n: u16) -> Device {
        Device {
            phone: phone.into(),
            device: n,
            lid: "100000000000001".into(),
            noise_key: PublicKey::from_bytes([1; 32]),
            identity_key: PublicKey::from_bytes([2; 32]),
            registration_id: 7,
            key_index: 1,
            os: Some("wuts".into()),
            paired_at: 5,
            removed: false,
            keys: Default::default(),
            signed_identity: vec![1, 2, 3],
        }
    }

    fn group(n: u64) -> GroupRecord {
        GroupRecord {
            jid: format!("120363{n:012}@g.us"),
            subject: format!("g{n}"),
            creator: "5511@s.whatsapp.net".into(),
            created_by: "5511:1@s.whatsapp.net".into(),
            creation: 1,
            description: None,
            announcement: false,
            locked: false,
            join_approval: false,
            member_add_mode: "all_member_add".into(),
            ephemeral: 0,
            community: false,
            linked_parent: None,
            participants: vec![Member {
                jid: "5511@s.whatsapp.net".into(),
                role: "superadmin".into(),
            }],
            failed: Vec::new(),
            description_id: None,
            invite_code: None,
            revoked_codes: Vec::new(),
            requests: Vec::new(),
            linked_groups: Vec::new(),
            default_sub_group: false,
            picture_id: None,
            picture_sha256: None,
            request_id: None,
        }
    }

    /// A store with a root, an account, a device, a phone and groups 0, 1 and 5.
    fn filled(dir: &Path) -> KeyPair {
        let mut rng = new_rng(Some(1));
        let root = KeyPair::generate(&mut rng);
        let mut state = State::new(rng, None, root.clone());
        let account = state.account("5511").clone();
        let store = Store::open(dir).unwrap();
        assert!(store.load().unwrap().is_none());
        store.put_root(&root).unwrap();
        store.put_account("5511", &account).unwrap();
        store.put_device(&device("5511", 1)).unwrap();
        store.put_phone("5512", &PhoneBehaviour::default()).unwrap();
        for seq in [5, 0, 1] {
            store.put_group(seq, &group(seq)).unwrap();
        }
        root
    }

    #[test]
    fn reopens_with_every_record_and_groups_in_sequence_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = filled(dir.path());
        let loaded = Store::open(dir.path()).unwrap().load().unwrap().unwrap();
        assert_eq!(loaded.root.public(), root.public());
        assert_eq!(loaded.accounts[0].0, "5511");
        assert_eq!(loaded.devices[0].jid(), "5511:1@s.whatsapp.net");
        assert_eq!(loaded.devices[0].signed_identity, [1, 2, 3]);
        assert_eq!(loaded.phones[0].0, "5512");
        let subjects: Vec<&str> = loaded.groups.iter().map(|g| g.subject.as_str()).collect();
        assert_eq!(subjects, ["g0", "g1", "g5"]);
        // After a gap the next group goes after the last one, never over it.
        assert_eq!(loaded.next_group, 6);
    }

    #[test]
    fn a_second_open_of_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(PersistError::Locked { .. })
        ));
    }

    /// Writes `value` under `key` in `tree` of a filled store, then opens it.
    fn damage(tree: &str, key: &[u8], value: &[u8]) -> PersistError {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path());
        let db = open_db(&dir.path().join(DB_DIR)).unwrap();
        db.open_tree(tree).unwrap().insert(key, value).unwrap();
        drop(db);
        match Store::open(dir.path()).and_then(|s| s.load()) {
            Err(e) => e,
            Ok(_) => panic!("{tree} {key:?} opened"),
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_it() {
        let e = damage("groups", &1_u64.to_be_bytes(), b"\x01{\"jid\":");
        assert!(
            matches!(&e, PersistError::Damaged { kind: RecordKind::Group, key, damage: Damage::Json(_), .. } if key == "1"),
            "{e:?}"
        );
        assert!(e.to_string().contains("damaged group record 1"), "{e}");
        let e = damage("groups", b"short", b"\x01{}");
        assert!(
            matches!(
                e,
                PersistError::Damaged {
                    damage: Damage::Key(_),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = damage("accounts", b"5511", b"\x09{}");
        assert!(
            matches!(&e, PersistError::Damaged { kind: RecordKind::Account, key, damage: Damage::Version(9), .. } if key == "5511"),
            "{e:?}"
        );
        let e = damage("meta", ROOT_KEY, b"\x01short");
        assert!(
            matches!(
                e,
                PersistError::Damaged {
                    kind: RecordKind::Root,
                    ..
                }
            ),
            "{e:?}"
        );
        // A device filed under another device's JID.
        let record = records::encode(&DeviceRecord::new(&device("5511", 2))).unwrap();
        let e = damage("devices", b"5511:1@s.whatsapp.net", &record);
        assert!(
            matches!(
                e,
                PersistError::Damaged {
                    kind: RecordKind::Device,
                    damage: Damage::Key(_),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = damage("meta", SCHEMA_KEY, &9_u64.to_be_bytes());
        assert!(
            matches!(e, PersistError::UnsupportedSchema { found: 9, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn records_without_a_root_are_damage_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path());
        let db = open_db(&dir.path().join(DB_DIR)).unwrap();
        db.open_tree("meta").unwrap().remove(ROOT_KEY).unwrap();
        drop(db);
        assert!(matches!(
            Store::open(dir.path()).and_then(|s| s.load()),
            Err(PersistError::Damaged {
                kind: RecordKind::Root,
                damage: Damage::Missing,
                ..
            })
        ));
    }

    #[test]
    fn counts_what_each_write_costs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.writes();
        store.put_group(0, &group(0)).unwrap();
        let one = store.writes();
        assert_eq!(one.records - before.records, 1);
        let value = records::encode(&group(0)).unwrap();
        assert_eq!(one.bytes - before.bytes, 8 + value.len() as u64);
    }
}
