//! Every cluster statement against a real PostgreSQL, including the three fencing races of
//! the design study (Appendix A), reproduced with two connections. Expiry is simulated by
//! moving a node row's `expires_at` back on the database clock, never by sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_support;

use std::time::Duration;

use pg_support::TempPostgres;
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgListener};
use wuts_store::DeviceId;
use wuts_store::pg::{
    self, Epoch, Fence, FencedTx, Incarnation, NodeId, NodeState, PgError, Tree, Write,
};

const TTL: Duration = Duration::from_secs(15);
const GRACE: Duration = Duration::from_secs(5);
const DEVICE: DeviceId = DeviceId::new(7);

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap()
}

/// A fresh database with the schema, and a connection to it.
async fn fresh(pg: &TempPostgres, name: &str) -> (String, PgConnection) {
    let url = pg.database(name);
    let mut conn = connect(&url).await;
    pg::migrate(&mut conn).await.unwrap();
    (url, conn)
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn inc() -> Incarnation {
    Incarnation(uuid::Uuid::new_v4())
}

/// Moves a node's expiry `secs` into the past, as if it had stopped renewing that long ago.
async fn expire(conn: &mut PgConnection, node: &NodeId, secs: f64) {
    sqlx::query(
        "UPDATE wuts_node SET expires_at = now() - make_interval(secs => $2) WHERE node_id = $1",
    )
    .bind(node.as_str())
    .bind(secs)
    .execute(conn)
    .await
    .unwrap();
}

fn put(key: &str, value: &str) -> Write {
    Write::Put {
        tree: Tree(1),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

/// Waits until some backend of this database is blocked on a lock (the race is in place).
async fn someone_waits_on_a_lock(conn: &mut PgConnection) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nobody blocked on the owner row");
}

/// Node `name` joins and claims `DEVICE`.
async fn owner(conn: &mut PgConnection, name: &str) -> Fence {
    let n = node(name);
    let i = inc();
    pg::join(
        conn,
        &n,
        i,
        &format!("127.0.0.1:7{}", name.len()),
        TTL,
        GRACE,
    )
    .await
    .unwrap();
    pg::register_device(conn, DEVICE).await.unwrap();
    let seen = pg::locate(conn, DEVICE).await.unwrap().unwrap().epoch;
    pg::claim(conn, DEVICE, &n, i, seen, GRACE)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(pg) = TempPostgres::start("migrations_apply_once_and_a_newer_schema_is_refused")
    else {
        return;
    };
    let url = pg.database("m");
    // Two nodes starting together: the advisory lock lets one migrate, the other finds it done.
    let (mut a, mut b) = (connect(&url).await, connect(&url).await);
    let (x, y) = tokio::join!(pg::migrate(&mut a), pg::migrate(&mut b));
    let mut found = [x.unwrap(), y.unwrap()];
    found.sort();
    assert_eq!(found, [0, pg::SCHEMA_VERSION]);
    assert_eq!(pg::migrate(&mut a).await.unwrap(), pg::SCHEMA_VERSION);
    sqlx::query("INSERT INTO wuts_schema VALUES (99)")
        .execute(&mut a)
        .await
        .unwrap();
    assert!(matches!(
        pg::migrate(&mut a).await,
        Err(PgError::SchemaTooNew { found: 99, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_belongs_to_one_live_process() {
    let Some(pg) = TempPostgres::start("a_node_id_belongs_to_one_live_process") else {
        return;
    };
    let (_, mut db) = fresh(&pg, "n").await;
    let n1 = node("n1");
    let (first, second) = (inc(), inc());
    pg::join(&mut db, &n1, first, "127.0.0.2:7101", TTL, GRACE)
        .await
        .unwrap();
    // Rejoining as the same incarnation is a renewal; a second live process is refused.
    pg::join(&mut db, &n1, first, "127.0.0.2:7101", TTL, GRACE)
        .await
        .unwrap();
    assert!(matches!(
        pg::join(&mut db, &n1, second, "127.0.0.2:7101", TTL, GRACE).await,
        Err(PgError::NodeIdTaken(_))
    ));
    assert!(pg::renew(&mut db, &n1, first, TTL).await.unwrap());
    // Expired, but within the grace: still refused.
    expire(&mut db, &n1, 1.0).await;
    assert!(
        pg::join(&mut db, &n1, second, "x", TTL, GRACE)
            .await
            .is_err()
    );
    assert!(
        pg::nodes(&mut db).await.unwrap().is_empty(),
        "an expired row is not live"
    );
    // Past expiry + grace: the new process takes the id; the old one's renewal finds no row.
    expire(&mut db, &n1, 6.0).await;
    pg::join(&mut db, &n1, second, "127.0.0.2:7101", TTL, GRACE)
        .await
        .unwrap();
    assert!(!pg::renew(&mut db, &n1, first, TTL).await.unwrap());
    assert!(pg::renew(&mut db, &n1, second, TTL).await.unwrap());
    // The weight is set by the live incarnation only (0: it takes no devices).
    assert!(pg::set_weight(&mut db, &n1, second, 0).await.unwrap());
    assert!(!pg::set_weight(&mut db, &n1, first, 7).await.unwrap());
    assert_eq!(pg::nodes(&mut db).await.unwrap()[0].weight, 0);

    // Restart in place: the leaving process marks its row; the next one joins at once, and
    // the old incarnation cannot renew any more.
    let third = inc();
    assert!(
        pg::mark(
            &mut db,
            &n1,
            second,
            NodeState::Restarting,
            Duration::from_secs(60)
        )
        .await
        .unwrap()
    );
    assert!(!pg::renew(&mut db, &n1, second, TTL).await.unwrap());
    pg::join(&mut db, &n1, third, "127.0.0.2:7101", TTL, GRACE)
        .await
        .unwrap();
    let live = pg::nodes(&mut db).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].state, NodeState::Active);
    assert!(!pg::renew(&mut db, &n1, second, TTL).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_compare_and_set_and_respect_the_grace() {
    let Some(pg) = TempPostgres::start("claims_are_compare_and_set_and_respect_the_grace") else {
        return;
    };
    let (url, mut db) = fresh(&pg, "c").await;
    let (n1, n2) = (node("n1"), node("n2"));
    let (i1, i2) = (inc(), inc());
    pg::join(&mut db, &n1, i1, "a", TTL, GRACE).await.unwrap();
    pg::join(&mut db, &n2, i2, "b", TTL, GRACE).await.unwrap();
    pg::register_device(&mut db, DEVICE).await.unwrap();
    pg::register_device(&mut db, DEVICE).await.unwrap(); // idempotent
    assert_eq!(
        pg::orphans(&mut db, GRACE, 10).await.unwrap(),
        [(DEVICE, Epoch(0))]
    );

    // Two nodes claim the same orphan at once: exactly one wins.
    let (mut a, mut b) = (connect(&url).await, connect(&url).await);
    let (x, y) = tokio::join!(
        pg::claim(&mut a, DEVICE, &n1, i1, Epoch(0), GRACE),
        pg::claim(&mut b, DEVICE, &n2, i2, Epoch(0), GRACE)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x.is_some() != y.is_some(), "{x:?} {y:?}");
    let won = x.or(y).unwrap();
    assert_eq!(won.epoch, Epoch(1));
    let (loser, loser_inc) = if won.node == n1 { (&n2, i2) } else { (&n1, i1) };
    assert!(pg::orphans(&mut db, GRACE, 10).await.unwrap().is_empty());

    // The owner is live: no claim, whatever epoch the claimer saw.
    assert!(
        pg::claim(&mut db, DEVICE, loser, loser_inc, Epoch(1), GRACE)
            .await
            .unwrap()
            .is_none()
    );
    // Expired within the grace (lock-delay): still no claim, and orphans in about 3 s.
    expire(&mut db, &won.node, 2.0).await;
    let left = pg::next_orphaning(&mut db, GRACE).await.unwrap().unwrap();
    assert!(
        left > Duration::from_secs(2) && left <= Duration::from_secs(3),
        "{left:?}"
    );
    assert!(
        pg::claim(&mut db, DEVICE, loser, loser_inc, Epoch(1), GRACE)
            .await
            .unwrap()
            .is_none()
    );
    // Past the grace: an orphan, claimed at the next epoch; a stale `seen` loses.
    expire(&mut db, &won.node, 6.0).await;
    assert_eq!(
        pg::orphans(&mut db, GRACE, 10).await.unwrap(),
        [(DEVICE, Epoch(1))]
    );
    assert!(
        pg::claim(&mut db, DEVICE, loser, loser_inc, Epoch(0), GRACE)
            .await
            .unwrap()
            .is_none()
    );
    let taken = pg::claim(&mut db, DEVICE, loser, loser_inc, Epoch(1), GRACE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.epoch, Epoch(2));
    // The dead owner's reconciliation shows it owns nothing.
    assert!(
        pg::owned(&mut db, &won.node, won.incarnation)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        pg::owned(&mut db, loser, loser_inc).await.unwrap(),
        [(DEVICE, Epoch(2))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_off_moves_the_device_and_bumps_the_epoch() {
    let Some(pg) = TempPostgres::start("hand_off_moves_the_device_and_bumps_the_epoch") else {
        return;
    };
    let (_, mut db) = fresh(&pg, "h").await;
    let a = owner(&mut db, "n1").await;
    let (n2, i2) = (node("n2"), inc());
    // A target that is not live is refused.
    assert!(
        pg::hand_off(&mut db, &a, Some(&n2))
            .await
            .unwrap()
            .is_none()
    );
    pg::join(&mut db, &n2, i2, "127.0.0.3:7101", TTL, GRACE)
        .await
        .unwrap();
    assert_eq!(
        pg::hand_off(&mut db, &a, Some(&n2)).await.unwrap(),
        Some(Epoch(2))
    );
    let at = pg::locate(&mut db, DEVICE).await.unwrap().unwrap();
    assert_eq!(at.node, Some(n2.clone()));
    assert_eq!(at.rpc_addr.as_deref(), Some("127.0.0.3:7101"));
    assert_eq!(at.epoch, Epoch(2));
    // The old fence is stale: a second hand-off and any write fail.
    assert!(pg::hand_off(&mut db, &a, None).await.unwrap().is_none());
    assert!(matches!(
        pg::write_batch(&mut db, &a, &[put("k", "old")]).await,
        Err(PgError::Fenced {
            epoch: Epoch(1),
            ..
        })
    ));
    // The new owner releases it: unowned, no address, an orphan at epoch 3.
    let b = Fence {
        device: DEVICE,
        node: n2.clone(),
        incarnation: i2,
        epoch: Epoch(2),
    };
    assert_eq!(
        pg::hand_off(&mut db, &b, None).await.unwrap(),
        Some(Epoch(3))
    );
    let at = pg::locate(&mut db, DEVICE).await.unwrap().unwrap();
    assert_eq!((at.node, at.rpc_addr), (None, None));
    assert_eq!(
        pg::orphans(&mut db, GRACE, 10).await.unwrap(),
        [(DEVICE, Epoch(3))]
    );
    assert_eq!(pg::locate(&mut db, DeviceId::new(99)).await.unwrap(), None);
}

/// Race case 1: a takeover that starts while a writer's fenced transaction is open waits for
/// the writer to commit, and then bumps the epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_an_open_fenced_write() {
    let Some(pg) = TempPostgres::start("a_takeover_waits_for_an_open_fenced_write") else {
        return;
    };
    let (url, mut db) = fresh(&pg, "r1").await;
    let a = owner(&mut db, "n1").await;
    let (n2, i2) = (node("n2"), inc());
    pg::join(&mut db, &n2, i2, "b", TTL, GRACE).await.unwrap();

    let mut writer_conn = connect(&url).await;
    let mut writer = FencedTx::begin(&mut writer_conn, &a).await.unwrap();
    writer.apply(&put("k", "from epoch 1")).await.unwrap();
    let takeover = {
        let (url, a) = (url.clone(), a.clone());
        tokio::spawn(async move {
            let mut conn = connect(&url).await;
            pg::hand_off(&mut conn, &a, Some(&node("n2")))
                .await
                .unwrap()
        })
    };
    someone_waits_on_a_lock(&mut db).await;
    assert!(!takeover.is_finished());
    writer.commit().await.unwrap();
    assert_eq!(takeover.await.unwrap(), Some(Epoch(2)));
    let (value, epoch) = pg::get(&mut db, DEVICE, Tree(1), b"k")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((value.as_slice(), epoch), (&b"from epoch 1"[..], Epoch(1)));
}

/// Race case 2: a stale writer that starts while a takeover is uncommitted blocks, then
/// re-checks the row's newest version and writes nothing. Case 3: after the takeover, the
/// stale write is fenced and the new owner's write lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_writer_blocked_by_a_takeover_writes_nothing() {
    let Some(pg) = TempPostgres::start("a_stale_writer_blocked_by_a_takeover_writes_nothing")
    else {
        return;
    };
    let (url, mut db) = fresh(&pg, "r2").await;
    let a = owner(&mut db, "n1").await;
    let (n2, i2) = (node("n2"), inc());
    pg::join(&mut db, &n2, i2, "b", TTL, GRACE).await.unwrap();

    let mut takeover_conn = connect(&url).await;
    let mut takeover = takeover_conn.begin().await.unwrap();
    assert_eq!(
        pg::hand_off(&mut takeover, &a, Some(&n2)).await.unwrap(),
        Some(Epoch(2))
    );
    let stale = {
        let (url, a) = (url.clone(), a.clone());
        tokio::spawn(async move {
            let mut conn = connect(&url).await;
            pg::write_batch(&mut conn, &a, &[put("k", "stale")]).await
        })
    };
    someone_waits_on_a_lock(&mut db).await;
    takeover.commit().await.unwrap();
    assert!(matches!(
        stale.await.unwrap(),
        Err(PgError::Fenced {
            epoch: Epoch(1),
            ..
        })
    ));
    assert_eq!(pg::get(&mut db, DEVICE, Tree(1), b"k").await.unwrap(), None);

    // Case 3.
    assert!(
        pg::write_batch(&mut db, &a, &[put("k", "late")])
            .await
            .is_err()
    );
    let b = Fence {
        device: DEVICE,
        node: n2,
        incarnation: i2,
        epoch: Epoch(2),
    };
    pg::write_batch(&mut db, &b, &[put("k", "new owner"), put("j", "too")])
        .await
        .unwrap();
    let (value, epoch) = pg::get(&mut db, DEVICE, Tree(1), b"k")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((value.as_slice(), epoch), (&b"new owner"[..], Epoch(2)));
    pg::write_batch(
        &mut db,
        &b,
        &[Write::Delete {
            tree: Tree(1),
            key: b"j".to_vec(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(pg::get(&mut db, DEVICE, Tree(1), b"j").await.unwrap(), None);
}

/// Owner changes are announced on `wuts_owner` when they commit, never when rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_changes_notify_on_commit_only() {
    let Some(pg) = TempPostgres::start("owner_changes_notify_on_commit_only") else {
        return;
    };
    let (url, mut db) = fresh(&pg, "ntf").await;
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen("wuts_owner").await.unwrap();
    let (n1, i1) = (node("n1"), inc());
    pg::join(&mut db, &n1, i1, "a", TTL, GRACE).await.unwrap();
    pg::register_device(&mut db, DEVICE).await.unwrap();
    {
        let mut rolled_back = db.begin().await.unwrap();
        pg::claim(&mut rolled_back, DEVICE, &n1, i1, Epoch(0), GRACE)
            .await
            .unwrap()
            .unwrap();
        rolled_back.rollback().await.unwrap();
    }
    let fence = pg::claim(&mut db, DEVICE, &n1, i1, Epoch(0), GRACE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fence.epoch, Epoch(1));
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.payload(), "7 1 n1");
}

#[test]
fn node_ids_are_checked() {
    assert!(NodeId::new("n1.eu-west_2").is_ok());
    for bad in ["", "a b", "n/1", &"x".repeat(65)] {
        assert!(
            matches!(NodeId::new(bad), Err(PgError::InvalidNodeId)),
            "{bad:?}"
        );
    }
}
