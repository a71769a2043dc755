//! Cluster mode's tokio edge: the tasks that carry out what [`crate::cluster`] decides,
//! against the cluster database (`wuts_store::pg`).
//!
//! - [`lease`]: keeps this node's lease (join, renew, self-fence, reconcile) and publishes
//!   whether the node may serve and which devices it owns.

pub mod lease;

pub use lease::{LeaseError, LeaseHandle, LeaseStatus, NodeIdentity, start_lease};
