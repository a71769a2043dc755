//! `PgStore`: the device storage traits on PostgreSQL, every write fenced.
//!
//! Records are the same bytes as in sled (`record.rs`), kept in `wuts_kv` under the device's
//! id and a tree number; keys drop sled's device prefix since the device is a column.
//!
//! A write for a device runs in a [`FencedTx`]: it commits only while this node owns the
//! device at the epoch of the fence it holds ([`Fences`], filled by the claimer). A node that
//! holds no fence for a device gets [`Error::Fenced`], never a silent write. Reads are not
//! fenced: a node only reads devices it drives, and a stale read is caught by the next write.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::bridge::Bridge;
use super::error::backend;
use super::fenced::FencedTx;
use super::fences::Fences;
use super::{Epoch, Fence, Incarnation, NodeId, device_sql};
use crate::error::{Error, RecordKind};
use crate::keys::{DeviceKeys, OneTimePreKey, PairedIdentity, PreKeyId, SignedPreKey};
use crate::model::{DeviceId, DeviceInfo, DeviceRecord, MetaKey, PreKeyCount};
use crate::record::{self, StoredPreKey};
use crate::traits::{Credentials, Devices, Flush, Meta, PreKeys};

/// The tree numbers of `wuts_kv` (sled's tree names, numbered).
pub(crate) const DEVICE_KEYS: i16 = 1;
pub(crate) const PAIRED: i16 = 2;
pub(crate) const PRE_KEY_COUNTER: i16 = 3;
pub(crate) const PRE_KEYS: i16 = 4;
pub(crate) const META: i16 = 5;

/// The device store on PostgreSQL for one node incarnation.
pub struct PgStore {
    bridge: Arc<Bridge>,
    node: NodeId,
    incarnation: Incarnation,
    fences: Arc<Fences>,
}

impl PgStore {
    /// A store writing as `node`/`incarnation` under the fences in `fences`.
    pub fn new(
        bridge: Arc<Bridge>,
        node: NodeId,
        incarnation: Incarnation,
        fences: Arc<Fences>,
    ) -> Self {
        PgStore {
            bridge,
            node,
            incarnation,
            fences,
        }
    }

    /// The fences this store writes under.
    pub fn fences(&self) -> &Arc<Fences> {
        &self.fences
    }

    /// Runs `body` in a transaction fenced for `device`. Without a fence: [`Error::UnknownDevice`]
    /// when the device does not exist, [`Error::Fenced`] when another node owns it.
    fn fenced<T, F>(
        &self,
        device: DeviceId,
        op: &'static str,
        body: impl FnOnce(FencedTx<'static>) -> F + Send + 'static,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<(T, FencedTx<'static>), Error>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(fence) = self.fences.get(device) else {
            return if self.exists(device)? {
                Err(Error::Fenced(device))
            } else {
                Err(Error::UnknownDevice(device))
            };
        };
        self.run(op, move |pool: PgPool| async move {
            let tx = FencedTx::begin_pooled(&pool, &fence).await?;
            let (value, tx) = body(tx).await?;
            tx.commit().await?;
            Ok(value)
        })
    }

    /// A query on the bridge, waiting no longer than the lease's local deadline: a driver
    /// blocked on an unreachable database must get its answer (an error) in time to close
    /// its socket before another node may take the device.
    fn run<T, F>(&self, op: &'static str, query: impl FnOnce(PgPool) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        match self.fences.remaining() {
            None => self.bridge.run(op, query),
            Some(left) => self.bridge.run_within(op, left, query),
        }
    }

    fn exists(&self, device: DeviceId) -> Result<bool, Error> {
        let id = device_sql(device)?;
        self.run("check a device", move |pool: PgPool| async move {
            let row = sqlx::query(
                "SELECT 1 FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = ''",
            )
            .bind(id)
            .bind(DEVICE_KEYS)
            .fetch_optional(&pool)
            .await
            .map_err(backend("check a device"))?;
            Ok::<_, Error>(row.is_some())
        })
    }

    fn require(&self, device: DeviceId) -> Result<(), Error> {
        if self.exists(device)? {
            Ok(())
        } else {
            Err(Error::UnknownDevice(device))
        }
    }

    /// One record of `device`, or `None`.
    fn get(&self, device: DeviceId, tree: i16, key: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        let id = device_sql(device)?;
        self.run("read a record", move |pool: PgPool| async move {
            let row = sqlx::query(
                "SELECT value FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = $3",
            )
            .bind(id)
            .bind(tree)
            .bind(key)
            .fetch_optional(&pool)
            .await
            .map_err(backend("read a record"))?;
            row.map(|r| r.try_get::<Vec<u8>, _>("value"))
                .transpose()
                .map_err(|e| backend("read a record")(e).into())
        })
    }

    /// Every stored pre-key of `device`, lowest id first.
    fn stored_pre_keys(&self, device: DeviceId) -> Result<Vec<StoredPreKey>, Error> {
        self.require(device)?;
        let id = device_sql(device)?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> =
            self.run("read pre-keys", move |pool: PgPool| async move {
                sqlx::query_as(
                    "SELECT key, value FROM wuts_kv WHERE device_id = $1 AND tree = $2
                     ORDER BY key",
                )
                .bind(id)
                .bind(PRE_KEYS)
                .fetch_all(&pool)
                .await
                .map_err(|e| Error::from(backend("read pre-keys")(e)))
            })?;
        let damaged = |source| Error::decode(device, RecordKind::PreKey, source);
        rows.iter()
            .map(|(key, value)| {
                let id = pre_key_id(key).map_err(damaged)?;
                record::decode_pre_key(value, id).map_err(damaged)
            })
            .collect()
    }
}

/// A pre-key's key in `wuts_kv`: its id, 4 bytes big-endian (so keys sort by id).
fn pre_key_bytes(id: PreKeyId) -> Vec<u8> {
    id.get().to_be_bytes().to_vec()
}

fn pre_key_id(key: &[u8]) -> Result<PreKeyId, crate::RecordError> {
    let bytes: [u8; 4] = key.try_into().map_err(|_| crate::RecordError::BadKey {
        len: key.len(),
        expected: 4,
    })?;
    PreKeyId::new(u32::from_be_bytes(bytes)).ok_or(crate::RecordError::OutOfRange {
        field: "pre-key id",
    })
}

/// Writes one record inside a fenced transaction.
async fn put(tx: &mut FencedTx<'static>, tree: i16, key: &[u8], value: &[u8]) -> Result<(), Error> {
    let (device, epoch) = (device_sql(tx.fence().device)?, tx.epoch_sql());
    sqlx::query(
        "INSERT INTO wuts_kv (device_id, tree, key, value, epoch) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (device_id, tree, key) DO UPDATE SET value = excluded.value,
           epoch = excluded.epoch",
    )
    .bind(device)
    .bind(tree)
    .bind(key)
    .bind(value)
    .bind(epoch)
    .execute(tx.conn())
    .await
    .map_err(backend("write a record"))?;
    Ok(())
}

/// Reads one record inside a fenced transaction.
async fn get_in(
    tx: &mut FencedTx<'static>,
    tree: i16,
    key: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    let device = device_sql(tx.fence().device)?;
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT value FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = $3")
            .bind(device)
            .bind(tree)
            .bind(key)
            .fetch_optional(tx.conn())
            .await
            .map_err(backend("read a record"))?;
    Ok(row.map(|(v,)| v))
}

/// Deletes the device's records in `trees` inside a fenced transaction; returns how many went.
async fn wipe(tx: &mut FencedTx<'static>, trees: &[i16]) -> Result<u64, Error> {
    let device = device_sql(tx.fence().device)?;
    let done = sqlx::query("DELETE FROM wuts_kv WHERE device_id = $1 AND tree = ANY($2)")
        .bind(device)
        .bind(trees)
        .execute(tx.conn())
        .await
        .map_err(backend("wipe a device"))?;
    Ok(done.rows_affected())
}

impl Devices for PgStore {
    fn create_device(&self, keys: &DeviceKeys) -> Result<DeviceId, Error> {
        let value = record::encode_device_keys(keys);
        let (node, inc) = (self.node.clone(), self.incarnation);
        let device = self.run("create a device", move |pool: PgPool| async move {
            let mut tx = pool.begin().await.map_err(backend("create a device"))?;
            // Created here, owned here: the creating node holds epoch 1 from the first write.
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO wuts_device_owner (device_id, owner_node, owner_inc, epoch)
                 VALUES (nextval('wuts_device_seq'), $1, $2, 1) RETURNING device_id",
            )
            .bind(node.as_str())
            .bind(inc.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("create a device"))?;
            sqlx::query(
                "INSERT INTO wuts_kv (device_id, tree, key, value, epoch) VALUES ($1, $2, '', $3, 1)",
            )
            .bind(id)
            .bind(DEVICE_KEYS)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend("create a device"))?;
            tx.commit().await.map_err(backend("create a device"))?;
            let id = u64::try_from(id).map_err(|_| Error::DeviceIdsExhausted)?;
            Ok::<_, Error>(DeviceId::new(id))
        })?;
        self.fences.grant(Fence {
            device,
            node: self.node.clone(),
            incarnation: self.incarnation,
            epoch: Epoch(1),
        });
        Ok(device)
    }

    fn list_devices(&self) -> Result<Vec<Result<DeviceInfo, Error>>, Error> {
        let rows: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> =
            self.run("list devices", move |pool: PgPool| async move {
                sqlx::query_as(
                    "SELECT k.device_id, k.value, p.value FROM wuts_kv k
                     LEFT JOIN wuts_kv p ON p.device_id = k.device_id AND p.tree = $2
                       AND p.key = ''
                     WHERE k.tree = $1 AND k.key = '' ORDER BY k.device_id",
                )
                .bind(DEVICE_KEYS)
                .bind(PAIRED)
                .fetch_all(&pool)
                .await
                .map_err(|e| Error::from(backend("list devices")(e)))
            })?;
        Ok(rows
            .into_iter()
            .map(|(id, keys, paired)| {
                let device =
                    DeviceId::new(u64::try_from(id).map_err(|_| Error::DeviceIdsExhausted)?);
                record::decode_device_keys(&keys)
                    .map_err(|source| Error::decode(device, RecordKind::DeviceKeys, source))?;
                let jid = paired
                    .map(|bytes| record::decode_paired(&bytes).map(|p| p.jid))
                    .transpose()
                    .map_err(|source| Error::decode(device, RecordKind::PairedIdentity, source))?;
                Ok(DeviceInfo::new(device, jid))
            })
            .collect())
    }

    fn remove_device(&self, device: DeviceId) -> Result<bool, Error> {
        let removed = match self.fenced(device, "remove a device", move |mut tx| async move {
            let existed = get_in(&mut tx, DEVICE_KEYS, b"").await?.is_some();
            wipe(
                &mut tx,
                &[DEVICE_KEYS, PAIRED, PRE_KEY_COUNTER, PRE_KEYS, META],
            )
            .await?;
            sqlx::query("DELETE FROM wuts_device_owner WHERE device_id = $1")
                .bind(device_sql(device)?)
                .execute(tx.conn())
                .await
                .map_err(backend("remove a device"))?;
            Ok((existed, tx))
        }) {
            Err(Error::UnknownDevice(_)) => false,
            other => other?,
        };
        self.fences.revoke(device);
        Ok(removed)
    }

    fn reset_device(&self, device: DeviceId, keys: &DeviceKeys) -> Result<(), Error> {
        let value = record::encode_device_keys(keys);
        self.fenced(device, "reset a device", move |mut tx| async move {
            if get_in(&mut tx, DEVICE_KEYS, b"").await?.is_none() {
                return Err(Error::UnknownDevice(device));
            }
            wipe(&mut tx, &[PAIRED, PRE_KEY_COUNTER, PRE_KEYS, META]).await?;
            put(&mut tx, DEVICE_KEYS, b"", &value).await?;
            Ok(((), tx))
        })
    }
}

impl Credentials for PgStore {
    fn load_device(&self, device: DeviceId) -> Result<DeviceRecord, Error> {
        let id = device_sql(device)?;
        let rows: Vec<(i16, Vec<u8>)> =
            self.run("load a device", move |pool: PgPool| async move {
                sqlx::query_as(
                    "SELECT tree, value FROM wuts_kv WHERE device_id = $1 AND key = ''
                     AND tree IN ($2, $3)",
                )
                .bind(id)
                .bind(DEVICE_KEYS)
                .bind(PAIRED)
                .fetch_all(&pool)
                .await
                .map_err(|e| Error::from(backend("load a device")(e)))
            })?;
        let find = |tree| rows.iter().find(|(t, _)| *t == tree).map(|(_, v)| v);
        let keys = find(DEVICE_KEYS).ok_or(Error::UnknownDevice(device))?;
        let keys = record::decode_device_keys(keys)
            .map_err(|source| Error::decode(device, RecordKind::DeviceKeys, source))?;
        let paired = find(PAIRED)
            .map(|bytes| record::decode_paired(bytes))
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
        let paired = paired.clone();
        self.fenced(device, "save a pairing", move |mut tx| async move {
            if get_in(&mut tx, DEVICE_KEYS, b"").await?.is_none() {
                return Err(Error::UnknownDevice(device));
            }
            match get_in(&mut tx, PAIRED, b"").await? {
                None => put(&mut tx, PAIRED, b"", &value).await?,
                Some(existing) => match record::decode_paired(&existing) {
                    Ok(existing) if existing == paired => {}
                    Ok(_) => return Err(Error::AlreadyPaired(device)),
                    Err(source) => {
                        return Err(Error::decode(device, RecordKind::PairedIdentity, source));
                    }
                },
            }
            Ok(((), tx))
        })
    }

    fn replace_signed_pre_key(&self, device: DeviceId, key: &SignedPreKey) -> Result<(), Error> {
        let key = key.clone();
        self.fenced(
            device,
            "replace the signed pre-key",
            move |mut tx| async move {
                let Some(bytes) = get_in(&mut tx, DEVICE_KEYS, b"").await? else {
                    return Err(Error::UnknownDevice(device));
                };
                let mut keys = record::decode_device_keys(&bytes)
                    .map_err(|source| Error::decode(device, RecordKind::DeviceKeys, source))?;
                keys.signed_pre_key = key;
                put(
                    &mut tx,
                    DEVICE_KEYS,
                    b"",
                    &record::encode_device_keys(&keys),
                )
                .await?;
                Ok(((), tx))
            },
        )
    }
}

impl PreKeys for PgStore {
    fn next_pre_key_id(&self, device: DeviceId) -> Result<PreKeyId, Error> {
        self.require(device)?;
        match self.get(device, PRE_KEY_COUNTER, Vec::new())? {
            None => Ok(PreKeyId::FIRST),
            Some(bytes) => record::decode_pre_key_counter(&bytes)
                .map_err(|source| Error::decode(device, RecordKind::PreKeyCounter, source)),
        }
    }

    fn add_pre_keys(&self, device: DeviceId, keys: &[OneTimePreKey]) -> Result<(), Error> {
        let (records, next) = record::new_pre_key_batch(device, keys)?;
        let (ids, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = records
            .into_iter()
            .map(|(id, value)| (pre_key_bytes(id), value))
            .unzip();
        let order: Vec<PreKeyId> = keys.iter().map(|k| k.id).collect();
        self.fenced(device, "add pre-keys", move |mut tx| async move {
            if get_in(&mut tx, DEVICE_KEYS, b"").await?.is_none() {
                return Err(Error::UnknownDevice(device));
            }
            let (id, epoch) = (device_sql(device)?, tx.epoch_sql());
            let inserted: Vec<(Vec<u8>,)> = sqlx::query_as(
                "INSERT INTO wuts_kv (device_id, tree, key, value, epoch)
                 SELECT $1, $2, k, v, $5 FROM UNNEST($3::bytea[], $4::bytea[]) AS t(k, v)
                 ON CONFLICT DO NOTHING RETURNING key",
            )
            .bind(id)
            .bind(PRE_KEYS)
            .bind(&ids)
            .bind(&values)
            .bind(epoch)
            .fetch_all(tx.conn())
            .await
            .map_err(backend("add pre-keys"))?;
            if inserted.len() != ids.len() {
                let inserted: BTreeSet<Vec<u8>> = inserted.into_iter().map(|(k,)| k).collect();
                let taken = order
                    .iter()
                    .find(|id| !inserted.contains(&pre_key_bytes(**id)))
                    .copied()
                    .unwrap_or(PreKeyId::FIRST);
                // Dropping the transaction rolls the batch back: all or nothing.
                return Err(Error::DuplicatePreKey {
                    device,
                    pre_key: taken,
                });
            }
            if let Some(next) = &next {
                put(&mut tx, PRE_KEY_COUNTER, b"", next).await?;
            }
            Ok(((), tx))
        })
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
        let ids = ids.to_vec();
        self.fenced(device, "mark pre-keys uploaded", move |mut tx| async move {
            if get_in(&mut tx, DEVICE_KEYS, b"").await?.is_none() {
                return Err(Error::UnknownDevice(device));
            }
            let mut marked = 0;
            for id in ids {
                let key = pre_key_bytes(id);
                let Some(bytes) = get_in(&mut tx, PRE_KEYS, &key).await? else {
                    continue;
                };
                let mut stored = record::decode_pre_key(&bytes, id)
                    .map_err(|source| Error::decode(device, RecordKind::PreKey, source))?;
                if !stored.uploaded {
                    stored.uploaded = true;
                    put(&mut tx, PRE_KEYS, &key, &record::encode_pre_key(&stored)).await?;
                    marked += 1;
                }
            }
            Ok((marked, tx))
        })
    }

    fn pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<Option<OneTimePreKey>, Error> {
        self.require(device)?;
        self.get(device, PRE_KEYS, pre_key_bytes(id))?
            .map(|bytes| record::decode_pre_key(&bytes, id).map(|stored| stored.key))
            .transpose()
            .map_err(|source| Error::decode(device, RecordKind::PreKey, source))
    }

    fn remove_pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<bool, Error> {
        let key = pre_key_bytes(id);
        self.fenced(device, "remove a pre-key", move |mut tx| async move {
            let removed = delete(&mut tx, PRE_KEYS, &key).await?;
            Ok((removed, tx))
        })
    }

    fn pre_key_count(&self, device: DeviceId) -> Result<PreKeyCount, Error> {
        let stored = self.stored_pre_keys(device)?;
        let uploaded = stored.iter().filter(|stored| stored.uploaded).count();
        Ok(PreKeyCount::new(stored.len(), uploaded))
    }
}

/// Deletes one record inside a fenced transaction; returns whether it was there.
async fn delete(tx: &mut FencedTx<'static>, tree: i16, key: &[u8]) -> Result<bool, Error> {
    let device = device_sql(tx.fence().device)?;
    let done = sqlx::query("DELETE FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = $3")
        .bind(device)
        .bind(tree)
        .bind(key)
        .execute(tx.conn())
        .await
        .map_err(backend("delete a record"))?;
    Ok(done.rows_affected() > 0)
}

impl Meta for PgStore {
    fn meta(&self, device: DeviceId, key: &MetaKey) -> Result<Option<Vec<u8>>, Error> {
        self.require(device)?;
        self.get(device, META, key.as_str().as_bytes().to_vec())?
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
        let key = key.as_str().as_bytes().to_vec();
        self.fenced(device, "write meta", move |mut tx| async move {
            if get_in(&mut tx, DEVICE_KEYS, b"").await?.is_none() {
                return Err(Error::UnknownDevice(device));
            }
            put(&mut tx, META, &key, &value).await?;
            Ok(((), tx))
        })
    }

    fn remove_meta(&self, device: DeviceId, key: &MetaKey) -> Result<bool, Error> {
        let key = key.as_str().as_bytes().to_vec();
        self.fenced(device, "remove meta", move |mut tx| async move {
            let removed = delete(&mut tx, META, &key).await?;
            Ok((removed, tx))
        })
    }
}

impl Flush for PgStore {
    /// Every write commits before it returns: nothing to flush.
    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}
