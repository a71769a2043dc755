//! Cluster mode end to end, with `wuts serve` nodes and `wuts sim` as separate processes on
//! loopback and a throw-away PostgreSQL (fsync off, as the tests run it):
//! 1. Failover: N paired devices spread over 3 nodes; the node owning the most is SIGKILLed,
//!    and the bench times, from the kill, the survivors' claims (`wuts_device_owner`) and the
//!    sandbox's logins (`GET /control/logins`) of every device the dead node owned.
//! 2. `POST /groups` throughput: the same load (keyed creates for random users, each sent to a
//!    random node) against a 3-node cluster and a 1-node cluster.
//!
//! Fast setup: the devices are paired in this process into a sled directory (a first pre-key
//! upload of 30 instead of 812, as `benches/devices.rs`), each gets a user with a known token
//! in the same sled store, and `wuts store migrate` moves it all into the cluster database.
//! Migrating happens once every node of the cluster is live, so the claims follow rendezvous
//! placement from the start (a node alone would claim everything, and rebalancing moves only
//! 16 devices a pass).
//!
//! Run: `cargo bench --bench cluster_failover [-- --devices 1000 --requests 3000
//! --concurrency 32 --users 200 --lease-ttl SECS]`; the nodes keep their default timings unless
//! `--lease-ttl` is given. Without `--bench` (as under `cargo test --benches`) or with `--test`
//! it only smoke-tests with 5 devices and a 3 s lease. Without PostgreSQL it says SKIPPED (and
//! fails under `CI`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;
#[path = "support/pairing.rs"]
mod pairing;
#[path = "../store/tests/pg_support/mod.rs"]
mod pg_support;
#[path = "cluster_failover/setup.rs"]
mod setup;

use setup::{Account, Node, Sandbox, pair_all, start_node, start_sim};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use rand::Rng;
use serde_json::{Value, json};
use sqlx::Connection;
use wuts::cluster::{Candidate, place};

const ADMIN: &str = "bench-admin-token";

struct Options {
    devices: usize,
    requests: usize,
    concurrency: usize,
    users: usize,
    lease_ttl: Option<u64>,
    smoke: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // Only `cargo bench` measures, so the test suite never waits for a thousand pairings.
    if mode::smoke("cluster_failover") {
        return Options {
            devices: 5,
            requests: 20,
            concurrency: 4,
            users: 5,
            lease_ttl: Some(3),
            smoke: true,
        };
    }
    let devices = arg("--devices").unwrap_or(1000) as usize;
    Options {
        devices,
        requests: arg("--requests").unwrap_or(3000) as usize,
        concurrency: arg("--concurrency").unwrap_or(32) as usize,
        users: (arg("--users").unwrap_or(200) as usize).min(devices),
        lease_ttl: arg("--lease-ttl"),
        smoke: false,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn main() {
    let opts = options();
    let Some(pg) = pg_support::TempPostgres::start("cluster failover bench") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(opts, pg));
}

async fn run(opts: Options, pg: pg_support::TempPostgres) {
    let work = tempfile::tempdir().unwrap();
    let sim = start_sim();
    let data = work.path().join("paired");
    let start = Instant::now();
    let accounts = pair_all(opts.devices, &sim, &data).await;
    println!(
        "setup: paired {} devices in process and gave each a user in {:.1} s",
        accounts.len(),
        start.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    println!("== 3 nodes");
    let db3 = pg.database("three");
    let mut nodes = cluster(&opts, &sim, &db3, &data, &accounts, work.path(), 3).await;
    let spread = owners(&db3).await;
    println!(
        "devices per node: {spread:?}; not at their rendezvous place: {}",
        off_place(&db3).await
    );
    let users = &accounts[..opts.users];
    let three = load(&http, &nodes, users, &opts, None).await;
    let at_owner = owner_index(&db3, &nodes).await;
    println!("the same load, each request sent to its device's owner (no forwarding hop):");
    load(&http, &nodes, users, &opts, Some(&at_owner)).await;
    failover(&opts, &sim, &db3, &mut nodes, &accounts).await;
    drop(nodes);

    println!("== 1 node");
    let db1 = pg.database("one");
    let nodes = cluster(&opts, &sim, &db1, &data, &accounts, work.path(), 1).await;
    let one = load(&http, &nodes, &accounts[..opts.users], &opts, None).await;
    drop(nodes);
    println!(
        "POST /groups, 3 nodes / 1 node: {:.2}x the creates per second",
        three / one
    );
}

/// Starts `size` nodes on an empty database, waits until all are live, migrates the paired
/// deployment in, and waits until every device has logged in again.
async fn cluster(
    opts: &Options,
    sim: &Sandbox,
    db: &str,
    paired: &Path,
    accounts: &[Account],
    work: &Path,
    size: usize,
) -> Vec<Node> {
    let nodes: Vec<Node> = (1..=size)
        .map(|i| start_node(i, sim, db, work, opts.lease_ttl))
        .collect();
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (live,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM wuts_node WHERE expires_at > now()")
                .fetch_one(&mut conn)
                .await
                .unwrap_or((0,));
        if live as usize == size {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {live} of {size} nodes live"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = unix_ms();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(["store", "migrate", "--from"])
        .arg(paired)
        .args(["--to", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let migrated = start.elapsed();
    let jids: HashSet<String> = accounts.iter().map(|a| a.jid.clone()).collect();
    let http = reqwest::Client::new();
    let (_, last) = logged_in(&http, &sim.control, &jids, since, Duration::from_secs(300)).await;
    println!(
        "{size} node(s) up; migrate took {:.1} s; every device logged in {:.1} s after the \
         migrate started",
        migrated.as_secs_f64(),
        (last - since) as f64 / 1000.0
    );
    nodes
}

/// Waits until every JID in `jids` has a login at or after `since` (unix ms); returns the
/// first and last of those logins (each device's first login after `since`).
async fn logged_in(
    http: &reqwest::Client,
    control: &str,
    jids: &HashSet<String>,
    since: u64,
    within: Duration,
) -> (u64, u64) {
    let deadline = Instant::now() + within;
    loop {
        let logins: Value = http
            .get(format!("{control}/logins"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut first: HashMap<&str, u64> = HashMap::new();
        for l in logins.as_array().unwrap() {
            let (Some(jid), Some(at)) = (l["jid"].as_str(), l["at_ms"].as_u64()) else {
                continue;
            };
            if at >= since && jids.contains(jid) {
                let e = first.entry(jid).or_insert(at);
                *e = (*e).min(at);
            }
        }
        if first.len() == jids.len() {
            let lo = first.values().copied().min().unwrap_or(since);
            let hi = first.values().copied().max().unwrap_or(since);
            return (lo, hi);
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = jids
                .iter()
                .filter(|j| !first.contains_key(j.as_str()))
                .take(10)
                .collect();
            panic!(
                "{} of {} devices never logged in again (first missing: {missing:?})",
                jids.len() - first.len(),
                jids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Devices per owning node.
async fn owners(db: &str) -> BTreeMap<String, i64> {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT owner_node, count(*) FROM wuts_device_owner GROUP BY owner_node ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(n, c)| (n.unwrap_or_else(|| "(none)".to_owned()), c))
        .collect()
}

/// Devices whose owner is not their rendezvous place among the live nodes (claimed by a
/// fallback node, to be moved by rebalancing).
async fn off_place(db: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let nodes: Vec<(String, i32)> = sqlx::query_as(
        "SELECT node_id, weight FROM wuts_node WHERE state = 'active' AND expires_at > now()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let candidates: Vec<Candidate<'_>> = nodes
        .iter()
        .map(|(node, weight)| Candidate {
            node,
            weight: u32::try_from(*weight).unwrap(),
        })
        .collect();
    let rows: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT device_id, owner_node FROM wuts_device_owner")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.iter()
        .filter(|(d, owner)| place(&d.to_string(), &candidates) != owner.as_deref())
        .count()
}

/// Each device's owner, as an index into `nodes`.
async fn owner_index(db: &str, nodes: &[Node]) -> HashMap<i64, usize> {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let rows: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT device_id, owner_node FROM wuts_device_owner")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.into_iter()
        .filter_map(|(d, owner)| {
            Some((
                d,
                nodes.iter().position(|n| Some(&n.name) == owner.as_ref())?,
            ))
        })
        .collect()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize]
}

/// `opts.requests` keyed creates for random users among `accounts`, each on a random node,
/// `opts.concurrency` at a time (after a warm-up of a tenth as many); returns creates/s. With
/// `route`, each request goes to its device's owner instead.
async fn load(
    http: &reqwest::Client,
    nodes: &[Node],
    accounts: &[Account],
    opts: &Options,
    route: Option<&HashMap<i64, usize>>,
) -> f64 {
    let one = |k: usize| {
        let (i, n) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(0..accounts.len()),
                rng.gen_range(0..nodes.len()),
            )
        };
        let n = route
            .and_then(|r| r.get(&accounts[i].device).copied())
            .unwrap_or(n);
        let req = http
            .post(format!("{}/groups", nodes[n].base))
            .bearer_auth(&accounts[i].token)
            .header("Idempotency-Key", format!("bench-{}", uuid::Uuid::new_v4()))
            .json(&json!({"name": format!("bench {k}"), "participants": ["5511988887777"]}));
        async move {
            let t = Instant::now();
            let status = match req.send().await {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => 0,
            };
            (status, t.elapsed())
        }
    };
    let warm = (opts.requests / 10).max(1);
    futures_util::stream::iter(0..warm)
        .map(one)
        .buffer_unordered(opts.concurrency)
        .collect::<Vec<_>>()
        .await;
    let start = Instant::now();
    let results: Vec<(u16, Duration)> = futures_util::stream::iter(0..opts.requests)
        .map(one)
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    let wall = start.elapsed();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (s, _) in &results {
        *statuses.entry(*s).or_default() += 1;
    }
    let mut took: Vec<Duration> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, t)| *t)
        .collect();
    took.sort();
    assert!(!took.is_empty(), "no create succeeded: {statuses:?}");
    let rate = took.len() as f64 / wall.as_secs_f64();
    println!(
        "POST /groups on {} node(s): {} requests, {} at a time, {} users: {:.0} creates/s, \
         p50 {:.1} ms, p99 {:.1} ms (statuses {statuses:?})",
        nodes.len(),
        opts.requests,
        opts.concurrency,
        accounts.len(),
        rate,
        quantile(&took, 0.5).as_secs_f64() * 1e3,
        quantile(&took, 0.99).as_secs_f64() * 1e3,
    );
    if opts.smoke {
        assert_eq!(statuses.get(&201), Some(&opts.requests), "{statuses:?}");
    }
    rate
}

/// SIGKILLs the node owning the most devices and times its devices' return.
async fn failover(
    opts: &Options,
    sim: &Sandbox,
    db: &str,
    nodes: &mut Vec<Node>,
    accounts: &[Account],
) {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let spread = owners(db).await;
    let (victim, _) = spread
        .iter()
        .filter(|(n, _)| nodes.iter().any(|node| &node.name == *n))
        .max_by_key(|(_, c)| **c)
        .unwrap();
    let owned: Vec<(i64,)> =
        sqlx::query_as("SELECT device_id FROM wuts_device_owner WHERE owner_node = $1")
            .bind(victim)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let owned: HashSet<i64> = owned.into_iter().map(|(d,)| d).collect();
    let jids: HashSet<String> = accounts
        .iter()
        .filter(|a| owned.contains(&a.device))
        .map(|a| a.jid.clone())
        .collect();
    let at = nodes.iter().position(|n| &n.name == victim).unwrap();
    let mut node = nodes.remove(at);
    let killed = unix_ms();
    node.proc.0.kill().unwrap();
    let _ = node.proc.0.wait();
    let http = reqwest::Client::new();
    let (first, last) =
        logged_in(&http, &sim.control, &jids, killed, Duration::from_secs(300)).await;
    let ids: Vec<i64> = owned.iter().copied().collect();
    let (claim_lo, claim_hi): (i64, i64) = sqlx::query_as(
        "SELECT (extract(epoch FROM min(changed_at)) * 1000)::bigint,
                (extract(epoch FROM max(changed_at)) * 1000)::bigint
         FROM wuts_device_owner WHERE device_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    // Claims per second after the kill, per claiming node: the shape of the claim phase.
    let timeline: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT floor((extract(epoch FROM changed_at) * 1000 - $2) / 1000)::bigint AS s,
                owner_node, count(*)
         FROM wuts_device_owner WHERE device_id = ANY($1) GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(&ids)
    .bind(killed as f64)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let timeline: Vec<String> = timeline
        .into_iter()
        .map(|(s, n, c)| format!("{s}s:{}={c}", n.unwrap_or_default()))
        .collect();
    println!("  claims by second after the kill: {}", timeline.join(" "));
    let s = |ms: i64| ms as f64 / 1000.0;
    let k = killed as i64;
    let lease = opts.lease_ttl.unwrap_or(15) as f64;
    // Grace is a third of the lease (`--lease-ttl`).
    let goal = lease + lease / 3.0 + 10.0;
    println!(
        "  goal (lease + grace + 10 s) {goal:.0} s: {}",
        if s(last as i64 - k) < goal {
            "met"
        } else {
            "MISSED"
        }
    );

    println!(
        "failover: SIGKILL of {victim} ({} devices; lease {}): first claim {:.1} s, last claim \
         {:.1} s, first login {:.1} s, last login {:.1} s after the kill",
        jids.len(),
        opts.lease_ttl
            .map_or("15 s, the default".to_owned(), |s| format!("{s} s")),
        s(claim_lo - k),
        s(claim_hi - k),
        s(first as i64 - k),
        s(last as i64 - k),
    );
    println!(
        "  detection (kill -> first claim) {:.1} s, claims {:.1} s, logins after the last \
         claim {:.1} s; devices now per node: {:?} ({} not at their place)",
        s(claim_lo - k),
        s(claim_hi - claim_lo),
        s(last as i64 - claim_hi),
        owners(db).await,
        off_place(db).await
    );
}
