//! Three nodes on one real PostgreSQL: every device gets exactly one owner, its rendezvous
//! target; when a node dies (stops renewing), its devices move to their targets among the
//! survivors after the lease expires, and nobody else's devices move.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Connection as _;
use wuts::cluster::{Candidate, LeaseTimings, place};
use wuts::node::{ClaimerHandle, LeaseHandle, NodeIdentity, start_claimer, start_lease};
use wuts_store::DeviceId;
use wuts_store::pg::{self, Incarnation, NodeId, PgConnection, PgPoolOptions};

const TIMINGS: LeaseTimings = LeaseTimings {
    ttl: Duration::from_secs(3),
    renew: Duration::from_millis(400),
    grace: Duration::from_millis(800),
    margin: Duration::from_secs(1),
};
const DEVICES: u64 = 60;

struct Node {
    name: &'static str,
    lease: LeaseHandle,
    claimer: ClaimerHandle,
}

async fn node(url: &str, name: &'static str) -> Node {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect(url)
        .await
        .unwrap();
    let me = NodeIdentity {
        node: NodeId::new(name).unwrap(),
        incarnation: Incarnation(uuid::Uuid::new_v4()),
        rpc_addr: format!("127.0.0.1:{}", 7100 + name.len()),
        weight: 100,
    };
    let lease = start_lease(pool.clone(), me.clone(), TIMINGS, Default::default())
        .await
        .unwrap();
    let claimer = start_claimer(pool, me, lease.status(), TIMINGS, 200);
    Node {
        name,
        lease,
        claimer,
    }
}

/// Who owns what, as the nodes themselves believe; panics on a device held twice.
fn owners(nodes: &[&Node]) -> BTreeMap<u64, &'static str> {
    let mut out = BTreeMap::new();
    for n in nodes {
        for device in n.claimer.owned().borrow().keys() {
            let before = out.insert(device.get(), n.name);
            assert!(
                before.is_none(),
                "device {device} held by {before:?} and {}",
                n.name
            );
        }
    }
    out
}

fn targets(names: &[&'static str]) -> BTreeMap<u64, &'static str> {
    let candidates: Vec<Candidate<'static>> = names
        .iter()
        .map(|node| Candidate { node, weight: 100 })
        .collect();
    (1..=DEVICES)
        .map(|d| (d, place(&d.to_string(), &candidates).unwrap()))
        .collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(40), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_spread_by_rendezvous_and_move_when_their_node_dies() {
    let Some(pg) = pg_support::TempPostgres::start(
        "devices_spread_by_rendezvous_and_move_when_their_node_dies",
    ) else {
        return;
    };
    let url = pg.database("claim");
    let mut db = PgConnection::connect(&url).await.unwrap();
    pg::migrate(&mut db).await.unwrap();
    let n1 = node(&url, "n1").await;
    let n2 = node(&url, "n2").await;
    let n3 = node(&url, "n3").await;
    for d in 1..=DEVICES {
        pg::register_device(&mut db, DeviceId::new(d))
            .await
            .unwrap();
    }

    let all = targets(&["n1", "n2", "n3"]);
    until("every device owned by its target", || {
        owners(&[&n1, &n2, &n3]) == all
    })
    .await;
    let per_node = |name: &str| all.values().filter(|n| **n == name).count();
    assert!(
        (1..DEVICES as usize).contains(&per_node("n1")),
        "n1 owns none or all"
    );

    // n1 dies: its lease and claimer stop (the row stops renewing, as after SIGKILL).
    n1.claimer.stop();
    n1.lease.stop();
    let survivors = targets(&["n2", "n3"]);
    until("n1's devices at their new targets", || {
        owners(&[&n2, &n3]) == survivors
    })
    .await;
    // Only n1's devices moved.
    for (device, owner) in &all {
        if *owner != "n1" {
            assert_eq!(
                survivors[device], *owner,
                "device {device} moved needlessly"
            );
        }
    }
    // Every move bumped the epoch: n1's devices are at epoch 2, the others at 1.
    let n2_inc = n2
        .claimer
        .owned()
        .borrow()
        .values()
        .next()
        .unwrap()
        .incarnation;
    let owned = pg::owned(&mut db, &NodeId::new("n2").unwrap(), n2_inc)
        .await
        .unwrap();
    for (device, epoch) in owned {
        let expected = if all[&device.get()] == "n1" { 2 } else { 1 };
        assert_eq!(epoch.0, expected, "device {device}");
    }
    n2.claimer.stop();
    n3.claimer.stop();
    n2.lease.stop();
    n3.lease.stop();
}
