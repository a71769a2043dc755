//! The cluster failover bench's set-up: the sandbox, devices paired in-process, the nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use wuts::client::Registry;
use wuts::noise::PublicKey;
use wuts_store::gateway::{GatewayStore, Tenant, TenantId, TokenHash, User, UserId};
use wuts_store::{SledStore, Store};

use super::{ADMIN, unix_ms};

/// A child process killed (SIGKILL) when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One paired device with its user's token.
pub(crate) struct Account {
    pub(crate) device: i64,
    pub(crate) jid: String,
    pub(crate) token: String,
}

/// A running `wuts serve` node.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) base: String,
    pub(crate) proc: Proc,
}

pub(crate) struct Sandbox {
    pub(crate) _proc: Proc,
    pub(crate) ws_url: String,
    pub(crate) control: String,
    pub(crate) root: String,
}

pub(crate) fn start_sim() -> Sandbox {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(["sim", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wuts sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    Sandbox {
        _proc: Proc(child),
        ws_url: info["ws_url"].as_str().unwrap().to_owned(),
        control: info["control_url"].as_str().unwrap().to_owned(),
        root: info["root_public_key"].as_str().unwrap().to_owned(),
    }
}

/// Pairs `n` devices through the sandbox's phone into a sled store at `dir`, then gives each a
/// user (one tenant) with a token the bench knows.
pub(crate) async fn pair_all(n: usize, sim: &Sandbox, dir: &Path) -> Vec<Account> {
    let root = PublicKey::from_slice(&wuts::binary::json::decode_hex(&sim.root).unwrap()).unwrap();
    let sled = Arc::new(SledStore::open(dir).unwrap());
    let store: Arc<dyn Store> = sled.clone();
    let config = super::pairing::client_config(sim.ws_url.clone(), root);
    let reg = Registry::new(store.clone(), config);
    super::pairing::pair_many(&reg, &sim.control, n, "56").await;
    reg.shutdown_all().await;
    drop(reg);

    let now = unix_ms() / 1000;
    let tenant = Tenant {
        id: TenantId::new(uuid::Uuid::new_v4().to_string()).unwrap(),
        name: "bench".to_owned(),
        created_at: now,
    };
    sled.create_tenant(&tenant).unwrap();
    let mut accounts = Vec::with_capacity(n);
    for (i, info) in store.list_devices().unwrap().into_iter().enumerate() {
        let info = info.unwrap();
        let token = format!("bench-user-token-{i:05}-{}", uuid::Uuid::new_v4());
        let user = User {
            id: UserId::new(uuid::Uuid::new_v4().to_string()).unwrap(),
            tenant: tenant.id.clone(),
            name: format!("user {i}"),
            device: info.id,
            token_hash: TokenHash::from_bytes(Sha256::digest(token.as_bytes()).into()),
            created_at: now,
        };
        sled.create_user(&user).unwrap();
        accounts.push(Account {
            device: i64::try_from(info.id.get()).unwrap(),
            jid: info.jid.expect("paired").to_string(),
            token,
        });
    }
    sled.flush_gateway().unwrap();
    store.flush().unwrap();
    accounts
}

pub(crate) fn start_node(
    i: usize,
    sim: &Sandbox,
    db: &str,
    work: &Path,
    lease: Option<u64>,
) -> Node {
    let name = format!("n{i}");
    let ip = format!("127.0.0.{i}");
    let data: PathBuf = work.join(format!("{name}-{}", uuid::Uuid::new_v4()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_wuts"));
    c.args(["serve", "--listen", &format!("{ip}:0"), "--data"])
        .arg(&data)
        .args(["--database-url", db, "--node-id", &name, "--rpc-listen"])
        .arg(format!("{ip}:{}", free_port(&ip)))
        .args(["--wa-url", &sim.ws_url, "--wa-root-key", &sim.root])
        .env("WUTS_ADMIN_TOKEN", ADMIN)
        .env_remove("WUTS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.with_extension("log")).unwrap());
    if let Some(secs) = lease {
        c.args(["--lease-ttl", &secs.to_string()]);
    }
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    for line in BufReader::new(stdout).lines() {
        if let Some(url) = line.unwrap().strip_prefix("listening on ") {
            return Node {
                name,
                base: url.to_owned(),
                proc,
            };
        }
    }
    panic!(
        "node {name} exited before listening; its log: {}",
        data.with_extension("log").display()
    );
}

pub(crate) fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
