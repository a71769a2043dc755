//! Cluster mode's shared engine: PostgreSQL. Node heartbeats, per-device ownership with an
//! epoch as the fencing token, and store writes fenced by that epoch in the same transaction.
//!
//! Why PostgreSQL and why this shape: WhatsApp lets the newest login of a device win, so two
//! processes that both believe they own a device kick each other off and both write its keys.
//! The store can check a token; the websocket cannot. So every write for a device runs in a
//! transaction that first takes `FOR SHARE` on the device's owner row and checks `(owner,
//! epoch)`; a takeover is an `UPDATE` of that row that bumps the epoch, so PostgreSQL orders it
//! against every in-flight write: once a takeover commits, no write of the old owner can land,
//! and the new owner, reading after its claim, sees every write the old one got accepted.
//! Node liveness uses the database clock (`now()`), never a node's wall clock.
//!
//! Statements take a `&mut PgConnection` so a caller (or a test reproducing a race) decides the
//! transaction they run in. This module is the only code that names sqlx.

mod board;
mod bridge;
pub(crate) mod devices;
mod error;
mod fenced;
mod fences;
mod gateway;
mod import;
mod outbox;
mod ownership;
mod schema;

use std::fmt;

pub use board::{StatusRow, cluster_secret, publish_status, read_status};
pub use bridge::{Bridge, DEFAULT_CALL_TIMEOUT};
pub use devices::PgStore;
pub use error::PgError;
pub use fenced::{FencedTx, Tree, Write, get, write_batch};
pub use fences::Fences;
pub use gateway::PgGatewayStore;
pub(crate) use import::import;
pub use outbox::PgEventStore;
pub use ownership::{
    Claimed, Location, NodeInfo, NodeState, claim, hand_off, join, leave, locate, mark,
    next_orphaning, nodes, orphans, owned, register_device, renew, set_weight,
};
pub use schema::{SCHEMA_VERSION, migrate};
pub use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use crate::model::DeviceId;

/// A node's name in the cluster: 1 to 64 of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    /// Checks and wraps a node id.
    pub fn new(id: impl Into<String>) -> Result<Self, PgError> {
        let id = id.into();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(NodeId(id))
        } else {
            Err(PgError::InvalidNodeId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One process's run of a node: a node id is reused across restarts, an incarnation never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Incarnation(pub uuid::Uuid);

/// The fencing token of a device's ownership: bumped by every claim and hand-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A node's right to act for a device: every store write carries it and is checked against
/// the owner row in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The device.
    pub device: DeviceId,
    /// The owning node.
    pub node: NodeId,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// The epoch it claimed the device at.
    pub epoch: Epoch,
}

/// A device id as PostgreSQL stores it (`bigint`).
fn device_sql(device: DeviceId) -> Result<i64, PgError> {
    i64::try_from(device.get()).map_err(|_| PgError::DeviceIdRange(device))
}

/// An epoch read back from PostgreSQL.
fn epoch_from(value: i64) -> Result<Epoch, PgError> {
    u64::try_from(value)
        .map(Epoch)
        .map_err(|_| PgError::Corrupt("a negative epoch"))
}

fn epoch_sql(epoch: Epoch) -> Result<i64, PgError> {
    i64::try_from(epoch.0).map_err(|_| PgError::Corrupt("an epoch beyond bigint"))
}
