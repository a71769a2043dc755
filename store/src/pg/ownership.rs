//! Node heartbeats and device ownership (design §6.3): join, renew, claim an orphan, hand off,
//! reconcile, locate. Every decision is one statement that compares and sets in the database,
//! so two nodes that race each other cannot both win; expiry is judged on the database clock.

use std::time::Duration;

use sqlx::Connection;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::error::{PgError, backend};
use super::{Epoch, Fence, Incarnation, NodeId, device_sql, epoch_from, epoch_sql};
use crate::model::DeviceId;

/// A node's declared state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Takes devices.
    Active,
    /// Leaving: hands its devices off and takes none.
    Draining,
    /// Restarting in place: others keep treating it as live until its row expires.
    Restarting,
}

impl NodeState {
    fn as_sql(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Restarting => "restarting",
        }
    }

    fn from_sql(text: &str) -> Result<Self, PgError> {
        match text {
            "active" => Ok(NodeState::Active),
            "draining" => Ok(NodeState::Draining),
            "restarting" => Ok(NodeState::Restarting),
            _ => Err(PgError::Corrupt("an unknown node state")),
        }
    }
}

/// A live node as the table shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub node: NodeId,
    /// Where it answers forwarded requests.
    pub rpc_addr: String,
    /// Its state.
    pub state: NodeState,
    /// Its placement weight.
    pub weight: u32,
}

/// Where a device lives now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The owning node, if any.
    pub node: Option<NodeId>,
    /// Its forwarding address, when the owner's row is live.
    pub rpc_addr: Option<String>,
    /// The ownership epoch.
    pub epoch: Epoch,
}

/// A successful claim.
pub type Claimed = Fence;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn node_id(text: String) -> Result<NodeId, PgError> {
    NodeId::new(text).map_err(|_| PgError::Corrupt("an invalid node id"))
}

/// Joins (or rejoins) the cluster as `node`: takes the row if it is ours, if its incarnation
/// expired more than `grace` ago, or if the old process marked it restarting on its way out.
/// Anything else means another live process runs under this id: [`PgError::NodeIdTaken`].
pub async fn join(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
    rpc_addr: &str,
    ttl: Duration,
    grace: Duration,
) -> Result<(), PgError> {
    let mut tx = conn.begin().await.map_err(backend("join the cluster"))?;
    let before =
        sqlx::query("SELECT incarnation, state FROM wuts_node WHERE node_id = $1 FOR UPDATE")
            .bind(node.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("join the cluster"))?;
    let row = sqlx::query(
        "INSERT INTO wuts_node (node_id, incarnation, rpc_addr, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (node_id) DO UPDATE SET
           expires_at = excluded.expires_at, incarnation = excluded.incarnation,
           rpc_addr = excluded.rpc_addr, state = 'active'
         WHERE wuts_node.incarnation = excluded.incarnation
            OR wuts_node.expires_at < now() - make_interval(secs => $5)
            OR wuts_node.state = 'restarting'
         RETURNING node_id",
    )
    .bind(node.as_str())
    .bind(incarnation.0)
    .bind(rpc_addr)
    .bind(secs(ttl))
    .bind(secs(grace))
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend("join the cluster"))?;
    if row.is_none() {
        return Err(PgError::NodeIdTaken(node.clone()));
    }
    // Restart in place: the devices the previous incarnation kept for us come back at once,
    // under a new epoch (so nothing the old process might still write can land).
    if let Some(before) = before {
        let old: uuid::Uuid = before
            .try_get("incarnation")
            .map_err(backend("join the cluster"))?;
        let state: String = before
            .try_get("state")
            .map_err(backend("join the cluster"))?;
        if state == "restarting" && old != incarnation.0 {
            sqlx::query(
                "UPDATE wuts_device_owner SET owner_inc = $3, epoch = epoch + 1,
                   changed_at = now()
                 WHERE owner_node = $1 AND owner_inc = $2",
            )
            .bind(node.as_str())
            .bind(old)
            .bind(incarnation.0)
            .execute(&mut *tx)
            .await
            .map_err(backend("take devices back after a restart"))?;
        }
    }
    tx.commit().await.map_err(backend("join the cluster"))
}

/// Renews the node's row for `ttl` on the database clock. `false`: the row is no longer this
/// incarnation's (taken over, or deleted), and the lease is lost.
pub async fn renew(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
    ttl: Duration,
) -> Result<bool, PgError> {
    let done = sqlx::query(
        "UPDATE wuts_node SET expires_at = now() + make_interval(secs => $3)
         WHERE node_id = $1 AND incarnation = $2 AND state <> 'restarting'",
    )
    .bind(node.as_str())
    .bind(incarnation.0)
    .bind(secs(ttl))
    .execute(conn)
    .await
    .map_err(backend("renew the node lease"))?;
    Ok(done.rows_affected() == 1)
}

/// Sets the node's state; `restarting` also sets its expiry to `now() + keep` so others wait
/// that long for the same node id to come back (restart in place).
pub async fn mark(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
    state: NodeState,
    keep: Duration,
) -> Result<bool, PgError> {
    let done = sqlx::query(
        "UPDATE wuts_node SET state = $3,
           expires_at = CASE WHEN $3 = 'restarting' THEN now() + make_interval(secs => $4)
                        ELSE expires_at END
         WHERE node_id = $1 AND incarnation = $2",
    )
    .bind(node.as_str())
    .bind(incarnation.0)
    .bind(state.as_sql())
    .bind(secs(keep))
    .execute(conn)
    .await
    .map_err(backend("set the node state"))?;
    Ok(done.rows_affected() == 1)
}

/// Sets the node's weight: its share of devices relative to the others (0 takes none).
pub async fn set_weight(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
    weight: u32,
) -> Result<bool, PgError> {
    let done = sqlx::query(
        "UPDATE wuts_node SET weight = $3::int WHERE node_id = $1 AND incarnation = $2",
    )
    .bind(node.as_str())
    .bind(incarnation.0)
    .bind(i64::from(weight))
    .execute(conn)
    .await
    .map_err(backend("set the node weight"))?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the node's row (after a drain): its devices are orphans at once.
pub async fn leave(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
) -> Result<(), PgError> {
    sqlx::query("DELETE FROM wuts_node WHERE node_id = $1 AND incarnation = $2")
        .bind(node.as_str())
        .bind(incarnation.0)
        .execute(conn)
        .await
        .map_err(backend("leave the cluster"))?;
    Ok(())
}

/// The nodes whose rows are live, by id.
pub async fn nodes(conn: &mut PgConnection) -> Result<Vec<NodeInfo>, PgError> {
    let rows = sqlx::query(
        "SELECT node_id, rpc_addr, state, weight FROM wuts_node
         WHERE expires_at > now() ORDER BY node_id",
    )
    .fetch_all(conn)
    .await
    .map_err(backend("list the nodes"))?;
    rows.into_iter()
        .map(|row| {
            Ok(NodeInfo {
                node: node_id(row.try_get("node_id").map_err(backend("read a node"))?)?,
                rpc_addr: row.try_get("rpc_addr").map_err(backend("read a node"))?,
                state: NodeState::from_sql(row.try_get("state").map_err(backend("read a node"))?)?,
                weight: u32::try_from(
                    row.try_get::<i32, _>("weight")
                        .map_err(backend("read a node"))?,
                )
                .map_err(|_| PgError::Corrupt("a negative weight"))?,
            })
        })
        .collect()
}

/// Makes `device` known to the cluster, unowned at epoch 0 (nothing if it already is).
pub async fn register_device(conn: &mut PgConnection, device: DeviceId) -> Result<(), PgError> {
    sqlx::query("INSERT INTO wuts_device_owner (device_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(device_sql(device)?)
        .execute(conn)
        .await
        .map_err(backend("register a device"))?;
    Ok(())
}

/// Devices nobody live owns: unowned, or owned by a node whose row is gone, of another
/// incarnation, or expired more than `grace` ago. With the epoch each was seen at, for
/// [`claim`].
pub async fn orphans(
    conn: &mut PgConnection,
    grace: Duration,
    limit: u32,
) -> Result<Vec<(DeviceId, Epoch)>, PgError> {
    let rows = sqlx::query(
        "SELECT d.device_id, d.epoch FROM wuts_device_owner d
         WHERE d.owner_node IS NULL OR NOT EXISTS (
           SELECT 1 FROM wuts_node n WHERE n.node_id = d.owner_node
             AND n.incarnation = d.owner_inc
             AND n.expires_at > now() - make_interval(secs => $1))
         ORDER BY d.device_id LIMIT $2",
    )
    .bind(secs(grace))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(backend("list orphan devices"))?;
    pairs(rows)
}

/// How long until the devices of some node that owns any become orphans (its expiry plus
/// `grace`, on the database clock), zero if some already are; `None` when no node owns a
/// device. A claimer wakes then instead of at its next tick, so a dead node's devices are
/// claimed the moment they may be.
pub async fn next_orphaning(
    conn: &mut PgConnection,
    grace: Duration,
) -> Result<Option<Duration>, PgError> {
    let secs_left: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (min(n.expires_at) + make_interval(secs => $1) - now()))::float8
         FROM wuts_node n
         WHERE EXISTS (SELECT 1 FROM wuts_device_owner d
                       WHERE d.owner_node = n.node_id AND d.owner_inc = n.incarnation)",
    )
    .bind(secs(grace))
    .fetch_one(conn)
    .await
    .map_err(backend("find the next orphaning"))?;
    Ok(secs_left.map(|s| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)))
}

/// Claims an orphan seen at `seen`: one compare-and-set that bumps the epoch. `None` when
/// another node claimed it first or its owner turned out to be live.
pub async fn claim(
    conn: &mut PgConnection,
    device: DeviceId,
    node: &NodeId,
    incarnation: Incarnation,
    seen: Epoch,
    grace: Duration,
) -> Result<Option<Claimed>, PgError> {
    let row = sqlx::query(
        "UPDATE wuts_device_owner d SET owner_node = $2, owner_inc = $3, epoch = d.epoch + 1,
           changed_at = now()
         WHERE d.device_id = $1 AND d.epoch = $4
           AND (d.owner_node IS NULL OR NOT EXISTS (
             SELECT 1 FROM wuts_node n WHERE n.node_id = d.owner_node
               AND n.incarnation = d.owner_inc
               AND n.expires_at > now() - make_interval(secs => $5)))
         RETURNING d.epoch",
    )
    .bind(device_sql(device)?)
    .bind(node.as_str())
    .bind(incarnation.0)
    .bind(epoch_sql(seen)?)
    .bind(secs(grace))
    .fetch_optional(conn)
    .await
    .map_err(backend("claim a device"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let epoch = epoch_from(row.try_get("epoch").map_err(backend("read a claim"))?)?;
    Ok(Some(Fence {
        device,
        node: node.clone(),
        incarnation,
        epoch,
    }))
}

/// Hands the device from its current owner (`fence`) to the live node `to`, or releases it
/// (`None`): one compare-and-set on the fence's epoch. Returns the new epoch, or `None` when
/// the fence is stale or the target is not live.
pub async fn hand_off(
    conn: &mut PgConnection,
    fence: &Fence,
    to: Option<&NodeId>,
) -> Result<Option<Epoch>, PgError> {
    let row = match to {
        Some(target) => sqlx::query(
            "UPDATE wuts_device_owner d SET owner_node = n.node_id, owner_inc = n.incarnation,
               epoch = d.epoch + 1, changed_at = now()
             FROM wuts_node n
             WHERE n.node_id = $4 AND n.expires_at > now() AND n.state = 'active'
               AND d.device_id = $1 AND d.owner_node = $2 AND d.owner_inc = $3 AND d.epoch = $5
             RETURNING d.epoch",
        )
        .bind(device_sql(fence.device)?)
        .bind(fence.node.as_str())
        .bind(fence.incarnation.0)
        .bind(target.as_str())
        .bind(epoch_sql(fence.epoch)?),
        None => sqlx::query(
            "UPDATE wuts_device_owner d SET owner_node = NULL, owner_inc = NULL,
               epoch = d.epoch + 1, changed_at = now()
             WHERE d.device_id = $1 AND d.owner_node = $2 AND d.owner_inc = $3 AND d.epoch = $4
             RETURNING d.epoch",
        )
        .bind(device_sql(fence.device)?)
        .bind(fence.node.as_str())
        .bind(fence.incarnation.0)
        .bind(epoch_sql(fence.epoch)?),
    }
    .fetch_optional(conn)
    .await
    .map_err(backend("hand a device off"))?;
    row.map(|row| epoch_from(row.try_get("epoch").map_err(backend("read a hand-off"))?))
        .transpose()
}

/// The devices this incarnation owns, with their epochs: the reconciliation after every
/// renewal drops any local device missing here or whose epoch moved.
pub async fn owned(
    conn: &mut PgConnection,
    node: &NodeId,
    incarnation: Incarnation,
) -> Result<Vec<(DeviceId, Epoch)>, PgError> {
    let rows = sqlx::query(
        "SELECT device_id, epoch FROM wuts_device_owner
         WHERE owner_node = $1 AND owner_inc = $2 ORDER BY device_id",
    )
    .bind(node.as_str())
    .bind(incarnation.0)
    .fetch_all(conn)
    .await
    .map_err(backend("list owned devices"))?;
    pairs(rows)
}

/// Where `device` lives: its owner and, when that owner's row is live, its address.
pub async fn locate(
    conn: &mut PgConnection,
    device: DeviceId,
) -> Result<Option<Location>, PgError> {
    let row = sqlx::query(
        "SELECT d.owner_node, d.epoch, n.rpc_addr FROM wuts_device_owner d
         LEFT JOIN wuts_node n ON n.node_id = d.owner_node AND n.incarnation = d.owner_inc
           AND n.expires_at > now()
         WHERE d.device_id = $1",
    )
    .bind(device_sql(device)?)
    .fetch_optional(conn)
    .await
    .map_err(backend("locate a device"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let owner: Option<String> = row
        .try_get("owner_node")
        .map_err(backend("read a location"))?;
    Ok(Some(Location {
        node: owner.map(node_id).transpose()?,
        rpc_addr: row
            .try_get("rpc_addr")
            .map_err(backend("read a location"))?,
        epoch: epoch_from(row.try_get("epoch").map_err(backend("read a location"))?)?,
    }))
}

fn pairs(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<(DeviceId, Epoch)>, PgError> {
    rows.into_iter()
        .map(|row| {
            let device: i64 = row.try_get("device_id").map_err(backend("read a device"))?;
            let device =
                u64::try_from(device).map_err(|_| PgError::Corrupt("a negative device id"))?;
            let epoch = epoch_from(row.try_get("epoch").map_err(backend("read a device"))?)?;
            Ok((DeviceId::new(device), epoch))
        })
        .collect()
}
