//! `SledStore`: the storage traits on sled. The only module that names sled.
//!
//! # Layout
//!
//! One data directory holds a lock file (`wuts-store.lock`) and the sled database (`sled/`).
//! The database has one tree per concern; device-scoped keys start with the device id (layouts in
//! `keyspace.rs`), so a device's entries are one contiguous prefix and sort in id order:
//!
//! | tree              | key                           | value                      |
//! |-------------------|-------------------------------|----------------------------|
//! | `store`           | `schema`, `last-device-id`    | counter record             |
//! | `device-keys`     | device                        | `DeviceKeys` record        |
//! | `paired`          | device                        | `PairedIdentity` record    |
//! | `pre-key-counter` | device                        | next pre-key id record     |
//! | `pre-keys`        | device ‖ pre-key id (4 B BE)  | pre-key record             |
//! | `meta`            | device ‖ meta key             | meta record                |
//!
//! A device exists exactly when it has a `device-keys` entry. The gateway's tenants, tokens and
//! idempotency records have trees of their own (`gw-*`, laid out in `sled/gateway.rs`), opened
//! in [`SledStore::open`] beside these.
//!
//! # Locking
//!
//! Before sled is opened, an exclusive advisory lock is taken on the lock file, so a second
//! handle on the same directory, in this process or another, fails with [`Error::Locked`]
//! instead of sled's untyped I/O error.
//!
//! # Durability
//!
//! sled writes to its log in memory and flushes in the background every 500 ms (its default).
//! The methods the traits document as durable call `Db::flush` before returning; multi-key
//! writes use sled transactions so a crash never leaves them half-applied.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use ::sled::{Batch, Db, IVec, Tree};
use fs2::FileExt;

use crate::codec::RecordError;
use crate::error::{BackendError, Error, RecordKind};
use crate::keys::{DeviceKeys, PairedIdentity, SignedPreKey};
use crate::keyspace::{DEVICE_KEY_LEN, device_key, parse_device_prefix, parse_pre_key_key};
use crate::model::{DeviceId, DeviceInfo, DeviceRecord};
use crate::record::{self, StoredPreKey};
use crate::traits::{Credentials, Devices, Flush};

/// Newest layout this build writes and reads. Bump it, with a migration step in `check_schema`,
/// when trees or key layouts change (record layouts carry their own versions).
const SCHEMA: u64 = 1;
const LOCK_FILE: &str = "wuts-store.lock";
const DB_DIR: &str = "sled";
const SCHEMA_KEY: &[u8] = b"schema";
const LAST_DEVICE_ID_KEY: &[u8] = b"last-device-id";

/// The store on a sled database in one data directory. Share it as `Arc<SledStore>`.
pub struct SledStore {
    dir: PathBuf,
    db: Db,
    store: Tree,
    device_keys: Tree,
    paired: Tree,
    pre_key_counter: Tree,
    pre_keys: Tree,
    meta: Tree,
    /// The gateway's trees (`sled/gateway.rs`).
    gateway: gateway::Trees,
    /// The event outbox's trees (`sled/outbox.rs`).
    events: outbox::Trees,
    /// Holds the directory lock; declared last so it is released after sled is closed.
    _lock: File,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Wraps a sled error as [`Error::Backend`] for `operation`.
fn backend(operation: &'static str) -> impl Fn(::sled::Error) -> Error {
    move |source| Error::Backend {
        operation,
        source: BackendError::new(source),
    }
}

/// Unwraps a transaction result: our own aborts pass through, sled failures become `Backend`.
fn transaction<T>(
    operation: &'static str,
    result: Result<T, TransactionError<Error>>,
) -> Result<T, Error> {
    result.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(source) => backend(operation)(source),
    })
}

/// Aborts a transaction with `error`.
fn abort<T>(error: Error) -> Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(error))
}

/// sled's page cache unless told otherwise: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// Fails with [`Error::Locked`] while another handle has `dir` open, and with
    /// [`Error::UnsupportedSchema`] if a newer build wrote it. Leftovers of a device removal
    /// interrupted by a crash are swept here.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Like [`SledStore::open`], with sled's page cache limited to `cache_bytes` (sled's own
    /// default is 1 GiB, far more than a gateway's working set).
    pub fn open_with_cache(dir: impl AsRef<Path>, cache_bytes: u64) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
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
                Error::Locked { path: dir }
            } else {
                Error::Io {
                    path: lock_path,
                    source: error,
                }
            });
        }

        let db = open_db(&dir.join(DB_DIR), cache_bytes).map_err(backend("open"))?;
        let tree = |name: &str| db.open_tree(name).map_err(backend("open tree"));
        let store = Self {
            store: tree("store")?,
            device_keys: tree("device-keys")?,
            paired: tree("paired")?,
            pre_key_counter: tree("pre-key-counter")?,
            pre_keys: tree("pre-keys")?,
            meta: tree("meta")?,
            gateway: gateway::Trees::open(&db)?,
            events: outbox::Trees::open(&db)?,
            db,
            dir,
            _lock: lock,
        };
        store.check_schema()?;
        store.sweep_orphans(&store.pre_keys)?;
        store.sweep_orphans(&store.meta)?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the schema marker into a new store, or refuses one from a newer build.
    fn check_schema(&self) -> Result<(), Error> {
        let found = self.store.get(SCHEMA_KEY).map_err(backend("read schema"))?;
        let Some(found) = found else {
            self.store
                .insert(SCHEMA_KEY, record::encode_counter(SCHEMA))
                .map_err(backend("write schema"))?;
            return self.flush_for("write schema");
        };
        let corrupt = |source| Error::CorruptStore {
            record: RecordKind::Schema,
            source,
        };
        match record::decode_counter(&found).map_err(corrupt)? {
            SCHEMA => Ok(()),
            0 => Err(corrupt(RecordError::OutOfRange { field: "schema" })),
            found => Err(Error::UnsupportedSchema {
                found,
                supported: SCHEMA,
            }),
        }
    }

    /// Removes device-prefixed entries of devices that no longer exist: what remains when a
    /// crash interrupts `remove_device` between its transaction and its prefix wipe. Visits one
    /// key per device prefix, so it costs O(devices), not O(entries).
    fn sweep_orphans(&self, tree: &Tree) -> Result<(), Error> {
        let mut from = Vec::new();
        while let Some(entry) = tree.range(from.as_slice()..).next() {
            let (key, _) = entry.map_err(backend("sweep orphans"))?;
            let Ok(device) = parse_device_prefix(&key) else {
                // A key too short to carry a device id: not ours to delete; step past it.
                from = key.to_vec();
                from.push(0);
                continue;
            };
            if !self.exists(device)? {
                self.wipe_prefix(tree, device)?;
            }
            match device.get().checked_add(1) {
                Some(next) => from = next.to_be_bytes().to_vec(),
                None => break,
            }
        }
        Ok(())
    }

    fn exists(&self, device: DeviceId) -> Result<bool, Error> {
        self.device_keys
            .contains_key(device_key(device))
            .map_err(backend("check device"))
    }

    fn require_device(&self, device: DeviceId) -> Result<(), Error> {
        if self.exists(device)? {
            Ok(())
        } else {
            Err(Error::UnknownDevice(device))
        }
    }

    /// Deletes every entry of `device` in a device-prefixed tree, in one batch.
    fn wipe_prefix(&self, tree: &Tree, device: DeviceId) -> Result<(), Error> {
        let mut batch = Batch::default();
        for entry in tree.scan_prefix(device_key(device)) {
            let (key, _) = entry.map_err(backend("wipe device"))?;
            batch.remove(key);
        }
        tree.apply_batch(batch).map_err(backend("wipe device"))
    }

    fn flush_for(&self, operation: &'static str) -> Result<(), Error> {
        self.db.flush().map(drop).map_err(backend(operation))
    }

    /// Decodes every stored pre-key of `device`, failing on the first damaged one.
    fn stored_pre_keys(&self, device: DeviceId) -> Result<Vec<StoredPreKey>, Error> {
        self.require_device(device)?;
        let damaged = |source| Error::decode(device, RecordKind::PreKey, source);
        let mut out = Vec::new();
        for entry in self.pre_keys.scan_prefix(device_key(device)) {
            let (key, value) = entry.map_err(backend("read pre-keys"))?;
            let id = parse_pre_key_key(&key).map_err(damaged)?;
            out.push(record::decode_pre_key(&value, id).map_err(damaged)?);
        }
        Ok(out)
    }

    /// One line of the device listing; errors stay inside the entry.
    fn device_info(&self, key: &IVec, value: &IVec) -> Result<DeviceInfo, Error> {
        let device = parse_device_prefix(key)
            .and_then(|device| match key.len() {
                DEVICE_KEY_LEN => Ok(device),
                len => Err(RecordError::BadKey {
                    len,
                    expected: DEVICE_KEY_LEN,
                }),
            })
            .map_err(|source| Error::CorruptStore {
                record: RecordKind::DeviceKeys,
                source,
            })?;
        record::decode_device_keys(value)
            .map_err(|source| Error::decode(device, RecordKind::DeviceKeys, source))?;
        let paired = self.paired.get(key).map_err(backend("list devices"))?;
        let jid = match paired {
            Some(bytes) => Some(
                record::decode_paired(&bytes)
                    .map_err(|source| Error::decode(device, RecordKind::PairedIdentity, source))?
                    .jid,
            ),
            None => None,
        };
        Ok(DeviceInfo::new(device, jid))
    }
}

/// Opens sled, waiting briefly if its own file lock is still held. We hold the directory's
/// exclusive lock already, so a held sled lock can only be an earlier store of this process
/// whose background flusher has not let go yet (sled releases it when its last thread ends);
/// without the wait, reopening right after a clean shutdown fails now and then.
fn open_db(path: &Path, cache_bytes: u64) -> Result<::sled::Db, ::sled::Error> {
    let mut tries = 0;
    loop {
        match ::sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            // sled reports its lock as an `Other` I/O error with this text (sled 0.34
            // `Config::try_lock`; its own tests block on the lock for the same reason).
            Err(::sled::Error::Io(e))
                if tries < 100 && e.to_string().contains("could not acquire lock") =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Best effort: a failure here has no caller to report to, and sled flushes periodically
        // anyway. Callers that must know call `Flush::flush` first.
        let _ = self.db.flush();
    }
}

impl Devices for SledStore {
    fn create_device(&self, keys: &DeviceKeys) -> Result<DeviceId, Error> {
        let value = record::encode_device_keys(keys);
        let result = (&self.store, &self.device_keys).transaction(|(store, devices)| {
            let last = match store.get(LAST_DEVICE_ID_KEY)? {
                None => 0,
                Some(bytes) => match record::decode_counter(&bytes) {
                    Ok(last) => last,
                    Err(source) => {
                        return abort(Error::CorruptStore {
                            record: RecordKind::DeviceCounter,
                            source,
                        });
                    }
                },
            };
            let Some(next) = last.checked_add(1) else {
                return abort(Error::DeviceIdsExhausted);
            };
            let device = DeviceId::new(next);
            store.insert(LAST_DEVICE_ID_KEY, record::encode_counter(next))?;
            devices.insert(&device_key(device), value.as_slice())?;
            Ok(device)
        });
        let device = transaction("create device", result)?;
        self.flush_for("create device")?;
        Ok(device)
    }

    fn list_devices(&self) -> Result<Vec<Result<DeviceInfo, Error>>, Error> {
        let mut out = Vec::new();
        for entry in self.device_keys.iter() {
            let (key, value) = entry.map_err(backend("list devices"))?;
            out.push(self.device_info(&key, &value));
        }
        Ok(out)
    }

    fn remove_device(&self, device: DeviceId) -> Result<bool, Error> {
        let key = device_key(device);
        let result = (&self.device_keys, &self.paired, &self.pre_key_counter).transaction(
            |(devices, paired, counter)| {
                let existed = devices.remove(&key)?.is_some();
                paired.remove(&key)?;
                counter.remove(&key)?;
                Ok(existed)
            },
        );
        let existed = transaction("remove device", result)?;
        // Range deletes cannot run inside a sled transaction. The device is already gone, so
        // no new entries can appear under its prefix (writers check existence transactionally),
        // and `open` sweeps whatever a crash right here would leave.
        self.wipe_prefix(&self.pre_keys, device)?;
        self.wipe_prefix(&self.meta, device)?;
        self.flush_for("remove device")?;
        Ok(existed)
    }

    fn reset_device(&self, device: DeviceId, keys: &DeviceKeys) -> Result<(), Error> {
        let key = device_key(device);
        let value = record::encode_device_keys(keys);
        let result = (&self.device_keys, &self.paired, &self.pre_key_counter).transaction(
            |(devices, paired, counter)| {
                if devices.insert(&key, value.as_slice())?.is_none() {
                    return abort(Error::UnknownDevice(device));
                }
                paired.remove(&key)?;
                counter.remove(&key)?;
                Ok(())
            },
        );
        transaction("reset device", result)?;
        // As in `remove_device`: range deletes after the transaction. A crash between the two
        // leaves old one-time pre-keys, which any identity may still hand out safely.
        self.wipe_prefix(&self.pre_keys, device)?;
        self.wipe_prefix(&self.meta, device)?;
        self.flush_for("reset device")
    }
}

impl Credentials for SledStore {
    fn load_device(&self, device: DeviceId) -> Result<DeviceRecord, Error> {
        let key = device_key(device);
        // A read-only transaction gives keys and pairing from one consistent snapshot.
        let result = (&self.device_keys, &self.paired)
            .transaction(|(devices, paired)| Ok((devices.get(key)?, paired.get(key)?)));
        let (keys, paired) = transaction("load device", result)?;
        let keys = keys.ok_or(Error::UnknownDevice(device))?;
        let keys = record::decode_device_keys(&keys)
            .map_err(|source| Error::decode(device, RecordKind::DeviceKeys, source))?;
        let paired = paired
            .map(|bytes| record::decode_paired(&bytes))
            .transpose()
            .map_err(|source| Error::decode(device, RecordKind::PairedIdentity, source))?;
        Ok(DeviceRecord::new(device, keys, paired))
    }

    fn save_pairing(&self, device: DeviceId, paired: &PairedIdentity) -> Result<(), Error> {
        let value = record::encode_paired(paired).map_err(|source| Error::Encode {
            device,
            record: RecordKind::PairedIdentity,
            source,
        })?;
        let key = device_key(device);
        let result = (&self.device_keys, &self.paired).transaction(|(devices, paired_tree)| {
            if devices.get(key)?.is_none() {
                return abort(Error::UnknownDevice(device));
            }
            match paired_tree.get(key)? {
                None => {
                    paired_tree.insert(&key, value.as_slice())?;
                    Ok(())
                }
                Some(existing) => match record::decode_paired(&existing) {
                    Ok(existing) if existing == *paired => Ok(()),
                    Ok(_) => abort(Error::AlreadyPaired(device)),
                    Err(source) => abort(Error::decode(device, RecordKind::PairedIdentity, source)),
                },
            }
        });
        transaction("save pairing", result)?;
        // Flush even when the identity was already there: a retry after a failed flush must
        // still end with the pairing on disk.
        self.flush_for("save pairing")
    }

    fn replace_signed_pre_key(&self, device: DeviceId, key: &SignedPreKey) -> Result<(), Error> {
        let id = device_key(device);
        let result = self.device_keys.transaction(|devices| {
            let Some(bytes) = devices.get(id)? else {
                return abort(Error::UnknownDevice(device));
            };
            let mut keys = match record::decode_device_keys(&bytes) {
                Ok(keys) => keys,
                Err(source) => return abort(Error::decode(device, RecordKind::DeviceKeys, source)),
            };
            keys.signed_pre_key = key.clone();
            devices.insert(&id, record::encode_device_keys(&keys).as_slice())?;
            Ok(())
        });
        transaction("replace signed pre-key", result)?;
        self.flush_for("replace signed pre-key")
    }
}

impl Flush for SledStore {
    fn flush(&self) -> Result<(), Error> {
        self.flush_for("flush")
    }
}

mod backup;
mod export;
mod gateway;
mod outbox;
mod pool;
#[cfg(test)]
mod tests;
