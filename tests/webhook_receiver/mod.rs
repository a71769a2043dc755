//! A real webhook receiver on loopback for the event tests: an axum server that records every
//! POST and answers as scripted (fail the next N, always fail, hold requests at a gate), plus
//! signature checks written from the two specifications, independently of the gateway's code.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

/// Upper bound of every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// How the receiver answers.
pub struct Script {
    /// Answer 500 to this many more requests.
    pub fail_next: AtomicUsize,
    /// Answer 500 to every request.
    pub always_fail: AtomicBool,
    /// `Retry-After` on failures.
    pub retry_after: Mutex<Option<String>>,
    /// Requests wait until this is `true`.
    pub open: watch::Sender<bool>,
}

pub struct Receiver {
    pub url: String,
    pub port: u16,
    pub script: Arc<Script>,
    got: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Ctx {
    script: Arc<Script>,
    tx: mpsc::UnboundedSender<Received>,
}

async fn hook(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut open = ctx.script.open.subscribe();
    let _ = open.wait_for(|o| *o).await;
    let fail = ctx.script.always_fail.load(Ordering::SeqCst)
        || ctx
            .script
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if fail { 500 } else { 204 };
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let _ = ctx.tx.send(Received {
        headers,
        body: body.to_vec(),
        answered: status,
    });
    let mut out = HeaderMap::new();
    if fail {
        if let Some(after) = ctx.script.retry_after.lock().unwrap().clone() {
            out.insert("retry-after", after.parse().unwrap());
        }
    }
    (
        StatusCode::from_u16(status).unwrap(),
        out,
        "receiver says hi",
    )
}

impl Receiver {
    /// A receiver on a new loopback port.
    pub async fn start() -> Self {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    /// A receiver on `port` (one that was free).
    pub async fn start_on(port: u16) -> Self {
        Self::on(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap(),
        )
        .await
    }

    async fn on(listener: tokio::net::TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Script {
            fail_next: AtomicUsize::new(0),
            always_fail: AtomicBool::new(false),
            retry_after: Mutex::new(None),
            open: watch::channel(true).0,
        });
        let (tx, got) = mpsc::unbounded_channel();
        let app = Router::new().route("/hook", post(hook)).with_state(Ctx {
            script: script.clone(),
            tx,
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            script,
            got,
            task,
        }
    }

    /// The next request that arrives.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.got.recv())
            .await
            .expect("a delivery in time")
            .expect("the receiver runs")
    }

    /// The next request answered with a 2xx.
    pub async fn next_accepted(&mut self) -> Received {
        loop {
            let got = self.next().await;
            if got.answered < 300 {
                return got;
            }
        }
    }

    /// A request that has arrived already, without waiting.
    pub fn try_next(&mut self) -> Option<Received> {
        self.got.try_recv().ok()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The key a `whsec_` secret stands for (Standard Webhooks: base64 after the prefix).
pub fn key_of(secret: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap()
}

/// Standard Webhooks verification, from the specification: the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`, the header a space-separated list of
/// `v1,<base64 HMAC-SHA256>`, and the timestamp within five minutes of now.
pub fn verify_standard(secret: &str, got: &Received) -> Result<(), String> {
    let id = got.header("webhook-id");
    let timestamp = got.header("webhook-timestamp");
    if id.is_empty() || timestamp.is_empty() {
        return Err("missing webhook-id or webhook-timestamp".into());
    }
    let ts: i64 = timestamp.parse().map_err(|_| "timestamp not a number")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return Err("timestamp outside tolerance".into());
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac(
        &key_of(secret),
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", &got.body],
    ));
    let matches = got
        .header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .any(|(version, sig)| version == "v1" && sig == expected);
    if matches {
        Ok(())
    } else {
        Err(format!(
            "no v1 signature matches in {:?}",
            got.header("webhook-signature")
        ))
    }
}

/// The body field, by the recipe the API documents: cut `,"signature":"sha256=<64 hex>"}`
/// (87 bytes) from the end, put back `}`, HMAC-SHA256 that with the key, compare in hex.
pub fn verify_body(secret: &str, got: &Received) -> Result<(), String> {
    let body = &got.body;
    let json: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let field = json["signature"].as_str().ok_or("no signature field")?;
    let cut = body.len().checked_sub(87).ok_or("body too short")?;
    if !body[cut..].starts_with(b",\"signature\":\"sha256=") {
        return Err("the signature is not the last member".into());
    }
    let mut signed = body[..cut].to_vec();
    signed.push(b'}');
    let hex: String = hmac(&key_of(secret), &[&signed])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if field == format!("sha256={hex}") {
        Ok(())
    } else {
        Err("body signature mismatch".into())
    }
}
