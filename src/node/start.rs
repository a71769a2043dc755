//! Starting a cluster node: the shared stores on PostgreSQL, then the lease, the claimer and
//! the follower that runs the devices this node owns.

use std::sync::Arc;
use std::time::Duration;

use wuts_store::pg::{
    self, Bridge, DEFAULT_CALL_TIMEOUT, Fence, Fences, Incarnation, NodeId, NodeState, PgError,
    PgGatewayStore, PgPool, PgPoolOptions, PgStore,
};

use super::claimer::{ClaimerHandle, start_claimer};
use super::follow::{FollowerParts, Moves, start_follower};
use super::lease::{LeaseError, LeaseHandle, LeaseStatus, NodeIdentity, start_lease};
use super::locate::{PgLocator, start_publisher};
use crate::client::Registry;
use crate::cluster::forward::ClusterSecret;
use crate::cluster::{Candidate, LeaseTimings, place};

/// Connections the synchronous store calls may hold at once.
const STORE_CONNECTIONS: u32 = 16;
/// Connections of the lease, claimer and follower tasks.
const TASK_CONNECTIONS: u32 = 4;
/// How long a node stopping alone keeps its devices for a restart in place.
pub const RESTART_KEEP: Duration = Duration::from_secs(60);
/// Claims per second after a failover: devices log in again at this pace, not as a storm
/// (and at most `DEFAULT_CONNECT_CONCURRENCY` connect at once). 200 a second moves the 1,000
/// devices of a dead node onto two survivors in 2.5 s.
const CLAIM_PACE: u32 = 200;

/// The stores of a node, opened but not yet serving.
pub struct ClusterStores {
    /// The device store, writes fenced by this node's epochs.
    pub devices: Arc<PgStore>,
    /// Tenants, users, tokens, idempotency records, events: shared by every node.
    pub gateway: Arc<PgGatewayStore>,
    me: NodeIdentity,
    fences: Arc<Fences>,
    pool: PgPool,
    bridge: Arc<Bridge>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// PostgreSQL could not be reached or refused.
    #[error("cluster database: {0}")]
    Database(#[from] PgError),
    /// The lease could not be taken (the node id is held by another live process).
    #[error("cluster lease: {0}")]
    Lease(#[from] LeaseError),
}

/// Connects to the cluster database (migrating it) as `node`, whose forwarding address is
/// `rpc_addr`. Nothing is claimed or served yet.
pub async fn open(
    url: &str,
    node: NodeId,
    rpc_addr: String,
    weight: u32,
) -> Result<ClusterStores, NodeError> {
    let owned_url = url.to_owned();
    // The bridge blocks while it connects and migrates: off the async workers.
    let bridge = tokio::task::spawn_blocking(move || {
        Bridge::connect(&owned_url, STORE_CONNECTIONS, DEFAULT_CALL_TIMEOUT)
    })
    .await
    .map_err(|_| PgError::Stopped)??;
    let bridge = Arc::new(bridge);
    let pool = PgPoolOptions::new()
        .max_connections(TASK_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| PgError::Backend {
            op: "connect to the database",
            source,
        })?;
    let me = NodeIdentity {
        node,
        incarnation: Incarnation(uuid::Uuid::new_v4()),
        rpc_addr,
        weight,
    };
    let fences = Arc::new(Fences::default());
    let devices = Arc::new(PgStore::new(
        bridge.clone(),
        me.node.clone(),
        me.incarnation,
        fences.clone(),
    ));
    Ok(ClusterStores {
        devices,
        gateway: Arc::new(PgGatewayStore::new(bridge.clone())),
        me,
        fences,
        pool,
        bridge,
    })
}

/// A serving node's tasks.
pub struct ClusterNode {
    me: NodeIdentity,
    pool: PgPool,
    lease: LeaseHandle,
    claimer: ClaimerHandle,
    follower: tokio::task::JoinHandle<()>,
    publisher: tokio::task::JoinHandle<()>,
    secret: Arc<ClusterSecret>,
    moves: Arc<Moves>,
}

impl ClusterStores {
    /// The fences this node's writes (and, in debug builds, its logins) carry.
    pub fn fences(&self) -> Arc<Fences> {
        self.fences.clone()
    }

    /// Joins the cluster (fails at once if the node id is held by a live process) and starts
    /// claiming and running devices on `registry`.
    pub async fn start(
        self,
        registry: Registry,
        timings: LeaseTimings,
    ) -> Result<ClusterNode, NodeError> {
        let secret = {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(|source| PgError::Backend {
                    op: "connect to the database",
                    source,
                })?;
            let fresh: [u8; 32] = rand::random();
            pg::cluster_secret(&mut conn, &fresh).await?
        };
        let secret = Arc::new(
            ClusterSecret::new(secret)
                .map_err(|_| PgError::Corrupt("a cluster secret shorter than 32 bytes"))?,
        );
        registry.set_locator(Arc::new(PgLocator::new(
            self.pool.clone(),
            self.bridge.clone(),
            self.me.clone(),
            timings,
        )));
        let lease = start_lease(
            self.pool.clone(),
            self.me.clone(),
            timings,
            self.fences.clone(),
        )
        .await?;
        let claimer = start_claimer(
            self.pool.clone(),
            self.me.clone(),
            lease.status(),
            timings,
            CLAIM_PACE,
        );
        let moves = Arc::new(Moves::default());
        let follower = start_follower(
            FollowerParts {
                pool: self.pool.clone(),
                me: self.me.clone(),
                fences: self.fences.clone(),
                registry: registry.clone(),
                rebalance_every: timings.renew,
                moves: moves.clone(),
            },
            lease.status(),
            claimer.owned(),
        );
        let publisher = start_publisher(self.pool.clone(), self.fences, registry);
        Ok(ClusterNode {
            me: self.me,
            pool: self.pool,
            lease,
            claimer,
            follower,
            publisher,
            secret,
            moves,
        })
    }
}

impl ClusterNode {
    /// The lease's status (for `/readyz` and metrics).
    pub fn status(&self) -> tokio::sync::watch::Receiver<LeaseStatus> {
        self.lease.status()
    }

    /// Devices started here and handed away, for `/metrics`.
    pub fn moves(&self) -> Arc<Moves> {
        self.moves.clone()
    }

    /// The secret forwarded calls are signed with.
    pub fn secret(&self) -> Arc<ClusterSecret> {
        self.secret.clone()
    }

    /// Leaves the cluster after the devices were shut down (SIGTERM), without a failover
    /// wait for anyone: with other active nodes, every device is handed to its rendezvous
    /// target among them (they start it on their next pass) and the node row is deleted;
    /// alone, the node is marked restarting for [`RESTART_KEEP`], so the same node id started
    /// again takes its devices back at once (restart in place).
    pub async fn stop(self) {
        self.follower.abort();
        self.publisher.abort();
        let ClusterNode {
            me,
            pool,
            lease,
            claimer,
            ..
        } = self;
        claimer.stop();
        match hand_over(&pool, &me).await {
            Ok(handed) => tracing::info!(node = %me.node, handed, "left the cluster"),
            Err(error) => {
                tracing::warn!(%error, "leaving the cluster; devices move after the lease")
            }
        }
        lease.stop();
    }
}

/// The hand-over of [`ClusterNode::stop`]; returns how many devices were handed off.
async fn hand_over(pool: &PgPool, me: &NodeIdentity) -> Result<usize, PgError> {
    let mut conn = pool.acquire().await.map_err(|source| PgError::Backend {
        op: "connect to leave the cluster",
        source,
    })?;
    let nodes = pg::nodes(&mut conn).await?;
    let others: Vec<Candidate<'_>> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Active && n.node != me.node)
        .map(|n| Candidate {
            node: n.node.as_str(),
            weight: n.weight,
        })
        .collect();
    if others.is_empty() {
        pg::mark(
            &mut conn,
            &me.node,
            me.incarnation,
            NodeState::Restarting,
            RESTART_KEEP,
        )
        .await?;
        tracing::info!(node = %me.node, "alone: devices kept for a restart in place");
        return Ok(0);
    }
    pg::mark(
        &mut conn,
        &me.node,
        me.incarnation,
        NodeState::Draining,
        Duration::ZERO,
    )
    .await?;
    let mut handed = 0;
    for (device, epoch) in pg::owned(&mut conn, &me.node, me.incarnation).await? {
        let Some(target) = place(&device.get().to_string(), &others) else {
            continue;
        };
        let fence = Fence {
            device,
            node: me.node.clone(),
            incarnation: me.incarnation,
            epoch,
        };
        let target = NodeId::new(target)?;
        if pg::hand_off(&mut conn, &fence, Some(&target))
            .await?
            .is_some()
        {
            handed += 1;
        }
    }
    pg::leave(&mut conn, &me.node, me.incarnation).await?;
    Ok(handed)
}
