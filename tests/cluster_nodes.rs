//! Two `wuts serve` nodes on one PostgreSQL and one sandbox (`wuts sim`): any node answers any
//! call. The device lives on the node that created it; pairing, the QR code, its state and
//! `POST /groups` work through the other node (forwarded, or read from the status board), an
//! `Idempotency-Key` replays across nodes, and when the owner is SIGKILLed the survivor takes
//! the device over after the lease and logs it in again without a QR (the pairing is kept),
//! answering `DEVICE_FAILOVER` with `Retry-After` in between.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster_support/node.rs"]
mod node;
#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;
#[path = "cluster_support/serve.rs"]
mod serve;
mod webhook_receiver;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use node::{Node, NodeSpec, Sim};
use serde_json::{Value, json};
use serve::ADMIN;
use sqlx::Connection;

/// A node on 127.0.0.1 with a short lease (the killed owner's device moves after about 4 s,
/// not 20) and quick webhook retries.
fn node(dir: &Path, db: &str, name: &str, sim: &Sim) -> (Node, String) {
    let spec = NodeSpec {
        name: name.to_owned(),
        ip: Ipv4Addr::LOCALHOST,
        db: db.to_owned(),
        lease_ttl: 3,
        dir: dir.to_owned(),
        weight: None,
        extra: vec!["--webhook-retry-base-ms".into(), "100".into()],
    };
    let node = Node::start(spec, sim);
    let base = node.base.clone();
    (node, base)
}

/// A node's `/metrics` text.
async fn metrics_of(http: &reqwest::Client, base: &str) -> String {
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

/// Reads an event stream until `needle` shows; returns what was read.
async fn read_until(stream: &mut reqwest::Response, needle: &str, what: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
            .await
            .expect(what)
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

async fn call(req: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn until<F, Fut>(what: &str, within: Duration, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_and_a_survivor_takes_over_a_killed_owners_device() {
    let Some(pg) = pg_support::TempPostgres::start(
        "any_node_answers_and_a_survivor_takes_over_a_killed_owners_device",
    ) else {
        return;
    };
    let db = pg.database("two_nodes");
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start();
    // Node ids chosen so that the rendezvous place of device 1 is the node that creates it
    // ("n2", reached at `one`) and that of device 2 the other one ("n1", at `two`): nothing
    // moves before the faults, and the end can check both a rebalancing and a drain.
    let (mut n1, one) = node(dir.path(), &db, "n2", &sim);
    let (mut n2, two) = node(dir.path(), &db, "n1", &sim);
    let http = reqwest::Client::new();

    // The user (and its device) is created on n1, which therefore owns the device.
    let (_, tenant, _) = call(
        http.post(format!("{one}/admin/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "T"})),
    )
    .await;
    let (status, user, _) = call(
        http.post(format!("{one}/admin/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"tenant_id": tenant["id"], "name": "Ana"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    let token = user["token"].as_str().unwrap().to_owned();

    // A webhook, configured through n2; every event must arrive exactly once although both
    // nodes read the shared outbox (a lane runs only on the node running its device).
    let mut receiver = webhook_receiver::Receiver::start().await;
    let (status, hook, _) = call(
        http.post(format!("{two}/webhook"))
            .bearer_auth(&token)
            .json(&json!({
                "webhook_url": receiver.url,
                "enabled_events": ["pair.success", "device.connected", "device.disconnected"],
                "retry_attempts": 20,
            })),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    // Refused for now: the deliveries stay owed in the outbox, where both nodes can see them.
    receiver
        .script
        .always_fail
        .store(true, std::sync::atomic::Ordering::SeqCst);

    // The device's event stream, opened on the node that does not run it: passed through.
    let mut stream = http
        .get(format!("{two}/admin/users/{id}/events"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The user's own outbox stream on n2 too: n1 appends the device's events.
    let mut outbox = http
        .get(format!("{two}/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(outbox.status(), 200);

    // Pairing, its QR code and the device's state, all through n2.
    let (status, body, _) = call(
        http.post(format!("{two}/admin/users/{id}/pair"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert!(status < 300, "pairing through n2: {status} {body}");
    let qr = until("a QR code on n2", Duration::from_secs(30), || async {
        let (status, body, _) = call(
            http.get(format!("{two}/admin/users/{id}/qr"))
                .bearer_auth(ADMIN),
        )
        .await;
        (status == 200).then(|| body["code"].clone())
    })
    .await;
    let control = sim.control();
    let control = control.as_str();
    let (status, scanned, _) = call(
        http.post(format!("{control}/scan"))
            .json(&json!({"qr": qr, "phone": "5511999990902"})),
    )
    .await;
    assert!(status < 300, "{status} {scanned}");
    let connected = |base: String| {
        let (http, id) = (http.clone(), id.clone());
        move || {
            let (http, id, base) = (http.clone(), id.clone(), base.clone());
            async move {
                let (_, body, _) = call(
                    http.get(format!("{base}/admin/users/{id}"))
                        .bearer_auth(ADMIN),
                )
                .await;
                (body["state"] == "connected").then_some(body)
            }
        }
    };
    until(
        "connected, seen from n2",
        Duration::from_secs(60),
        connected(two.clone()),
    )
    .await;
    let seen = read_until(&mut stream, "connected", "the forwarded stream flows").await;
    assert!(
        seen.contains("qr"),
        "the QR events came through too: {seen}"
    );
    drop(stream);
    read_until(
        &mut outbox,
        "device.connected",
        "the outbox stream on n2 shows n1's events",
    )
    .await;
    drop(outbox);

    // Both nodes rescan the owed deliveries every 5 s; only the owner may deliver them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    receiver
        .script
        .always_fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut ids = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_connected = false;
    while !seen_connected {
        assert!(Instant::now() < deadline, "device.connected delivered");
        let Some(got) = receiver.try_next() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if got.answered < 300 {
            let id = got.header("webhook-id").to_owned();
            assert!(ids.insert(id.clone()), "delivered twice: {id}");
            seen_connected = got.json()["event"] == "device.connected";
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Some(got) = receiver.try_next() {
        let id = got.header("webhook-id").to_owned();
        assert!(
            got.answered >= 300 || ids.insert(id.clone()),
            "delivered twice: {id}"
        );
    }
    // n2 does not run the device: it made no attempt at all, failed or not.
    let metrics = metrics_of(&http, &two).await;
    for counter in ["wuts_webhook_delivered_total", "wuts_webhook_failed_total"] {
        assert!(
            metrics.contains(&format!("{counter} 0")),
            "{counter} on n2: {metrics}"
        );
    }

    // A keyed POST /groups through n2 runs on n1; the key replays on either node.
    let create = |base: &str, key: &str| {
        http.post(format!("{base}/groups"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Two nodes", "participants": ["5511988887777"]}))
    };
    let (status, created, _) = call(create(&two, "k-1")).await;
    assert_eq!(status, 201, "{created}");
    let (status, replayed, _) = call(create(&one, "k-1")).await;
    assert_eq!(
        (status, &replayed),
        (201, &created),
        "replayed on the owner"
    );
    let (status, replayed, _) = call(create(&two, "k-1")).await;
    assert_eq!((status, &replayed), (201, &created), "replayed through n2");
    let metrics = metrics_of(&http, &two).await;
    assert!(
        !metrics.contains("wuts_cluster_forwarded_requests_total 0"),
        "n2 forwarded: {metrics}"
    );

    // The owner dies. Until the survivor has taken over, calls answer DEVICE_FAILOVER with a
    // Retry-After; then the device is back on n2, without a QR, and creates groups again.
    n1.kill();
    let (status, body, retry) = call(create(&two, "k-2")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], "DEVICE_FAILOVER", "{body}");
    assert!(retry.is_some(), "a failover says when to retry");
    // Every answer in between is a documented, retryable refusal; none hangs.
    let deadline = Instant::now() + Duration::from_secs(90);
    let again = loop {
        let (status, body, _) = call(create(&two, "k-2")).await;
        if status == 201 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        let code = body["error_code"].as_str().unwrap_or_default();
        assert!(
            ["DEVICE_FAILOVER", "DEVICE_OFFLINE"].contains(&code),
            "{body}"
        );
        assert!(Instant::now() < deadline, "never taken over: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, view, _) = call(
        http.get(format!("{two}/admin/users/{id}"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(view["state"], "connected", "{view}");

    // After the takeover, n2 delivers the device's events, once each.
    let mut connected_events = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while connected_events < 1 {
        assert!(
            Instant::now() < deadline,
            "device.connected after the takeover"
        );
        let Some(got) = receiver.try_next() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if got.answered >= 300 {
            continue;
        }
        let id = got.header("webhook-id").to_owned();
        assert!(ids.insert(id.clone()), "delivered twice: {id}");
        if got.json()["event"] == "device.connected" {
            connected_events += 1;
        }
    }
    // A rescan on either node (every 5 s) would repeat an owed delivery by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    while let Some(got) = receiver.try_next() {
        let id = got.header("webhook-id").to_owned();
        assert!(
            got.answered >= 300 || ids.insert(id.clone()),
            "delivered twice: {id}"
        );
    }
    assert_ne!(again["group"]["jid"], created["group"]["jid"]);

    // The creator comes back: device 1 moves to its place again (rebalancing) ...
    n1.restart(&sim);
    let one = n1.base.clone();
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    let owner = |device: i64| {
        sqlx::query_as::<_, (Option<String>,)>(
            "SELECT owner_node FROM wuts_device_owner WHERE device_id = $1",
        )
        .bind(device)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while owner(1).fetch_one(&mut conn).await.unwrap().0.as_deref() != Some("n2") {
        assert!(
            Instant::now() < deadline,
            "device 1 never moved back to its place"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The survivor's metrics show the moves: it took device 1 over and handed it back.
    let metrics = metrics_of(&http, &two).await;
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(counter("wuts_cluster_devices_adopted_total") >= 1.0);
    assert!(counter("wuts_cluster_devices_handed_off_total") >= 1.0);
    assert!(counter("wuts_cluster_lease_renew_seconds_count") >= 1.0);
    assert!(counter("wuts_cluster_lease_renew_seconds_sum") > 0.0);

    // ... and a device created on the survivor, whose place it is, is handed to the creator
    // when the survivor stops (SIGTERM), before it exits.
    let (status, other, _) = call(
        http.post(format!("{two}/admin/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"tenant_id": tenant["id"], "name": "Bea"})),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(
        owner(2).fetch_one(&mut conn).await.unwrap().0.as_deref(),
        Some("n1")
    );
    n2.terminate();
    assert_eq!(
        owner(2).fetch_one(&mut conn).await.unwrap().0.as_deref(),
        Some("n2"),
        "handed over on the way out"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = call(create(&one, "k-3")).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "never resumed on the creator: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The sandbox's records: every login presented its epoch, a device's epochs only grew,
    // and no login ever cut another (kills, moves and drains close the old socket first).
    let (_, logins, _) = call(http.get(format!("{control}/logins"))).await;
    let logins = logins.as_array().cloned().unwrap_or_default();
    assert!(logins.len() >= 3, "{logins:?}");
    let mut highest: std::collections::HashMap<String, u64> = Default::default();
    for login in &logins {
        let jid = login["jid"].as_str().unwrap().to_owned();
        let epoch = login["epoch"]
            .as_u64()
            .expect("a debug build presents its epoch");
        let top = highest.entry(jid).or_insert(0);
        assert!(epoch >= *top, "a login under a stale epoch: {logins:?}");
        *top = epoch;
    }
    let (_, kicks, _) = call(http.get(format!("{control}/kicks"))).await;
    assert_eq!(kicks, json!([]), "no login replaced another");
}
