//! The follower: keeps this node's running device drivers equal to the devices it owns.
//!
//! The claimer publishes what the database says this incarnation owns; the follower gives each
//! of those devices its fence and a running driver, and stops the drivers of devices that are
//! no longer ours. A device created here a moment after the claimer's read is missing from
//! that read, so a running device absent from the published set is checked against the
//! database before it is stopped. When the lease stops serving, every driver stops at once
//! and every fence is dropped (design: self-fence closes every socket).

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use wuts_store::DeviceId;
use wuts_store::pg::{self, Fences, PgPool};

use super::claimer::Owned;
use super::lease::{LeaseStatus, NodeIdentity};
use crate::client::Registry;

/// Starts following `owned` while `lease` serves.
pub fn start_follower(
    pool: PgPool,
    me: NodeIdentity,
    mut lease: watch::Receiver<LeaseStatus>,
    mut owned: watch::Receiver<Owned>,
    fences: Arc<Fences>,
    registry: Registry,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let serving = lease.borrow_and_update().serving;
            if serving {
                let published = owned.borrow_and_update().clone();
                follow(&pool, &me, &published, &fences, &registry).await;
            } else {
                fences.replace([]);
                for id in registry.ids() {
                    registry.release(id).await;
                }
            }
            tokio::select! {
                changed = lease.changed() => if changed.is_err() { break },
                changed = owned.changed() => if changed.is_err() { break },
            }
        }
        // The lease or the claimer is gone: nothing may be served any more.
        fences.replace([]);
        for id in registry.ids() {
            registry.release(id).await;
        }
    })
}

async fn follow(
    pool: &PgPool,
    me: &NodeIdentity,
    published: &Owned,
    fences: &Fences,
    registry: &Registry,
) {
    for fence in published.values() {
        fences.grant(fence.clone());
        if let Err(error) = registry.adopt(fence.device).await {
            tracing::error!(device = %fence.device, %error, "an owned device could not start");
        }
    }
    let running: BTreeSet<DeviceId> = registry.ids().into_iter().collect();
    for id in running.difference(&published.keys().copied().collect()) {
        if !still_ours(pool, me, fences, *id).await {
            tracing::info!(node = %me.node, device = %id, "device no longer owned here: stopping");
            fences.revoke(*id);
            registry.release(*id).await;
        }
    }
}

/// Whether the database still names this incarnation as `id`'s owner at the fence we hold.
/// Unsure (no fence, database unreachable) counts as no: stopping is the safe side.
async fn still_ours(pool: &PgPool, me: &NodeIdentity, fences: &Fences, id: DeviceId) -> bool {
    let Some(fence) = fences.get(id) else {
        return false;
    };
    let Ok(mut conn) = pool.acquire().await else {
        return false;
    };
    match pg::locate(&mut conn, id).await {
        Ok(Some(at)) => at.node.as_ref() == Some(&me.node) && at.epoch == fence.epoch,
        _ => false,
    }
}
