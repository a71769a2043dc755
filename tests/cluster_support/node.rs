//! A cluster node (`wuts serve` in cluster mode) and the sandbox (`wuts sim`) as child
//! processes, with the faults the cluster tests inflict: SIGKILL, SIGSTOP/SIGCONT, SIGTERM and
//! a restart under the same node id.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::serve::ADMIN;

/// `wuts sim` in its own process, killed on drop.
pub struct Sim {
    child: Child,
    /// Its start line: `ws_url`, `control_url`, `root_public_key`.
    pub info: Value,
}

impl Sim {
    pub fn start() -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
            .args(["sim", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        Sim {
            child,
            info: serde_json::from_str(&line).unwrap(),
        }
    }

    /// `http://127.0.0.1:PORT/control`.
    pub fn control(&self) -> String {
        self.info["control_url"].as_str().unwrap().to_owned()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node id.
    pub name: String,
    /// Its own loopback address: it listens there and its logins leave from there, so the
    /// sandbox's records tell the nodes apart.
    pub ip: Ipv4Addr,
    /// The database URL it uses (often through a fault proxy).
    pub db: String,
    /// `--lease-ttl` in seconds.
    pub lease_ttl: u64,
    /// Where its data directory and log go.
    pub dir: PathBuf,
    /// `--node-weight`, when not the default.
    pub weight: Option<u32>,
    /// More flags.
    pub extra: Vec<String>,
}

/// A running (or stopped) node, killed on drop.
pub struct Node {
    pub spec: NodeSpec,
    child: Option<Child>,
    /// `http://IP:PORT` of its API.
    pub base: String,
    starts: u32,
}

fn free_port_on(ip: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    /// Starts the node and waits until it listens.
    pub fn start(spec: NodeSpec, sim: &Sim) -> Node {
        let mut node = Node {
            spec,
            child: None,
            base: String::new(),
            starts: 0,
        };
        node.spawn(sim);
        node
    }

    fn spawn(&mut self, sim: &Sim) {
        self.starts += 1;
        let s = &self.spec;
        let data = s.dir.join(format!("{}-{}", s.name, self.starts));
        let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
            .args(["serve", "--listen", &format!("{}:0", s.ip), "--data"])
            .arg(&data)
            .args([
                "--database-url",
                &s.db,
                "--node-id",
                &s.name,
                "--rpc-listen",
            ])
            .arg(format!("{}:{}", s.ip, free_port_on(s.ip)))
            .args(["--wa-url", sim.info["ws_url"].as_str().unwrap()])
            .args([
                "--wa-root-key",
                sim.info["root_public_key"].as_str().unwrap(),
            ])
            .args(["--wa-source-address", &s.ip.to_string()])
            .args(["--wa-request-timeout", "10", "--shutdown-timeout", "5"])
            .args(["--lease-ttl", &s.lease_ttl.to_string()])
            .args(["--webhook-allow-private"])
            .args(s.weight.map(|w| format!("--node-weight={w}")))
            .args(&s.extra)
            .env("WUTS_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "wuts=info")
            .env_remove("WUTS_CONFIG")
            .stdout(Stdio::piped())
            // The log beside the data directory, for reading when a test fails.
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines() {
            if let Some(url) = line.unwrap().strip_prefix("listening on ") {
                self.base = url.to_owned();
                self.child = Some(child);
                return;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("node {} exited before listening", self.spec.name);
    }

    /// Whether the process runs (it may be paused).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the node runs").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM, and a clean exit.
    pub fn terminate(&mut self) {
        self.signal("-TERM");
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(
            status.success(),
            "{} stops cleanly: {status}",
            self.spec.name
        );
    }

    /// Starts it again under the same node id (a fresh data directory and RPC port).
    pub fn restart(&mut self, sim: &Sim) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn(sim);
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        let s = &self.spec;
        (1..=self.starts)
            .map(|n| {
                let path = s.dir.join(format!("{}-{n}.log", s.name));
                std::fs::read_to_string(path).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused process must be woken to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
