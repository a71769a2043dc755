//! Cluster mode's tokio edge: the tasks that carry out what [`crate::cluster`] decides,
//! against the cluster database (`wuts_store::pg`).
//!
//! - [`lease`]: keeps this node's lease (join, renew, self-fence, reconcile) and publishes
//!   whether the node may serve and which devices it owns.
//! - [`forward`]: passes a call to the owning node and checks forwarded calls on arrival.
//! - [`claimer`]: claims orphaned devices by rendezvous rank, paced, and publishes the fences
//!   this node holds.
//! - [`follow`]: runs a driver for every device this node owns, and only for those.
//! - [`start`]: opens the shared stores and starts the tasks above.

pub mod claimer;
pub mod follow;
pub mod forward;
pub mod lease;
pub mod locate;
pub mod start;

pub use claimer::{ClaimerHandle, Owned, start_claimer};
pub use lease::{LeaseError, LeaseHandle, LeaseStatus, NodeIdentity, start_lease};
pub use start::{ClusterNode, ClusterStores, NodeError, open};
