//! What a real account's connection also does, against the sandbox that models it, through the
//! real gateway: the edge routing info the server sends is presented on the next connect (also
//! after a restart), the login counter goes up, a dirty bit is answered clean, the server's
//! pings are answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use gateway_e2e_support::{Options, sandbox, start};
use wuts::sim::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_info_and_the_login_counter_carry_over_and_dirty_bits_are_cleaned() {
    let sim = sandbox(71).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let jid = gw.pair(&sim, &ana, "5511999990701").await;
    // The first login (after the 515) had no routing info yet; the server gave it one.
    // A new device's first active session is told to catch up (account_sync) and cleans it.
    tokio::time::timeout(gateway_e2e_support::WAIT, async {
        while sim.dirty(&jid).is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dirty bit is cleaned");
    let first = sim.edge_routing(&jid).expect("logged in");
    assert_eq!(first.presented, None);
    assert_eq!(first.issued.len(), 6);

    let mut events = gw.events(&ana).await;
    assert_eq!(events.next().await.1["state"], "connected");
    sim.inject(Fault::Drop {
        device: jid.clone(),
    })
    .await
    .unwrap();
    events.wait_for("disconnected").await;
    events.wait_for("connected").await;
    let again = sim.edge_routing(&jid).unwrap();
    assert_eq!(again.presented.as_deref(), Some(first.issued.as_slice()));

    // Both are kept in the store: after a restart, the same routing info, and the login
    // counter goes on (0 on the first login after pairing, one more after each).
    gw.stop().await;
    let gw = start(&sim, dir.path(), Options::default()).await;
    gw.connected(&ana).await;
    let after = sim.edge_routing(&jid).unwrap();
    assert_eq!(after.presented.as_deref(), Some(first.issued.as_slice()));
    assert_eq!(sim.login_counts(&jid), [Some(0), Some(1), Some(2)]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_pings_are_answered() {
    let sim = wuts::sim::Sandbox::start(wuts::sim::SandboxConfig {
        seed: Some(72),
        timing: wuts::sim::Timing {
            server_ping: (
                std::time::Duration::from_millis(100),
                std::time::Duration::from_secs(5),
            ),
            ..wuts::sim::Timing::default()
        },
        ..wuts::sim::SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let bia = gw.user_in(&tenant, "Bia").await;
    let jid = gw.pair(&sim, &bia, "5511999990702").await;
    tokio::time::timeout(gateway_e2e_support::WAIT, async {
        while sim.server_pings_answered(&jid) < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("three pings answered");
    assert_eq!(gw.show_user(&bia).await["state"], "connected");
    gw.stop().await;
}
