//! Store writes under a fence (design §6.4): a batch commits only while the writer owns the
//! device at the epoch it carries.
//!
//! The batch's transaction first takes `FOR SHARE` on the owner row and checks `(owner,
//! incarnation, epoch)`. A takeover is an `UPDATE` of that row, so under READ COMMITTED it
//! waits for an open batch to commit, and a batch that starts while a takeover is uncommitted
//! waits for it and then re-reads the row's newest version: the check never passes on stale
//! data, and every batch of a device commits under the epoch current at commit time.

use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::{Connection, Row, Transaction};

use super::error::{PgError, backend};
use super::{Epoch, Fence, device_sql, epoch_from, epoch_sql};
use crate::model::DeviceId;

/// Which of a device's key spaces a row belongs to (the same split as the sled trees).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tree(pub i16);

/// One change in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` in `tree` to `value`.
    Put {
        /// The key space.
        tree: Tree,
        /// The key.
        key: Vec<u8>,
        /// The record bytes (version byte first, as in sled).
        value: Vec<u8>,
    },
    /// Removes `key` from `tree`.
    Delete {
        /// The key space.
        tree: Tree,
        /// The key.
        key: Vec<u8>,
    },
}

/// An open transaction that holds the device's owner row `FOR SHARE` at the fence's epoch.
pub struct FencedTx<'c> {
    tx: Transaction<'c, Postgres>,
    fence: Fence,
    device: i64,
    epoch: i64,
}

impl<'c> FencedTx<'c> {
    /// Opens the transaction and checks the fence; [`PgError::Fenced`] if the device moved.
    pub async fn begin(conn: &'c mut PgConnection, fence: &Fence) -> Result<Self, PgError> {
        let tx = conn
            .begin()
            .await
            .map_err(backend("begin a fenced write"))?;
        Self::check(tx, fence).await
    }

    /// Takes `FOR SHARE` on the owner row inside `tx` and checks it against `fence`.
    async fn check(mut tx: Transaction<'c, Postgres>, fence: &Fence) -> Result<Self, PgError> {
        let device = device_sql(fence.device)?;
        let epoch = epoch_sql(fence.epoch)?;
        let row = sqlx::query(
            "SELECT epoch FROM wuts_device_owner
             WHERE device_id = $1 AND owner_node = $2 AND owner_inc = $3 FOR SHARE",
        )
        .bind(device)
        .bind(fence.node.as_str())
        .bind(fence.incarnation.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend("check a fence"))?;
        let current = match row {
            Some(row) => Some(epoch_from(
                row.try_get("epoch").map_err(backend("check a fence"))?,
            )?),
            None => None,
        };
        if current != Some(fence.epoch) {
            tx.rollback()
                .await
                .map_err(backend("roll back a fenced write"))?;
            return Err(PgError::Fenced {
                device: fence.device,
                epoch: fence.epoch,
            });
        }
        Ok(FencedTx {
            tx,
            fence: fence.clone(),
            device,
            epoch,
        })
    }

    /// Applies one change inside the transaction.
    pub async fn apply(&mut self, write: &Write) -> Result<(), PgError> {
        match write {
            Write::Put { tree, key, value } => {
                sqlx::query(
                    "INSERT INTO wuts_kv (device_id, tree, key, value, epoch)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (device_id, tree, key)
                     DO UPDATE SET value = excluded.value, epoch = excluded.epoch",
                )
                .bind(self.device)
                .bind(tree.0)
                .bind(key.as_slice())
                .bind(value.as_slice())
                .bind(self.epoch)
                .execute(&mut *self.tx)
                .await
                .map_err(backend("write a record"))?;
            }
            Write::Delete { tree, key } => {
                sqlx::query("DELETE FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = $3")
                    .bind(self.device)
                    .bind(tree.0)
                    .bind(key.as_slice())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(backend("delete a record"))?;
            }
        }
        Ok(())
    }

    /// Commits the batch. Durable when this returns (PostgreSQL's commit).
    pub async fn commit(self) -> Result<(), PgError> {
        self.tx
            .commit()
            .await
            .map_err(backend("commit a fenced write"))
    }

    /// The transaction, for statements of the store beyond plain puts and deletes (they run
    /// under the same fence check).
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The epoch as stored in `wuts_kv.epoch`.
    pub(crate) fn epoch_sql(&self) -> i64 {
        self.epoch
    }

    /// The fence the batch runs under.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }
}

impl FencedTx<'static> {
    /// Like [`FencedTx::begin`], on a connection of `pool` that the transaction owns.
    pub async fn begin_pooled(pool: &PgPool, fence: &Fence) -> Result<Self, PgError> {
        let tx = pool
            .begin()
            .await
            .map_err(backend("begin a fenced write"))?;
        Self::check(tx, fence).await
    }
}

/// Writes `batch` atomically under `fence`: all of it, or nothing and [`PgError::Fenced`].
pub async fn write_batch(
    conn: &mut PgConnection,
    fence: &Fence,
    batch: &[Write],
) -> Result<(), PgError> {
    let mut tx = FencedTx::begin(conn, fence).await?;
    for write in batch {
        tx.apply(write).await?;
    }
    tx.commit().await
}

/// Reads one record and the epoch of the write that left it.
pub async fn get(
    conn: &mut PgConnection,
    device: DeviceId,
    tree: Tree,
    key: &[u8],
) -> Result<Option<(Vec<u8>, Epoch)>, PgError> {
    let row = sqlx::query(
        "SELECT value, epoch FROM wuts_kv WHERE device_id = $1 AND tree = $2 AND key = $3",
    )
    .bind(device_sql(device)?)
    .bind(tree.0)
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(backend("read a record"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let value: Vec<u8> = row.try_get("value").map_err(backend("read a record"))?;
    let epoch = epoch_from(row.try_get("epoch").map_err(backend("read a record"))?)?;
    Ok(Some((value, epoch)))
}
