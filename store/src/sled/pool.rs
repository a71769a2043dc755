//! The one-time pre-key pool and the per-device metadata area, on sled.

use ::sled::transaction::Transactional;
use ::sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::{SledStore, abort, backend, transaction};
use crate::error::{Error, RecordKind};
use crate::keys::{OneTimePreKey, PreKeyId};
use crate::keyspace::{device_key, meta_key, pre_key_key};
use crate::model::{DeviceId, MetaKey, PreKeyCount};
use crate::record;
use crate::traits::{Meta, PreKeys};

impl PreKeys for SledStore {
    fn next_pre_key_id(&self, device: DeviceId) -> Result<PreKeyId, Error> {
        self.require_device(device)?;
        let stored = self
            .pre_key_counter
            .get(device_key(device))
            .map_err(backend("read pre-key counter"))?;
        match stored {
            None => Ok(PreKeyId::FIRST),
            Some(bytes) => record::decode_pre_key_counter(&bytes)
                .map_err(|source| Error::decode(device, RecordKind::PreKeyCounter, source)),
        }
    }

    fn add_pre_keys(&self, device: DeviceId, keys: &[OneTimePreKey]) -> Result<(), Error> {
        let (records, next) = record::new_pre_key_batch(device, keys)?;
        let entries: Vec<_> = records
            .into_iter()
            .map(|(id, value)| (id, pre_key_key(device, id), value))
            .collect();
        let dev_key = device_key(device);
        let trees = (&self.device_keys, &self.pre_keys, &self.pre_key_counter);
        let result = trees.transaction(|(devices, pre_keys, counter)| {
            if devices.get(dev_key)?.is_none() {
                return abort(Error::UnknownDevice(device));
            }
            for (id, key, value) in &entries {
                if pre_keys.insert(key, value.as_slice())?.is_some() {
                    return abort(Error::DuplicatePreKey {
                        device,
                        pre_key: *id,
                    });
                }
            }
            if let Some(next) = &next {
                counter.insert(&dev_key, next.as_slice())?;
            }
            Ok(())
        });
        transaction("add pre-keys", result)?;
        self.flush_for("add pre-keys")
    }

    fn pre_keys_to_upload(
        &self,
        device: DeviceId,
        max: usize,
    ) -> Result<Vec<OneTimePreKey>, Error> {
        Ok(self
            .stored_pre_keys(device)?
            .into_iter()
            .filter(|stored| !stored.uploaded)
            .take(max)
            .map(|stored| stored.key)
            .collect())
    }

    fn mark_pre_keys_uploaded(&self, device: DeviceId, ids: &[PreKeyId]) -> Result<usize, Error> {
        let dev_key = device_key(device);
        let result = (&self.device_keys, &self.pre_keys).transaction(|(devices, pre_keys)| {
            if devices.get(dev_key)?.is_none() {
                return abort(Error::UnknownDevice(device));
            }
            mark_uploaded(pre_keys, device, ids)
        });
        transaction("mark pre-keys uploaded", result)
    }

    fn pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<Option<OneTimePreKey>, Error> {
        self.require_device(device)?;
        let stored = self
            .pre_keys
            .get(pre_key_key(device, id))
            .map_err(backend("read pre-key"))?;
        stored
            .map(|bytes| record::decode_pre_key(&bytes, id).map(|stored| stored.key))
            .transpose()
            .map_err(|source| Error::decode(device, RecordKind::PreKey, source))
    }

    fn remove_pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<bool, Error> {
        self.require_device(device)?;
        let removed = self
            .pre_keys
            .remove(pre_key_key(device, id))
            .map_err(backend("remove pre-key"))?;
        Ok(removed.is_some())
    }

    fn pre_key_count(&self, device: DeviceId) -> Result<PreKeyCount, Error> {
        let stored = self.stored_pre_keys(device)?;
        let uploaded = stored.iter().filter(|stored| stored.uploaded).count();
        Ok(PreKeyCount::new(stored.len(), uploaded))
    }
}

/// The body of `mark_pre_keys_uploaded`, inside its transaction.
fn mark_uploaded(
    pre_keys: &TransactionalTree,
    device: DeviceId,
    ids: &[PreKeyId],
) -> Result<usize, ConflictableTransactionError<Error>> {
    let mut marked = 0;
    for id in ids {
        let key = pre_key_key(device, *id);
        let Some(bytes) = pre_keys.get(key)? else {
            continue;
        };
        let mut stored = match record::decode_pre_key(&bytes, *id) {
            Ok(stored) => stored,
            Err(source) => return abort(Error::decode(device, RecordKind::PreKey, source)),
        };
        if !stored.uploaded {
            stored.uploaded = true;
            pre_keys.insert(&key, record::encode_pre_key(&stored))?;
            marked += 1;
        }
    }
    Ok(marked)
}

impl Meta for SledStore {
    fn meta(&self, device: DeviceId, key: &MetaKey) -> Result<Option<Vec<u8>>, Error> {
        self.require_device(device)?;
        let stored = self
            .meta
            .get(meta_key(device, key))
            .map_err(backend("read meta"))?;
        stored
            .map(|bytes| record::decode_meta(&bytes))
            .transpose()
            .map_err(|source| Error::decode(device, RecordKind::Meta, source))
    }

    fn set_meta(&self, device: DeviceId, key: &MetaKey, value: &[u8]) -> Result<(), Error> {
        let value = record::encode_meta(value).map_err(|source| Error::Encode {
            device,
            record: RecordKind::Meta,
            source,
        })?;
        let dev_key = device_key(device);
        let key = meta_key(device, key);
        let result = (&self.device_keys, &self.meta).transaction(|(devices, meta)| {
            if devices.get(dev_key)?.is_none() {
                return abort(Error::UnknownDevice(device));
            }
            meta.insert(key.as_slice(), value.as_slice())?;
            Ok(())
        });
        transaction("write meta", result)
    }

    fn remove_meta(&self, device: DeviceId, key: &MetaKey) -> Result<bool, Error> {
        self.require_device(device)?;
        let removed = self
            .meta
            .remove(meta_key(device, key))
            .map_err(backend("remove meta"))?;
        Ok(removed.is_some())
    }
}
