//! `MemStore`: the storage traits over plain in-memory maps, for engine unit tests.
//!
//! It follows the same rules as the sled backend (id allocation, duplicate checks, idempotent
//! pairing), which the shared tests in `tests/conformance.rs` check. Nothing is persisted, so
//! [`Flush::flush`] does nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::Error;
use crate::keys::{DeviceKeys, KeyPair, OneTimePreKey, PairedIdentity, PreKeyId, SignedPreKey};
use crate::model::{DeviceId, DeviceInfo, DeviceRecord, MetaKey, PreKeyCount};
use crate::traits::{Credentials, Devices, Flush, Meta, PreKeys};

/// In-memory store; cheap to create, one per test.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Highest id handed out so far; ids are never reused.
    last_id: u64,
    devices: BTreeMap<DeviceId, MemDevice>,
}

#[derive(Debug)]
struct MemDevice {
    keys: DeviceKeys,
    paired: Option<PairedIdentity>,
    /// Key pair and "uploaded" flag per id.
    pre_keys: BTreeMap<PreKeyId, (KeyPair, bool)>,
    next_pre_key: Option<PreKeyId>,
    meta: BTreeMap<MetaKey, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below is computed before the map is touched and cannot panic half way,
        // so a poisoned lock (a panic elsewhere while holding it) still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on one device, or fails with `UnknownDevice`.
    fn with_device<T>(
        &self,
        device: DeviceId,
        f: impl FnOnce(&mut MemDevice) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut state = self.state();
        let entry = state
            .devices
            .get_mut(&device)
            .ok_or(Error::UnknownDevice(device))?;
        f(entry)
    }
}

impl Devices for MemStore {
    fn create_device(&self, keys: &DeviceKeys) -> Result<DeviceId, Error> {
        let mut state = self.state();
        let raw = state
            .last_id
            .checked_add(1)
            .ok_or(Error::DeviceIdsExhausted)?;
        let id = DeviceId::new(raw);
        state.last_id = raw;
        state.devices.insert(
            id,
            MemDevice {
                keys: keys.clone(),
                paired: None,
                pre_keys: BTreeMap::new(),
                next_pre_key: None,
                meta: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    fn list_devices(&self) -> Result<Vec<Result<DeviceInfo, Error>>, Error> {
        let state = self.state();
        Ok(state
            .devices
            .iter()
            .map(|(id, d)| {
                Ok(DeviceInfo::new(
                    *id,
                    d.paired.as_ref().map(|p| p.jid.clone()),
                ))
            })
            .collect())
    }

    fn remove_device(&self, device: DeviceId) -> Result<bool, Error> {
        Ok(self.state().devices.remove(&device).is_some())
    }

    fn reset_device(&self, device: DeviceId, keys: &DeviceKeys) -> Result<(), Error> {
        self.with_device(device, |d| {
            *d = MemDevice {
                keys: keys.clone(),
                paired: None,
                pre_keys: BTreeMap::new(),
                next_pre_key: None,
                meta: BTreeMap::new(),
            };
            Ok(())
        })
    }
}

impl Credentials for MemStore {
    fn load_device(&self, device: DeviceId) -> Result<DeviceRecord, Error> {
        self.with_device(device, |d| {
            Ok(DeviceRecord::new(device, d.keys.clone(), d.paired.clone()))
        })
    }

    fn save_pairing(&self, device: DeviceId, paired: &PairedIdentity) -> Result<(), Error> {
        self.with_device(device, |d| match &d.paired {
            Some(existing) if existing == paired => Ok(()),
            Some(_) => Err(Error::AlreadyPaired(device)),
            None => {
                d.paired = Some(paired.clone());
                Ok(())
            }
        })
    }

    fn replace_signed_pre_key(&self, device: DeviceId, key: &SignedPreKey) -> Result<(), Error> {
        self.with_device(device, |d| {
            d.keys.signed_pre_key = key.clone();
            Ok(())
        })
    }
}

impl PreKeys for MemStore {
    fn next_pre_key_id(&self, device: DeviceId) -> Result<PreKeyId, Error> {
        self.with_device(device, |d| Ok(d.next_pre_key.unwrap_or(PreKeyId::FIRST)))
    }

    fn add_pre_keys(&self, device: DeviceId, keys: &[OneTimePreKey]) -> Result<(), Error> {
        self.with_device(device, |d| {
            let mut seen = std::collections::BTreeSet::new();
            for key in keys {
                if d.pre_keys.contains_key(&key.id) || !seen.insert(key.id) {
                    return Err(Error::DuplicatePreKey {
                        device,
                        pre_key: key.id,
                    });
                }
            }
            for key in keys {
                d.pre_keys.insert(key.id, (key.key_pair.clone(), false));
            }
            if let Some(last) = keys.last() {
                d.next_pre_key = Some(last.id.next());
            }
            Ok(())
        })
    }

    fn pre_keys_to_upload(
        &self,
        device: DeviceId,
        max: usize,
    ) -> Result<Vec<OneTimePreKey>, Error> {
        self.with_device(device, |d| {
            Ok(d.pre_keys
                .iter()
                .filter(|(_, (_, uploaded))| !uploaded)
                .take(max)
                .map(|(id, (key_pair, _))| OneTimePreKey {
                    id: *id,
                    key_pair: key_pair.clone(),
                })
                .collect())
        })
    }

    fn mark_pre_keys_uploaded(&self, device: DeviceId, ids: &[PreKeyId]) -> Result<usize, Error> {
        self.with_device(device, |d| {
            let mut marked = 0;
            for id in ids {
                if let Some((_, uploaded)) = d.pre_keys.get_mut(id) {
                    if !*uploaded {
                        *uploaded = true;
                        marked += 1;
                    }
                }
            }
            Ok(marked)
        })
    }

    fn pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<Option<OneTimePreKey>, Error> {
        self.with_device(device, |d| {
            Ok(d.pre_keys.get(&id).map(|(key_pair, _)| OneTimePreKey {
                id,
                key_pair: key_pair.clone(),
            }))
        })
    }

    fn remove_pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<bool, Error> {
        self.with_device(device, |d| Ok(d.pre_keys.remove(&id).is_some()))
    }

    fn pre_key_count(&self, device: DeviceId) -> Result<PreKeyCount, Error> {
        self.with_device(device, |d| {
            let uploaded = d.pre_keys.values().filter(|(_, up)| *up).count();
            Ok(PreKeyCount::new(d.pre_keys.len(), uploaded))
        })
    }
}

impl Meta for MemStore {
    fn meta(&self, device: DeviceId, key: &MetaKey) -> Result<Option<Vec<u8>>, Error> {
        self.with_device(device, |d| Ok(d.meta.get(key).cloned()))
    }

    fn set_meta(&self, device: DeviceId, key: &MetaKey, value: &[u8]) -> Result<(), Error> {
        self.with_device(device, |d| {
            d.meta.insert(key.clone(), value.to_vec());
            Ok(())
        })
    }

    fn remove_meta(&self, device: DeviceId, key: &MetaKey) -> Result<bool, Error> {
        self.with_device(device, |d| Ok(d.meta.remove(key).is_some()))
    }
}

impl Flush for MemStore {
    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}
