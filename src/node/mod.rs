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
//!
//! Where this differs from the design study (`scale-out.md` §6), and why:
//! - **Logins check the deadline themselves.** A login needs a fence whose lease deadline,
//!   read from the clock at that moment, has not passed (`Fences::live`). The study's "check
//!   before every send" lived in the lease task, which a resumed process may run only after
//!   its drivers; the chaos test caught a stale login that way.
//! - **Device-store calls end at the deadline.** A driver blocked on an unreachable database
//!   gets its error by the lease deadline (not the 10 s call timeout), so it can close its
//!   socket before the grace ends; the chaos test caught a zombie socket cut by `replaced`.
//! - **Rebalancing** runs every renew interval with a budget of 16 moves, not every 30 s with
//!   5 % a minute: simpler, and a joining node fills in seconds. A moving device first answers
//!   the requests it already sent (up to 2 s) instead of refusing to move while busy.
//! - **Routing reads the owner table per request** (one indexed query, about 0.1 ms) instead of
//!   a cache invalidated by NOTIFY; a forwarded request that finds the device gone answers
//!   `DEVICE_FAILOVER` rather than retrying once. A keyed write whose forwarded exchange broke
//!   before the owner recorded its key is provably unsent and also answers `DEVICE_FAILOVER`.
//! - **Idempotency records are not epoch-tagged**, and an `in_flight` record left by a dead
//!   owner stays `OUTCOME_UNKNOWN` (no reconciliation against the account's groups yet).

pub mod claimer;
pub mod follow;
pub mod forward;
pub mod lease;
pub mod locate;
pub mod start;

pub use claimer::{ClaimerHandle, Owned, start_claimer};
pub use lease::{LeaseError, LeaseHandle, LeaseStatus, NodeIdentity, start_lease};
pub use start::{ClusterNode, ClusterStores, NodeError, open};
