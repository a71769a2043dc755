//! `PgStore` in a cluster: every device write is fenced by the epoch this node holds, so a node
//! that lost a device (claimed by another after its lease lapsed) can no longer change it,
//! while the new owner reads everything the old one got accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
mod pg_support;

use std::sync::Arc;
use std::time::Duration;

use common::{device_keys, paired};
use pg_support::TempPostgres;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use wuts_store::pg::{self, Bridge, DEFAULT_CALL_TIMEOUT, Fences, Incarnation, NodeId, PgStore};
use wuts_store::{Credentials, Devices, Error, Meta, MetaKey};

fn store(url: &str, name: &str) -> PgStore {
    let bridge = Arc::new(Bridge::connect(url, 2, DEFAULT_CALL_TIMEOUT).unwrap());
    PgStore::new(
        bridge,
        NodeId::new(name).unwrap(),
        Incarnation(uuid::Uuid::new_v4()),
        Arc::new(Fences::default()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_store_write_commits_only_under_the_current_epoch() {
    let Some(pg) = TempPostgres::start("a_device_store_write_commits_only_under_the_current_epoch")
    else {
        return;
    };
    let url = pg.database("fenced_store");
    let (a, b) = (store(&url, "a"), store(&url, "b"));
    let key = MetaKey::new("push-name").unwrap();

    // Created on a, owned by a at epoch 1; b may read but not write.
    let device = a.create_device(&device_keys(1)).unwrap();
    a.set_meta(device, &key, b"from a").unwrap();
    assert!(matches!(
        b.set_meta(device, &key, b"from b"),
        Err(Error::Fenced(d)) if d == device
    ));
    assert_eq!(
        b.meta(device, &key).unwrap().as_deref(),
        Some(&b"from a"[..])
    );

    // a never joined (no live node row), so its device is an orphan: b claims it.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let node_b = NodeId::new("b").unwrap();
    let inc_b = Incarnation(uuid::Uuid::new_v4());
    pg::join(
        &mut conn,
        &node_b,
        inc_b,
        "127.0.0.1:1",
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await
    .unwrap();
    let seen = pg::locate(&mut conn, device).await.unwrap().unwrap().epoch;
    let fence = pg::claim(&mut conn, device, &node_b, inc_b, seen, Duration::ZERO)
        .await
        .unwrap()
        .expect("an orphan is claimed");
    assert_eq!(fence.epoch.0, 2);
    let b = PgStore::new(
        Arc::new(Bridge::connect(&url, 2, DEFAULT_CALL_TIMEOUT).unwrap()),
        node_b,
        inc_b,
        Arc::new(Fences::default()),
    );
    b.fences().grant(fence);

    // The old owner's writes are refused from now on, whatever they are; the new owner's land.
    assert!(matches!(
        a.set_meta(device, &key, b"late a"),
        Err(Error::Fenced(_))
    ));
    assert!(matches!(
        a.save_pairing(device, &paired("15550001111:7@s.whatsapp.net")),
        Err(Error::Fenced(_))
    ));
    assert!(matches!(a.remove_device(device), Err(Error::Fenced(_))));
    b.set_meta(device, &key, b"from b").unwrap();
    b.save_pairing(device, &paired("15550001111:7@s.whatsapp.net"))
        .unwrap();
    assert_eq!(
        a.meta(device, &key).unwrap().as_deref(),
        Some(&b"from b"[..])
    );
    assert!(a.load_device(device).unwrap().paired.is_some());

    // Every record of the device carries the epoch of the write that left it.
    let epochs: Vec<(i64,)> =
        sqlx::query_as("SELECT DISTINCT epoch FROM wuts_kv WHERE device_id = $1 ORDER BY 1")
            .bind(i64::try_from(device.get()).unwrap())
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(epochs, vec![(1,), (2,)]);
}
