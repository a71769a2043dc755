//! The cluster under test for the chaos test: three nodes on 127.0.0.2-4, each reaching
//! PostgreSQL through its own fault proxy, the sandbox, paired users, and the waits that tell
//! when the cluster has settled.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use wuts::cluster::{Candidate, place};

use super::node::{Node, NodeSpec, Sim};
use super::pg_support::TempPostgres;
use super::proxy::FaultProxy;
use super::serve::{ADMIN, call};

/// A lease of 3 s: a dead node's devices move after about 4 s.
pub const LEASE_TTL: u64 = 3;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A paired user of the cluster.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
    /// The device's JID.
    pub jid: String,
    /// The device's id in the store (created in order: 1, 2, ...).
    pub device: i64,
}

pub struct Cluster {
    pub sim: Sim,
    pub nodes: Vec<Node>,
    pub proxies: Vec<FaultProxy>,
    pub users: Vec<User>,
    pub http: reqwest::Client,
    db: PgConnection,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the sandbox and three nodes, creates `users` users (each on a different node
    /// than the last) and pairs each through yet another node.
    pub async fn start(pg: &TempPostgres, users: usize) -> Cluster {
        let url = pg.database("chaos");
        let upstream: SocketAddr = url
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .parse()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::start();
        let mut proxies = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..3u8 {
            let proxy = FaultProxy::start(upstream).await;
            let spec = NodeSpec {
                name: format!("n{}", i + 1),
                ip: Ipv4Addr::new(127, 0, 0, 2 + i),
                db: format!("postgres://wuts@{}/chaos", proxy.addr()),
                lease_ttl: LEASE_TTL,
                dir: dir.path().to_owned(),
                weight: None,
                extra: Vec::new(),
            };
            proxies.push(proxy);
            nodes.push(tokio::task::block_in_place(|| Node::start(spec, &sim)));
        }
        let db = PgConnection::connect(&url).await.unwrap();
        let mut c = Cluster {
            sim,
            nodes,
            proxies,
            users: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(40))
                .build()
                .unwrap(),
            db,
            dir,
        };
        let (_, tenant) = call(
            c.http
                .post(format!("{}/admin/tenants", c.nodes[0].base))
                .bearer_auth(ADMIN)
                .json(&json!({"name": "Chaos"})),
        )
        .await;
        for i in 0..users {
            let user = c.pair_new(&tenant["id"], i).await;
            c.users.push(user);
        }
        c
    }

    async fn pair_new(&self, tenant: &Value, i: usize) -> User {
        let made_on = &self.nodes[i % 3].base;
        let paired_on = &self.nodes[(i + 1) % 3].base;
        let (status, user) = call(
            self.http
                .post(format!("{made_on}/admin/users"))
                .bearer_auth(ADMIN)
                .json(&json!({"tenant_id": tenant, "name": format!("User {i}")})),
        )
        .await;
        assert_eq!(status, 201, "{user}");
        let id = user["id"].as_str().unwrap().to_owned();
        let (status, body) = call(
            self.http
                .post(format!("{paired_on}/admin/users/{id}/pair"))
                .bearer_auth(ADMIN),
        )
        .await;
        assert!(status < 300, "{status} {body}");
        let qr = self
            .until("a QR code", Duration::from_secs(30), || async {
                let (status, body) = call(
                    self.http
                        .get(format!("{paired_on}/admin/users/{id}/qr"))
                        .bearer_auth(ADMIN),
                )
                .await;
                (status == 200).then(|| body["code"].clone())
            })
            .await;
        let phone = format!("551190000{:04}", 100 + i);
        let (status, body) = call(
            self.http
                .post(format!("{}/scan", self.sim.control()))
                .json(&json!({"qr": qr, "phone": phone})),
        )
        .await;
        assert!(status < 300, "{status} {body}");
        let view = self.wait_user_state(&id, "connected").await;
        User {
            id,
            token: user["token"].as_str().unwrap().to_owned(),
            jid: view["jid"].as_str().unwrap().to_owned(),
            device: i as i64 + 1,
        }
    }

    /// Polls `check` every 100 ms until it gives a value; panics after `within`.
    pub async fn until<F, Fut, T>(&self, what: &str, within: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "never: {what}\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("===== {} =====\n{}", n.spec.name, tail(&n.log(), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The user's view, asked of any running node (the first that answers).
    pub async fn user_view(&self, id: &str) -> Option<Value> {
        self.other_view(usize::MAX, id).await
    }

    pub async fn wait_user_state(&self, id: &str, want: &str) -> Value {
        self.until(
            &format!("user {id} {want}"),
            Duration::from_secs(60),
            || async { self.user_view(id).await.filter(|v| v["state"] == want) },
        )
        .await
    }

    /// `POST /admin/users/{id}/connect` through some node.
    pub async fn connect(&self, id: &str) {
        let base = &self.nodes.iter().find(|n| n.is_up()).unwrap().base;
        let (status, body) = call(
            self.http
                .post(format!("{base}/admin/users/{id}/connect"))
                .bearer_auth(ADMIN),
        )
        .await;
        assert!(status < 300, "connect: {status} {body}");
    }

    /// device → owner node, from the database.
    pub async fn owners(&mut self) -> BTreeMap<i64, Option<String>> {
        sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT device_id, owner_node FROM wuts_device_owner",
        )
        .fetch_all(&mut self.db)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Live active nodes and their weights.
    async fn active(&mut self) -> Vec<(String, i32)> {
        sqlx::query_as::<_, (String, i32)>(
            "SELECT node_id, weight FROM wuts_node WHERE state = 'active' AND expires_at > now()",
        )
        .fetch_all(&mut self.db)
        .await
        .unwrap()
    }

    /// The node (index) owning the most devices.
    pub async fn busiest(&mut self) -> usize {
        let owners = self.owners().await;
        (0..self.nodes.len())
            .max_by_key(|i| {
                let name = &self.nodes[*i].spec.name;
                owners
                    .values()
                    .filter(|o| o.as_deref() == Some(name))
                    .count()
            })
            .unwrap()
    }

    /// Why the cluster is not settled yet, or `None` when it is: every device owned by a live
    /// node at its rendezvous place, logged in at the sandbox, and `connected` in the API.
    async fn unsettled(&mut self) -> Option<String> {
        let active = self.active().await;
        let candidates: Vec<Candidate<'_>> = active
            .iter()
            .map(|(node, weight)| Candidate {
                node,
                weight: *weight as u32,
            })
            .collect();
        let owners = self.owners().await;
        for u in &self.users {
            let place = place(&u.device.to_string(), &candidates);
            let owner = owners.get(&u.device).cloned().flatten();
            if owner.as_deref() != place {
                return Some(format!("device {} at {owner:?}, place {place:?}", u.device));
            }
        }
        let (_, devices) = call(self.http.get(format!("{}/devices", self.sim.control()))).await;
        let connected = devices
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["connected"] == true)
            .count();
        if connected != self.users.len() {
            return Some(format!("{connected} devices logged in at the sandbox"));
        }
        for u in &self.users {
            match self.user_view(&u.id).await {
                Some(v) if v["state"] == "connected" => {}
                other => return Some(format!("user {}: {other:?}", u.id)),
            }
        }
        None
    }

    pub async fn wait_settled(&mut self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let Some(why) = self.unsettled().await else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "not settled {what}: {why}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until node `i` owns no device and every user is connected again elsewhere.
    pub async fn wait_moved_off(&mut self, i: usize, within: Duration) {
        let name = self.nodes[i].spec.name.clone();
        let deadline = Instant::now() + within;
        loop {
            let owners = self.owners().await;
            let mut why = owners
                .iter()
                .find(|(_, o)| o.as_deref() == Some(name.as_str()))
                .map(|(d, _)| format!("device {d} still on {name}"));
            if why.is_none() {
                for u in &self.users {
                    let view = self.other_view(i, &u.id).await;
                    if view.as_ref().is_none_or(|v| v["state"] != "connected") {
                        why = Some(format!("user {}: {view:?}", u.id));
                        break;
                    }
                }
            }
            let Some(why) = why else { return };
            assert!(
                Instant::now() < deadline,
                "{name}'s devices never moved: {why}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A user's view from a node other than `i`.
    async fn other_view(&self, i: usize, id: &str) -> Option<Value> {
        for (j, n) in self.nodes.iter().enumerate() {
            if j == i || !n.is_up() {
                continue;
            }
            let r = self
                .http
                .get(format!("{}/admin/users/{id}", n.base))
                .bearer_auth(ADMIN)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(r) = r
                && r.status() == 200
            {
                return r.json().await.ok();
            }
        }
        None
    }

    pub fn stop(mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
