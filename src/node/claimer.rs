//! The claimer task: while the lease is held, every renew interval it reads which devices this
//! incarnation owns (the database is the authority), which nodes are live, and which devices
//! are orphans; it claims the orphans [`ClaimPlanner`] assigns to it, at most `pace` per
//! second (a failover must not become a storm of WhatsApp logins), and publishes the devices
//! it owns with their fences. Device drivers start for new fences and stop for vanished ones.
//!
//! When the lease stops serving, the published set empties at once: every fence is void
//! until the lease is back and reconciled.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use wuts_store::DeviceId;
use wuts_store::pg::{self, Fence, NodeState, PgError, PgPool};

use super::lease::{LeaseStatus, NodeIdentity};
use crate::cluster::{Candidate, ClaimPlanner, LeaseTimings};

/// The devices this node owns, with the fence each was claimed under.
pub type Owned = BTreeMap<DeviceId, Fence>;

/// How many orphans one pass reads at most.
const ORPHANS_PER_PASS: u32 = 5000;

/// The running claimer.
pub struct ClaimerHandle {
    owned: watch::Receiver<Owned>,
    task: tokio::task::JoinHandle<()>,
}

impl ClaimerHandle {
    /// The owned-devices channel.
    pub fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.clone()
    }

    /// Stops the task.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts claiming for `me` while `lease` says the node serves; `pace` claims per second.
pub fn start_claimer(
    pool: PgPool,
    me: NodeIdentity,
    lease: watch::Receiver<LeaseStatus>,
    timings: LeaseTimings,
    pace: u32,
) -> ClaimerHandle {
    let (tx, owned) = watch::channel(Owned::new());
    let runner = Runner {
        pool,
        me,
        lease,
        timings,
        pace: pace.max(1),
        planner: ClaimPlanner::new(),
        origin: Instant::now(),
        owned: tx,
        wake: None,
    };
    ClaimerHandle {
        owned,
        task: tokio::spawn(runner.run()),
    }
}

struct Runner {
    pool: PgPool,
    me: NodeIdentity,
    lease: watch::Receiver<LeaseStatus>,
    timings: LeaseTimings,
    pace: u32,
    planner: ClaimPlanner,
    origin: Instant,
    owned: watch::Sender<Owned>,
    /// When some node's devices become orphans, if before the next tick: the next pass runs
    /// then, so failover does not wait up to a renew interval more.
    wake: Option<Instant>,
}

impl Runner {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.timings.renew);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.wake.take();
            let orphaning = async move {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                () = orphaning => {}
                changed = self.lease.changed() => {
                    if changed.is_err() {
                        return; // the lease task is gone: nothing may be served
                    }
                }
            }
            if !self.lease.borrow().serving {
                self.owned.send_if_modified(|o| {
                    let had = !o.is_empty();
                    o.clear();
                    had
                });
                continue;
            }
            let pass = tokio::time::timeout(self.timings.renew * 4, self.pass());
            match pass.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(node = %self.me.node, %error, "claim pass failed"),
                Err(_) => tracing::warn!(node = %self.me.node, "claim pass timed out"),
            }
        }
    }

    /// One pass: refresh what we own, then claim what is ours to claim.
    async fn pass(&mut self) -> Result<(), PgError> {
        let mut conn = self.pool.acquire().await.map_err(|e| PgError::Backend {
            op: "connect to claim devices",
            source: e,
        })?;
        let owned = pg::owned(&mut conn, &self.me.node, self.me.incarnation).await?;
        let mut now_owned: Owned = owned
            .into_iter()
            .map(|(device, epoch)| {
                let fence = Fence {
                    device,
                    node: self.me.node.clone(),
                    incarnation: self.me.incarnation,
                    epoch,
                };
                (device, fence)
            })
            .collect();
        self.publish(&now_owned);

        let nodes = pg::nodes(&mut conn).await?;
        let candidates: Vec<Candidate<'_>> = nodes
            .iter()
            .filter(|n| n.state == NodeState::Active)
            .map(|n| Candidate {
                node: n.node.as_str(),
                weight: n.weight,
            })
            .collect();
        let orphans = pg::orphans(&mut conn, self.timings.grace, ORPHANS_PER_PASS).await?;
        let orphans: Vec<(u64, _)> = orphans.into_iter().map(|(d, e)| (d.get(), e)).collect();
        let now = self.origin.elapsed();
        let plan = self.planner.plan(
            now,
            self.me.node.as_str(),
            &candidates,
            &orphans,
            self.timings.renew,
        );
        // Paced against the clock, not by sleeping after each claim: the claims' own round
        // trips count toward the gap, so the pace is the rate actually reached.
        let gap = Duration::from_secs(1) / self.pace;
        let started = tokio::time::Instant::now();
        let mut claims: u32 = 0;
        for (device, seen) in plan {
            if !self.lease.borrow().serving {
                break;
            }
            let device = DeviceId::new(device);
            let claimed = pg::claim(
                &mut conn,
                device,
                &self.me.node,
                self.me.incarnation,
                seen,
                self.timings.grace,
            )
            .await?;
            if let Some(fence) = claimed {
                tracing::info!(node = %self.me.node, %device, epoch = %fence.epoch, "claimed");
                now_owned.insert(device, fence);
                self.publish(&now_owned);
                claims = claims.saturating_add(1);
                tokio::time::sleep_until(started + gap * claims).await;
            }
        }
        // A node whose devices become orphans before the next tick: wake just after. (Zero:
        // some are orphans already, ranked to others; the ticks pace the fallback.)
        if let Some(left) = pg::next_orphaning(&mut conn, self.timings.grace).await?
            && !left.is_zero()
            && left < self.timings.renew
        {
            self.wake = Some(Instant::now() + left + Duration::from_millis(20));
        }
        Ok(())
    }

    fn publish(&self, owned: &Owned) {
        self.owned.send_if_modified(|o| {
            let changed = o != owned;
            if changed {
                o.clone_from(owned);
            }
            changed
        });
    }
}
