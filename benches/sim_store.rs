//! Group creation through the sandbox with persistence on: how many `w:g2` creates per second
//! the sandbox sustains (as `wuts sim --data DIR` and `wuts serve --sandbox` run it) while its
//! groups pile up, beside the same load with no data directory.
//!
//! Raw protocol clients (`tests/sim_support`, independent of the engine) log `--clients`
//! devices in to an in-process sandbox; each sends creates (three participants) back to back
//! for `--seconds`. The run is cut into `--windows` equal slices so a rate that falls as the
//! data grows shows. The persistent run then stops the sandbox, restarts it on the same
//! directory and checks that every group came back.
//!
//! Run: `cargo bench --bench sim_store [-- --seconds 10 --clients 4 --windows 5]`
//! (`--only persistent` or `--only memory` for one of the two runs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;
#[path = "../tests/sim_support/mod.rs"]
mod sim_support;

use std::path::Path;
use std::time::{Duration, Instant};

use sim_support::{RawClient, attr, online};
use wuts::binary::{Jid, Node};
use wuts::sim::{Sandbox, SandboxConfig};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// A create with a fixed-width subject, so every group record has the same size.
fn create_iq(client: &mut RawClient, n: u64) -> Node {
    let mut kids: Vec<Node> = (1..=3)
        .map(|i| {
            let jid: Jid = format!("55110000000{i:02}@s.whatsapp.net").parse().unwrap();
            Node::new("participant").with_attr("jid", jid)
        })
        .collect();
    kids.push(Node::new("member_add_mode").with_bytes(b"all_member_add".to_vec()));
    let create = Node::new("create")
        .with_attr("subject", format!("load {n:08}"))
        .with_children(kids);
    Node::new("iq")
        .with_attr("id", client.new_id())
        .with_attr("xmlns", "w:g2")
        .with_attr("type", "set")
        .with_attr("to", Jid::server_only("g.us"))
        .with_children(vec![create])
}

/// Bytes under `path`, recursively.
fn size_of(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// This process's resident memory, in MB (0 where `/proc` is missing).
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// One run: `clients` devices creating groups for `seconds`; returns how many were created.
async fn run(data: Option<&Path>, clients: usize, seconds: f64, windows: usize) -> usize {
    let config = SandboxConfig {
        data_dir: data.map(Path::to_path_buf),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(config.clone()).await.unwrap();
    let mut devices = Vec::new();
    for i in 0..clients {
        let (_, _, client) = online(&sb, &format!("55119{i:08}")).await;
        devices.push(client);
    }
    let duration = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            tokio::spawn(async move {
                let mut done = Vec::new();
                let mut n = (i as u64) << 32;
                while start.elapsed() < duration {
                    let iq = create_iq(&mut client, n);
                    let reply = client.request(iq).await;
                    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
                    done.push(start.elapsed());
                    n += 1;
                }
                done
            })
        })
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let created = done.len();
    let label = if data.is_some() {
        "persistent"
    } else {
        "in memory"
    };
    println!(
        "{label}: {created} groups in {:.1} s by {clients} clients: {:.0} creates/s \
         (process RSS {:.0} MB)",
        elapsed.as_secs_f64(),
        created as f64 / elapsed.as_secs_f64(),
        rss_mb()
    );
    let slice = duration.as_secs_f64() / windows as f64;
    let mut so_far = 0;
    for w in 0..windows {
        let (from, to) = (slice * w as f64, slice * (w + 1) as f64);
        let count = done
            .iter()
            .filter(|t| (from..to).contains(&t.as_secs_f64()))
            .count();
        so_far += count;
        println!(
            "  {from:5.1}–{to:5.1} s: {:7.0} creates/s (groups so far: {so_far})",
            count as f64 / slice
        );
    }
    let stop = Instant::now();
    sb.shutdown().await.unwrap();
    if let Some(dir) = data {
        println!(
            "  shutdown {:.0} ms; data directory {:.1} MB",
            stop.elapsed().as_secs_f64() * 1e3,
            size_of(dir) as f64 / 1e6
        );
        let restart = Instant::now();
        let again = Sandbox::start(config).await.unwrap();
        let kept = again.groups().len();
        println!(
            "  restart {:.0} ms with {kept} groups",
            restart.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(kept, created, "every group survives the restart");
        again.shutdown().await.unwrap();
    }
    created
}

#[tokio::main]
async fn main() {
    let smoke = mode::smoke("sim_store");
    let seconds = if smoke { 0.2 } else { arg("--seconds", 10.0) };
    let clients = arg("--clients", 4.0) as usize;
    let windows = arg("--windows", 5.0) as usize;
    // `--only persistent` (or `--only memory`) runs one of the two, e.g. to read its memory.
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    if only.as_deref() != Some("persistent") {
        run(None, clients, seconds, windows).await;
    }
    if only.as_deref() != Some("memory") {
        let dir = tempfile::tempdir().unwrap();
        run(Some(dir.path()), clients, seconds, windows).await;
    }
}
