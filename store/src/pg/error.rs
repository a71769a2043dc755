//! The errors of the PostgreSQL backend: typed, with sqlx's error kept as the source.

use crate::model::DeviceId;

use super::{Epoch, NodeId};

/// What went wrong talking to the cluster's database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The write was refused because this node no longer owns the device at this epoch: the
    /// driver must stop the device at once.
    #[error("{device} is no longer owned by this node at epoch {epoch}: the write was fenced")]
    Fenced {
        /// The device.
        device: DeviceId,
        /// The epoch the write carried.
        epoch: Epoch,
    },
    /// Another live process runs under this node id.
    #[error("node id {0} is held by another live process")]
    NodeIdTaken(NodeId),
    /// A node id with characters outside `A-Z a-z 0-9 . _ -`, or empty, or over 64.
    #[error("a node id is 1 to 64 of the characters A-Z a-z 0-9 . _ -")]
    InvalidNodeId,
    /// A device id beyond PostgreSQL's `bigint`.
    #[error("{0} is beyond the range the cluster store keeps")]
    DeviceIdRange(DeviceId),
    /// The database holds a schema from a newer build.
    #[error("the cluster database has schema version {found}; this build knows up to {known}")]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest this build knows.
        known: i32,
    },
    /// A value read back that cannot be what we wrote.
    #[error("the cluster database holds {0}")]
    Corrupt(&'static str),
    /// PostgreSQL did not answer a store call in time (a partition, an overloaded server).
    #[error("PostgreSQL did not answer within {} s (while trying to {op})", .after.as_secs())]
    TimedOut {
        /// What was being done.
        op: &'static str,
        /// How long the call waited.
        after: std::time::Duration,
    },
    /// The store's runtime could not start.
    #[error("the database client could not start its runtime")]
    Runtime {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A migration's target already holds devices or users: a cluster is never merged into.
    #[error("the target database already holds devices or users; migrate into an empty one")]
    NotEmpty,
    /// The store was shut down.
    #[error("the database client has shut down")]
    Stopped,
    /// PostgreSQL failed or could not be reached.
    #[error("PostgreSQL failed to {op}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl PgError {
    /// PostgreSQL could not be reached or did not answer in time (as opposed to refusing a
    /// statement): a retry, or another node, may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::TimedOut { .. } | PgError::Stopped => true,
            PgError::Backend { source, .. } => matches!(
                source,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}

/// Wraps a sqlx error with what was being done.
pub(crate) fn backend(op: &'static str) -> impl FnOnce(sqlx::Error) -> PgError {
    move |source| PgError::Backend { op, source }
}

impl From<PgError> for crate::Error {
    /// A fenced write keeps its meaning (the driver stops the device); anything else is the
    /// backend failing, with PostgreSQL's error as the source.
    fn from(error: PgError) -> Self {
        match error {
            PgError::Fenced { device, .. } => crate::Error::Fenced(device),
            error if error.is_unavailable() => crate::Error::Unavailable {
                operation: "a PostgreSQL store call",
                source: crate::error::BackendError::new(error),
            },
            error => crate::Error::Backend {
                operation: "a PostgreSQL store call",
                source: crate::error::BackendError::new(error),
            },
        }
    }
}
