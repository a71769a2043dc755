//! Cluster mode's protocol core: the pure parts of running several WUTS nodes on one
//! PostgreSQL (node heartbeat rows on the database clock; per-device owner rows whose epoch
//! fences every store write).
//!
//! - [`lease`]: the node's lease as a state machine on virtual time: when to renew, the local
//!   deadline that ends before the database's expiry, and when to self-fence.
//! - [`rendezvous`]: weighted rendezvous hashing, which node a device belongs on.
//! - [`forward`]: signing and checking requests forwarded to a device's owner.
//! - [`claim`]: which orphaned devices this node claims now (the target first, the others
//!   after a wait by rank).
//!
//! Sans-IO like `engine`: time and outcomes are inputs; no database, clock or socket here.

#![deny(clippy::disallowed_methods)]

pub mod claim;
pub mod forward;
pub mod lease;
pub mod rendezvous;

pub use claim::ClaimPlanner;

/// The websocket upgrade header in which a debug build's cluster node presents its ownership
/// epoch, so the sandbox's login records can be checked (release builds never send it).
pub const TEST_EPOCH_HEADER: &str = "x-wuts-test-epoch";
pub use lease::{LeaseAction, LeaseKeeper, LeasePhase, LeaseTimings};
pub use rendezvous::{Candidate, place, rank};
