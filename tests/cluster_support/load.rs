//! Load for the cluster chaos test: workers send `POST /groups` with an `Idempotency-Key` to
//! random nodes, retrying a key the way a careful client does, and keep every answer for the
//! checker. The group's name is its key, so the sandbox's records show every WhatsApp side
//! effect of every key.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What a request may wait for at most: the gateway's own deadline (a 10 s WhatsApp timeout,
/// a forward deadline 5 s longer, a store call timeout of 10 s) with room to spare. A request
/// running longer counts as a hang.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);

/// Answers a client retries with the same key: nothing happened, or the gateway says to
/// come back.
pub const RETRYABLE: [&str; 5] = [
    "DEVICE_FAILOVER",
    "DEVICE_OFFLINE",
    "SHUTTING_DOWN",
    "IDEMPOTENCY_KEY_IN_USE",
    "STORE_UNAVAILABLE",
];

/// Which nodes the workers may call, and which were faulted while a request was out.
pub struct Gates {
    bases: RwLock<Vec<String>>,
    down: Vec<AtomicBool>,
    era: Vec<AtomicU64>,
}

impl Gates {
    pub fn new(bases: Vec<String>) -> Arc<Gates> {
        let n = bases.len();
        Arc::new(Gates {
            bases: RwLock::new(bases),
            down: (0..n).map(|_| AtomicBool::new(false)).collect(),
            era: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Node `i` is about to be faulted (killed, paused, stopped): no new requests go there,
    /// and those out to it lose their answer honestly.
    pub fn fault(&self, i: usize) {
        self.down[i].store(true, Ordering::SeqCst);
        self.era[i].fetch_add(1, Ordering::SeqCst);
    }

    /// Node `i` serves again, at `base`.
    pub fn restore(&self, i: usize, base: &str) {
        self.bases.write().unwrap()[i] = base.to_owned();
        self.down[i].store(false, Ordering::SeqCst);
    }

    fn pick(&self, rng: &mut u64) -> Option<(usize, String, u64)> {
        let bases = self.bases.read().unwrap();
        let up: Vec<usize> = (0..bases.len())
            .filter(|i| !self.down[*i].load(Ordering::SeqCst))
            .collect();
        if up.is_empty() {
            return None;
        }
        let i = up[(next(rng) % up.len() as u64) as usize];
        Some((i, bases[i].clone(), self.era[i].load(Ordering::SeqCst)))
    }
}

/// One answer (or its absence).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub key: String,
    pub user: usize,
    pub node: usize,
    pub status: Option<u16>,
    pub code: Option<String>,
    /// The group created, on a 201.
    pub jid: Option<String>,
    pub took: Duration,
    /// When it was sent, Unix milliseconds.
    pub sent_ms: u64,
    /// No answer because the node itself was faulted while the request was out.
    pub node_faulted: bool,
    /// The transport error, when there was no answer.
    pub error: Option<String>,
}

/// The running workers.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
}

fn next(state: &mut u64) -> u64 {
    // xorshift64*: enough randomness to spread keys and nodes, reproducible per worker.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

impl Load {
    /// Starts `workers` workers over `tokens` (one per user).
    pub fn start(gates: Arc<Gates>, tokens: Vec<String>, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .build()
            .unwrap();
        let workers = (0..workers)
            .map(|w| {
                let (gates, tokens, stop, http) =
                    (gates.clone(), tokens.clone(), stop.clone(), http.clone());
                tokio::spawn(async move { work(w, gates, tokens, stop, http).await })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stops the workers (each finishes its current key) and returns every outcome.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for w in self.workers {
            all.extend(w.await.unwrap());
        }
        all
    }
}

async fn work(
    w: usize,
    gates: Arc<Gates>,
    tokens: Vec<String>,
    stop: Arc<AtomicBool>,
    http: reqwest::Client,
) -> Vec<Outcome> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1).wrapping_mul(0x1234_5678_9ABC);
    let mut out = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("chaos-w{w}-{n}");
        let user = (next(&mut rng) % tokens.len() as u64) as usize;
        // A key is retried until it has an outcome; a client gives up after a while.
        for _ in 0..40 {
            let Some((node, base, era)) = gates.pick(&mut rng) else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let o = send(&http, &gates, &base, node, era, &tokens[user], &key, user).await;
            let again =
                o.status.is_none() || o.code.as_deref().is_some_and(|c| RETRYABLE.contains(&c));
            out.push(o);
            if !again {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn send(
    http: &reqwest::Client,
    gates: &Gates,
    base: &str,
    node: usize,
    era: u64,
    token: &str,
    key: &str,
    user: usize,
) -> Outcome {
    let started = Instant::now();
    let answer = http
        .post(format!("{base}/groups"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"name": key, "participants": ["5511988887777"]}))
        .send()
        .await;
    let mut o = Outcome {
        key: key.to_owned(),
        user,
        node,
        status: None,
        code: None,
        jid: None,
        took: Duration::ZERO,
        sent_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        node_faulted: false,
        error: None,
    };
    match answer {
        Ok(r) => {
            o.status = Some(r.status().as_u16());
            let body: Value = r.json().await.unwrap_or(Value::Null);
            o.code = body["error_code"].as_str().map(str::to_owned);
            o.jid = body["group"]["jid"].as_str().map(str::to_owned);
        }
        Err(e) => o.error = Some(e.to_string()),
    }
    o.took = started.elapsed();
    o.node_faulted = gates.era[node].load(Ordering::SeqCst) != era;
    o
}
