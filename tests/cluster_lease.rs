//! The lease task against a real PostgreSQL behind a fault proxy: the node holds its lease,
//! a second process cannot take its node id, and when the database link is cut the node stops
//! serving *before* the database lets anyone else take its devices; after the cut heals it
//! renews, reconciles (finding the device another node took meanwhile) and serves again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;

#[path = "cluster_support/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use wuts::cluster::LeaseTimings;
use wuts::node::{LeaseError, NodeIdentity, start_lease};
use wuts_store::DeviceId;
use wuts_store::pg::{
    self, Epoch, Fences, Incarnation, NodeId, PgConnection, PgError, PgPoolOptions,
};

const TIMINGS: LeaseTimings = LeaseTimings {
    ttl: Duration::from_secs(4),
    renew: Duration::from_millis(800),
    grace: Duration::from_secs(1),
    margin: Duration::from_millis(1500),
};

async fn wait_for(
    status: &mut tokio::sync::watch::Receiver<wuts::node::LeaseStatus>,
    what: &str,
    ok: impl Fn(&wuts::node::LeaseStatus) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| ok(s)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_node_stops_serving_before_its_devices_can_move() {
    let Some(pg) =
        pg_support::TempPostgres::start("a_cut_node_stops_serving_before_its_devices_can_move")
    else {
        return;
    };
    let url = pg.database("lease");
    let mut db = PgConnection::connect(&url).await.unwrap();
    pg::migrate(&mut db).await.unwrap();
    let upstream: std::net::SocketAddr = url
        .trim_start_matches("postgres://wuts@")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let cut = proxy::FaultProxy::start(upstream).await;
    let via_proxy = url.replace(&upstream.to_string(), &cut.addr().to_string());
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(700))
        .connect(&via_proxy)
        .await
        .unwrap();

    let n1 = NodeId::new("n1").unwrap();
    let me = NodeIdentity {
        node: n1.clone(),
        incarnation: Incarnation(uuid::Uuid::new_v4()),
        rpc_addr: "127.0.0.2:7101".into(),
        weight: 100,
    };
    let fences = Arc::new(Fences::default());
    let lease = start_lease(pool.clone(), me.clone(), TIMINGS, fences.clone())
        .await
        .unwrap();
    let mut status = lease.status();
    wait_for(&mut status, "serving", |s| s.serving).await;

    // A second process under the same node id does not start.
    let twin = NodeIdentity {
        incarnation: Incarnation(uuid::Uuid::new_v4()),
        ..me.clone()
    };
    assert!(matches!(
        start_lease(pool.clone(), twin, TIMINGS, Arc::new(Fences::default())).await,
        Err(LeaseError::Database(PgError::NodeIdTaken(_)))
    ));

    // n1 owns a device.
    let device = DeviceId::new(1);
    pg::register_device(&mut db, device).await.unwrap();
    let fence = pg::claim(
        &mut db,
        device,
        &n1,
        me.incarnation,
        Epoch(0),
        TIMINGS.grace,
    )
    .await
    .unwrap()
    .unwrap();
    fences.grant(fence.clone());
    assert!(fences.live(device).is_some(), "a held lease lets it log in");

    // Cut n1 from the database. It must stop serving while its row is still live, so nobody
    // can have claimed its device yet.
    cut.blackhole();
    wait_for(&mut status, "the self-fence", |s| !s.serving).await;
    let row_live: bool =
        sqlx::query_scalar("SELECT expires_at > now() FROM wuts_node WHERE node_id = 'n1'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(row_live, "the node served past its database expiry");
    assert_eq!(status.borrow().self_fences, 1);
    assert!(
        fences.live(device).is_none(),
        "past the local deadline no login may start"
    );

    // Another node takes the device once n1's row is past expiry + grace.
    let n2 = NodeId::new("n2").unwrap();
    let i2 = Incarnation(uuid::Uuid::new_v4());
    pg::join(
        &mut db,
        &n2,
        i2,
        "127.0.0.3:7101",
        TIMINGS.ttl,
        TIMINGS.grace,
    )
    .await
    .unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(f) = pg::claim(&mut db, device, &n2, i2, fence.epoch, TIMINGS.grace)
                .await
                .unwrap()
            {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(taken.epoch, Epoch(2));
    // n1's late writes are fenced.
    assert!(matches!(
        pg::write_batch(&mut db, &fence, &[]).await,
        Err(PgError::Fenced { .. })
    ));

    // Heal: n1 renews, reconciles (it owns nothing now) and serves again.
    cut.heal();
    wait_for(&mut status, "serving again", |s| s.serving).await;
    let now = status.borrow().clone();
    assert!(now.owned.is_empty(), "{now:?}");
    assert_eq!(now.self_fences, 1);
    assert!(now.failed_renewals >= 1);
    lease.stop();
}
