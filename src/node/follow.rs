//! The follower: keeps this node's running device drivers equal to the devices it owns.
//!
//! The claimer publishes what the database says this incarnation owns; the follower gives each
//! of those devices its fence and a running driver, and stops the drivers of devices that are
//! no longer ours. A device created here a moment after the claimer's read is missing from
//! that read, so a running device absent from the published set is checked against the
//! database before it is stopped. When the lease stops serving, every driver stops at once
//! and every fence is dropped (design: self-fence closes every socket).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use wuts_store::DeviceId;
use wuts_store::pg::{self, Epoch, Fence, Fences, NodeId, NodeState, PgError, PgPool};

use super::claimer::Owned;
use super::lease::{LeaseStatus, NodeIdentity};
use crate::client::Registry;
use crate::cluster::{Candidate, place};

/// How many devices this node started running (claims, moves in, restarts in place) and
/// handed to other nodes (rebalancing), for `/metrics`.
#[derive(Debug, Default)]
pub struct Moves {
    /// Devices started here.
    pub adopted: std::sync::atomic::AtomicU64,
    /// Devices handed to their place on another node.
    pub handed_off: std::sync::atomic::AtomicU64,
}

/// What the follower works with.
pub struct FollowerParts {
    /// The node's task pool.
    pub pool: PgPool,
    /// This node.
    pub me: NodeIdentity,
    /// The fences its store writes and logins carry.
    pub fences: Arc<Fences>,
    /// The running devices.
    pub registry: Registry,
    /// How often devices whose place is elsewhere are handed over.
    pub rebalance_every: Duration,
    /// Counts of moves, for `/metrics`.
    pub moves: Arc<Moves>,
}

/// Starts following `owned` while `lease` serves, and every `rebalance_every` hands devices
/// whose rendezvous place is another node over to it (at most [`MOVES_PER_PASS`] at a time).
pub fn start_follower(
    parts: FollowerParts,
    mut lease: watch::Receiver<LeaseStatus>,
    mut owned: watch::Receiver<Owned>,
) -> tokio::task::JoinHandle<()> {
    let FollowerParts {
        pool,
        me,
        fences,
        registry,
        rebalance_every,
        moves,
    } = parts;
    tokio::spawn(async move {
        let mut rebalance = tokio::time::interval(rebalance_every);
        rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rebalance.tick().await;
        // Devices handed off here, at the epoch they left with: the claimer's published set
        // still lists them until its next read, and they must not start again meanwhile.
        let mut moved: HashMap<DeviceId, Epoch> = HashMap::new();
        loop {
            let serving = lease.borrow_and_update().serving;
            if serving {
                let mut published = owned.borrow_and_update().clone();
                moved.retain(|id, epoch| published.get(id).is_some_and(|f| f.epoch == *epoch));
                published.retain(|id, _| !moved.contains_key(id));
                let work = follow(&pool, &me, &published, &fences, &registry, &moves);
                if unless_fenced(&mut lease, work).await.is_none() {
                    continue;
                }
            } else {
                fences.replace([]);
                for id in registry.ids() {
                    registry.release(id).await;
                }
            }
            tokio::select! {
                changed = lease.changed() => if changed.is_err() { break },
                changed = owned.changed() => if changed.is_err() { break },
                _ = rebalance.tick() => {
                    if lease.borrow().serving {
                        let mut published = owned.borrow().clone();
                        published.retain(|id, _| !moved.contains_key(id));
                        let work = rebalance_pass(&pool, &me, &published, &fences, &registry);
                        match unless_fenced(&mut lease, work).await {
                            Some(Ok(gone)) => {
                                moves.handed_off.fetch_add(gone.len() as u64, Ordering::Relaxed);
                                moved.extend(gone.into_iter().map(|f| (f.device, f.epoch)));
                            }
                            Some(Err(error)) => tracing::warn!(%error, "rebalancing failed"),
                            None => {}
                        }
                    }
                }
            }
        }
        // The lease or the claimer is gone: nothing may be served any more.
        fences.replace([]);
        for id in registry.ids() {
            registry.release(id).await;
        }
    })
}

/// Runs `work` unless the lease stops serving first: a follower waiting on an unreachable
/// database must still stop every driver the moment the node self-fences.
async fn unless_fenced<T>(
    lease: &mut watch::Receiver<LeaseStatus>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        _ = lease.wait_for(|s| !s.serving) => None,
    }
}

async fn follow(
    pool: &PgPool,
    me: &NodeIdentity,
    published: &Owned,
    fences: &Fences,
    registry: &Registry,
    moves: &Moves,
) {
    let before: BTreeSet<DeviceId> = registry.ids().into_iter().collect();
    for fence in published.values() {
        fences.grant(fence.clone());
        match registry.adopt(fence.device).await {
            Ok(()) if !before.contains(&fence.device) => {
                moves.adopted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(error) => {
                tracing::error!(device = %fence.device, %error, "an owned device could not start");
            }
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

/// Devices one rebalancing pass moves at most: a new node fills up over a few passes instead
/// of with a storm of logins (each moved device logs in again on its new node).
pub const MOVES_PER_PASS: usize = 16;

/// How long a moving device may take to answer the requests it already sent to WhatsApp
/// before its socket closes: a planned move should give every caller its outcome.
pub const HANDOVER_GRACE: Duration = Duration::from_secs(2);

/// Hands devices whose rendezvous place is another active node over to it: close the
/// socket here first, then move the epoch in one compare-and-set, so two logins of one
/// device never overlap. The new owner starts it on its next pass. Returns the fences moved.
async fn rebalance_pass(
    pool: &PgPool,
    me: &NodeIdentity,
    published: &Owned,
    fences: &Fences,
    registry: &Registry,
) -> Result<Vec<Fence>, PgError> {
    let mut conn = pool.acquire().await.map_err(|source| PgError::Backend {
        op: "connect to rebalance",
        source,
    })?;
    let nodes = pg::nodes(&mut conn).await?;
    let candidates: Vec<Candidate<'_>> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Active)
        .map(|n| Candidate {
            node: n.node.as_str(),
            weight: n.weight,
        })
        .collect();
    let moves: Vec<(&Fence, &str)> = published
        .values()
        .filter_map(|fence| {
            let target = place(&fence.device.get().to_string(), &candidates)?;
            (target != me.node.as_str()).then_some((fence, target))
        })
        .take(MOVES_PER_PASS)
        .collect();
    let mut gone = Vec::new();
    for (fence, target) in moves {
        let target = NodeId::new(target)?;
        registry.hand_over(fence.device, HANDOVER_GRACE).await;
        fences.revoke(fence.device);
        match pg::hand_off(&mut conn, fence, Some(&target)).await {
            Ok(Some(epoch)) => {
                tracing::info!(device = %fence.device, to = %target, %epoch, "moved to its place");
                gone.push(fence.clone());
            }
            outcome => {
                // Not moved (the target went away, or the fence is stale): still ours if the
                // database says so; run it again until the next pass.
                if let Err(error) = outcome {
                    tracing::warn!(%error, device = %fence.device, "moving a device failed");
                }
                if still_ours_at(&mut conn, me, fence).await {
                    fences.grant(fence.clone());
                    if let Err(error) = registry.adopt(fence.device).await {
                        tracing::error!(device = %fence.device, %error, "restarting a device");
                    }
                } else {
                    gone.push(fence.clone());
                }
            }
        }
    }
    Ok(gone)
}

async fn still_ours_at(conn: &mut pg::PgConnection, me: &NodeIdentity, fence: &Fence) -> bool {
    matches!(
        pg::locate(conn, fence.device).await,
        Ok(Some(at)) if at.node.as_ref() == Some(&me.node) && at.epoch == fence.epoch
    )
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
