//! `wuts store migrate`: a sled deployment moved into a cluster database, offline, losing
//! nothing: devices with their keys, pairings, pre-keys and metadata, tenants, users, token
//! hashes, device slots, idempotency records, events with their numbers, owed deliveries,
//! delivery records and webhook configurations.
//!
//! The sled store is read into a [`Snapshot`] (raw records, so nothing is re-encoded), then
//! written into PostgreSQL in one transaction: all of it or nothing. An existing cluster is
//! never merged into: a database that already holds devices or users is refused.

use crate::error::Error;
use crate::gateway::outbox::{PendingDelivery, WebhookScope};
use crate::gateway::{GatewayDevice, StoredResponse, Tenant, User, UserId};
use crate::pg::{Bridge, PgError};
use crate::sled::SledStore;

/// Everything a store holds, as records.
#[derive(Default)]
pub(crate) struct Snapshot {
    /// Device records: device id, tree number (as in `wuts_kv`), key without the device
    /// prefix, record bytes.
    pub(crate) kv: Vec<(u64, i16, Vec<u8>, Vec<u8>)>,
    /// Every device (those with keys).
    pub(crate) devices: Vec<u64>,
    /// The highest device id ever handed out.
    pub(crate) last_device_id: u64,
    pub(crate) admin: Option<[u8; 32]>,
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) users: Vec<User>,
    pub(crate) gateway_devices: Vec<GatewayDevice>,
    /// Idempotency records: user, key text, record.
    pub(crate) responses: Vec<(UserId, String, StoredResponse)>,
    /// Each user's newest event number.
    pub(crate) event_seqs: Vec<(UserId, u64)>,
    pub(crate) events: Vec<(UserId, u64, Vec<u8>)>,
    pub(crate) pending: Vec<PendingDelivery>,
    pub(crate) deliveries: Vec<(UserId, u64, Vec<u8>)>,
    pub(crate) webhooks: Vec<(UserId, WebhookScope, Vec<u8>)>,
    /// Signed-in console browsers (so operators stay signed in across the move).
    pub(crate) console_sessions: Vec<crate::gateway::ConsoleSession>,
}

/// What a migration moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Devices.
    pub devices: usize,
    /// Device records (keys, pairings, pre-keys, metadata).
    pub device_records: usize,
    /// Tenants.
    pub tenants: usize,
    /// Users.
    pub users: usize,
    /// Idempotency records.
    pub idempotency_records: usize,
    /// Events.
    pub events: usize,
    /// Webhook configurations.
    pub webhooks: usize,
}

/// Moves the sled store `from` (opened, so nobody else has it) into the cluster database at
/// `url`, migrating its schema first. Refuses a database that already holds devices or users.
pub fn sled_to_pg(from: &SledStore, url: &str) -> Result<MigrationReport, Error> {
    let snapshot = from.snapshot()?;
    let report = MigrationReport {
        devices: snapshot.devices.len(),
        device_records: snapshot.kv.len(),
        tenants: snapshot.tenants.len(),
        users: snapshot.users.len(),
        idempotency_records: snapshot.responses.len(),
        events: snapshot.events.len(),
        webhooks: snapshot.webhooks.len(),
    };
    // One transaction for everything: as long as a large store takes.
    let bridge = Bridge::connect(url, 1, std::time::Duration::from_secs(3600))?;
    bridge
        .run("import a store", move |pool| async move {
            let mut conn = pool.acquire().await.map_err(|source| PgError::Backend {
                op: "connect to import",
                source,
            })?;
            crate::pg::import(&mut conn, &snapshot).await
        })
        .map_err(Error::from)?;
    Ok(report)
}
