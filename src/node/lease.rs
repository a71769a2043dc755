//! The lease task: runs [`LeaseKeeper`] against PostgreSQL on the tokio clock.
//!
//! The keeper decides; this task only talks to the database and publishes the outcome on a
//! `watch` channel, so device drivers can check [`LeaseStatus::serving`] before every send and
//! stop at once when it turns false. Each database call has its own timeout (the renew
//! interval): a hung connection must count as a failed renewal, not stall the keeper past its
//! deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use wuts_store::DeviceId;
use wuts_store::pg::{self, Epoch, Fences, Incarnation, NodeId, PgError, PgPool};

use crate::cluster::lease::LeasePhase;
use crate::cluster::lease::TimingsError;
use crate::cluster::{LeaseAction, LeaseKeeper, LeaseTimings};

/// Why the lease could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The timings cannot keep a lease safely.
    #[error(transparent)]
    Timings(#[from] TimingsError),
    /// The database refused the join (node id taken) or could not be reached.
    #[error(transparent)]
    Database(#[from] PgError),
}

/// Who this node is in the cluster.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// The node id (stable across restarts).
    pub node: NodeId,
    /// This process's incarnation.
    pub incarnation: Incarnation,
    /// Where other nodes forward requests to it.
    pub rpc_addr: String,
    /// Its share of devices relative to the others (100 by default; 0 takes none, so its
    /// devices move away: how a node is emptied before maintenance).
    pub weight: u32,
}

/// What the lease task publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseStatus {
    /// Whether the node holds its lease and has reconciled: devices may be served.
    pub serving: bool,
    /// The devices this incarnation owns, with their epochs, as of the last reconciliation.
    pub owned: Vec<(DeviceId, Epoch)>,
    /// Self-fences so far.
    pub self_fences: u64,
    /// Renewals that failed (timeouts, connection errors) so far.
    pub failed_renewals: u64,
    /// Renewals that succeeded so far, their total and their last round-trip time in
    /// microseconds (updated without waking watchers: only metrics read them).
    pub renewals: u64,
    /// Sum of the successful renewals' times, µs.
    pub renew_micros_total: u64,
    /// The last successful renewal's time, µs.
    pub renew_micros_last: u64,
}

/// The running lease task.
pub struct LeaseHandle {
    status: watch::Receiver<LeaseStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseHandle {
    /// The status channel.
    pub fn status(&self) -> watch::Receiver<LeaseStatus> {
        self.status.clone()
    }

    /// Stops the task (the row then expires on its own; a drain releases it explicitly).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Joins the cluster and starts keeping the lease. Fails at once if another live process
/// holds this node id, so a misconfigured second node never starts.
pub async fn start_lease(
    pool: PgPool,
    me: NodeIdentity,
    timings: LeaseTimings,
    fences: Arc<Fences>,
) -> Result<LeaseHandle, LeaseError> {
    let origin = Instant::now();
    let mut keeper = LeaseKeeper::new(timings, Duration::ZERO)?;
    // The first renewal is the join, done here so that a taken node id fails the start.
    if keeper.poll(Duration::ZERO) == Some(LeaseAction::Renew) {
        let mut conn = pool.acquire().await.map_err(|e| PgError::Backend {
            op: "connect to join the cluster",
            source: e,
        })?;
        pg::join(
            &mut conn,
            &me.node,
            me.incarnation,
            &me.rpc_addr,
            timings.ttl,
            timings.grace,
        )
        .await?;
        pg::set_weight(&mut conn, &me.node, me.incarnation, me.weight).await?;
        keeper.renewed(origin.elapsed());
    }
    let (tx, status) = watch::channel(LeaseStatus::default());
    let runner = Runner {
        pool,
        me: Arc::new(me),
        keeper,
        origin,
        status: tx,
        fences,
    };
    runner.hold_fences();
    let task = tokio::spawn(runner.run());
    Ok(LeaseHandle { status, task })
}

struct Runner {
    pool: PgPool,
    me: Arc<NodeIdentity>,
    keeper: LeaseKeeper,
    origin: Instant,
    status: watch::Sender<LeaseStatus>,
    /// Told the local deadline, so logins check it themselves.
    fences: Arc<Fences>,
}

enum Renewal {
    Ok,
    Lost,
    Failed,
}

impl Runner {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn run(mut self) {
        // Reconcile once right after the join: a restart in place finds its devices here.
        self.reconcile().await;
        loop {
            while let Some(action) = self.keeper.poll(self.now()) {
                match action {
                    LeaseAction::Renew => match self.timed_renew().await {
                        Renewal::Ok => self.keeper.renewed(self.now()),
                        Renewal::Lost => self.keeper.lost(self.now()),
                        Renewal::Failed => {
                            self.keeper.renew_failed(self.now());
                            self.status.send_modify(|s| s.failed_renewals += 1);
                        }
                    },
                    LeaseAction::SelfFence => {
                        tracing::warn!(node = %self.me.node, "lease deadline passed: self-fencing");
                        self.status.send_modify(|s| {
                            s.serving = false;
                            s.owned.clear();
                            s.self_fences += 1;
                        });
                    }
                    LeaseAction::Reconcile => self.reconcile().await,
                }
                self.publish_serving();
            }
            self.publish_serving();
            let wake = self.keeper.next_wakeup();
            if wake == Duration::MAX {
                // Nothing scheduled can only mean a renewal in flight, which `renew` awaits.
                tokio::time::sleep(self.keeper.timings().renew).await;
            } else {
                tokio::time::sleep_until(self.origin + wake).await;
            }
        }
    }

    /// Tells the fences the local deadline, so logins check it themselves.
    fn hold_fences(&self) {
        let until = match self.keeper.phase() {
            LeasePhase::Held { deadline } => (self.origin + deadline).into_std(),
            LeasePhase::Reconciling { .. } | LeasePhase::Unheld => self.origin.into_std(),
        };
        self.fences.hold_until(Some(until));
    }

    fn publish_serving(&self) {
        self.hold_fences();
        let serving = self.keeper.may_serve(self.now());
        self.status.send_if_modified(|s| {
            let changed = s.serving != serving;
            s.serving = serving;
            changed
        });
    }

    /// [`Runner::renew`], keeping its time for the metrics.
    async fn timed_renew(&self) -> Renewal {
        let started = Instant::now();
        let outcome = self.renew().await;
        if matches!(outcome, Renewal::Ok) {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.status.send_if_modified(|s| {
                s.renewals += 1;
                s.renew_micros_total = s.renew_micros_total.saturating_add(micros);
                s.renew_micros_last = micros;
                false
            });
        }
        outcome
    }

    async fn renew(&self) -> Renewal {
        let timings = self.keeper.timings();
        let attempt = async {
            let mut conn = self.pool.acquire().await.map_err(|e| PgError::Backend {
                op: "connect to renew the lease",
                source: e,
            })?;
            pg::renew(&mut conn, &self.me.node, self.me.incarnation, timings.ttl).await
        };
        // Never wait past the local deadline: the self-fence must not be late because a
        // renewal hangs on an unreachable database.
        let limit = match self.keeper.phase() {
            LeasePhase::Held { deadline } | LeasePhase::Reconciling { deadline } => {
                deadline.saturating_sub(self.now()).min(timings.renew)
            }
            LeasePhase::Unheld => timings.renew,
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(true)) => Renewal::Ok,
            Ok(Ok(false)) => {
                tracing::warn!(node = %self.me.node, "the node row is no longer ours");
                Renewal::Lost
            }
            Ok(Err(error)) => {
                tracing::warn!(node = %self.me.node, %error, "lease renewal failed");
                Renewal::Failed
            }
            Err(_) => {
                tracing::warn!(node = %self.me.node, "lease renewal timed out");
                Renewal::Failed
            }
        }
    }

    /// Reads which devices this incarnation owns; only then may it serve again.
    async fn reconcile(&mut self) {
        let timings = self.keeper.timings();
        let read = async {
            let mut conn = self.pool.acquire().await.map_err(|e| PgError::Backend {
                op: "connect to reconcile",
                source: e,
            })?;
            pg::owned(&mut conn, &self.me.node, self.me.incarnation).await
        };
        match tokio::time::timeout(timings.renew, read).await {
            Ok(Ok(owned)) => {
                self.status.send_modify(|s| s.owned = owned);
                self.keeper.reconciled();
            }
            Ok(Err(error)) => {
                tracing::warn!(node = %self.me.node, %error, "reconciliation failed");
            }
            Err(_) => tracing::warn!(node = %self.me.node, "reconciliation timed out"),
        }
    }
}
