//! Webhook delivery lanes: one task per (user, device), delivering that device's owed events
//! in sequence order, one at a time, so order is kept per device and a slow or dead receiver
//! holds up only its own lane. The owed work is the outbox's pending marks, not memory, so a
//! lane's queue is bounded by nothing in RAM and survives a restart.
//!
//! An attempt: sign, POST within the configuration's timeout, any 2xx is delivered. A failure
//! waits (exponential backoff from [`WebhookSettings::retry_base`], doubled per attempt, capped
//! at `retry_max`, with jitter in [½, 1]; or the receiver's `Retry-After`, capped the
//! same) and tries again, until `retry_attempts` retries or `max_age` have passed: then the
//! delivery is dead-lettered (kept, listed, and redeliverable).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use wuts_store::gateway::UserId;
use wuts_store::gateway::outbox::PendingDelivery;

use super::hub::{Inner, webhook_for};
use super::model::Envelope;
use super::outbound::{self, Request};
use super::sign;
use super::stats::Stats;
use super::unix_now;
use super::webhook::signing_key;
use crate::client::api::DeviceId;

/// How deliveries are retried, and where they may go.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Allow private, loopback and link-local targets (`--webhook-allow-private`).
    pub allow_private: bool,
    /// The first retry's delay; each further one doubles it.
    pub retry_base: Duration,
    /// The longest delay between attempts (also caps `Retry-After`).
    pub retry_max: Duration,
    /// An event older than this is dead-lettered instead of retried.
    pub max_age: Duration,
    /// Events kept per user, for stream resumes and the delivery log (older ones go, unless a
    /// delivery is still owed).
    pub retain_events: u64,
    /// Cluster mode: how often the owed deliveries are read again, so a node that took a
    /// device over resumes its lane (lanes run only on the node running their device).
    pub rescan: Option<Duration>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(24 * 60 * 60),
            retain_events: 10_000,
            rescan: None,
        }
    }
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not attempted yet.
    #[default]
    Pending,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
    /// A 2xx answer.
    Delivered,
    /// Gave up (attempts or age exhausted); redeliverable.
    Dead,
    /// The webhook was removed, disabled or no longer wants the event when its turn came.
    Skipped,
}

/// One event's delivery, as `GET /webhook/deliveries` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The event's id (also `webhook-id`).
    pub id: String,
    /// The event's sequence number (the stream's `id:`).
    pub seq: u64,
    /// The event's name.
    pub event: String,
    /// Its device.
    pub device_id: Option<String>,
    /// The lane (the device's store id).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub lane: u64,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made, over every round.
    pub attempts: u32,
    /// Attempts in this round (since the last redelivery).
    #[serde(default)]
    pub round_attempts: u32,
    /// Where the last attempt went.
    pub url: Option<String>,
    /// The last answer's HTTP status.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, in words.
    pub last_error: Option<String>,
    /// The last attempt's duration, milliseconds.
    pub latency_ms: Option<u64>,
    /// Unix seconds: when the event happened.
    pub created_at: u64,
    /// Unix seconds: the last change.
    pub updated_at: u64,
    /// Unix seconds: the next attempt, while retrying.
    pub next_attempt_at: Option<u64>,
    /// Unix seconds: when it was delivered.
    pub delivered_at: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl DeliveryRecord {
    pub(super) fn new(envelope: &Envelope, lane: u64, now: u64) -> Self {
        DeliveryRecord {
            id: envelope.id.clone(),
            event: envelope.event.as_str().to_owned(),
            device_id: envelope.device_id.clone(),
            lane,
            created_at: envelope.timestamp,
            updated_at: now,
            ..DeliveryRecord::default()
        }
    }

    /// As stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read back; `None` if it does not read.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The lanes running, each with its wake-up.
#[derive(Default)]
pub(crate) struct Lanes {
    running: Mutex<HashMap<(UserId, u64), Arc<Notify>>>,
    started: std::sync::atomic::AtomicBool,
    tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    handles: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(super) stats: Stats,
}

/// Starts lanes for every delivery still owed (after a restart), and in cluster mode keeps
/// looking for lanes of devices this node took over.
pub(super) fn resume(inner: Arc<Inner>) {
    inner.lanes.started.store(true, Ordering::SeqCst);
    let scanner = inner.clone();
    let handle = tokio::spawn(async move {
        let inner = scanner;
        let mut first = true;
        loop {
            let scan = inner.clone();
            let owed =
                tokio::task::spawn_blocking(move || scan.store.outbox().pending_deliveries()).await;
            match owed {
                Ok(Ok(owed)) => {
                    if first {
                        let count = i64::try_from(owed.len()).unwrap_or(i64::MAX);
                        inner.lanes.stats.queue.fetch_add(count, Ordering::Relaxed);
                    }
                    for p in owed {
                        wake(&inner, &p.user, p.lane);
                    }
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "owed webhook deliveries could not be read");
                }
                Err(error) => tracing::error!(%error, "the delivery scan failed"),
            }
            first = false;
            let Some(every) = inner.settings.rescan else {
                return;
            };
            tokio::time::sleep(every).await;
        }
    });
    inner
        .lanes
        .handles
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(handle);
}

/// Stops starting lanes and hands back the running ones' tasks, to abort and await (their owed
/// work stays in the outbox).
pub(super) fn stop(inner: &Arc<Inner>) -> Vec<tokio::task::JoinHandle<()>> {
    inner.lanes.started.store(false, Ordering::SeqCst);
    inner
        .lanes
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    std::mem::take(
        &mut *inner
            .lanes
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    )
}

/// Wakes (or starts) the lane of `(user, lane)`.
pub(super) fn wake(inner: &Arc<Inner>, user: &UserId, lane: u64) {
    // Cluster mode: a lane runs on the node running its device, so a delivery goes out once.
    if !inner.lanes.started.load(Ordering::SeqCst) || !inner.devices.runs_here(DeviceId::new(lane))
    {
        return;
    }
    let key = (user.clone(), lane);
    let mut running = inner
        .lanes
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(notify) = running.get(&key) {
        notify.notify_one();
        return;
    }
    let notify = Arc::new(Notify::new());
    running.insert(key.clone(), notify.clone());
    let handle = tokio::spawn(run_lane(inner.clone(), key, notify));
    inner
        .lanes
        .handles
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(handle);
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

async fn run_lane(inner: Arc<Inner>, key: (UserId, u64), notify: Arc<Notify>) {
    loop {
        if !inner.devices.runs_here(DeviceId::new(key.1)) {
            // The device moved to another node; its new owner runs the lane from here on.
            inner
                .lanes
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            return;
        }
        let wait = notify.notified();
        tokio::pin!(wait);
        wait.as_mut().enable();
        let (store_inner, user, lane) = (inner.clone(), key.0.clone(), key.1);
        let head = blocking(move || store_inner.store.outbox().first_pending(&user, lane)).await;
        match head {
            None => return,
            Some(Ok(Some(seq))) => deliver_one(&inner, &key, seq).await,
            Some(Ok(None)) => {
                inner.lanes.stats.set_head(&key, None);
                wait.await;
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "reading owed deliveries failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One attempt (or the wait before it) of the lane's head.
async fn deliver_one(inner: &Arc<Inner>, key: &(UserId, u64), seq: u64) {
    let (user, lane) = (key.0.clone(), key.1);
    let loader = inner.clone();
    let user2 = user.clone();
    let loaded = blocking(move || -> Result<_, wuts_store::Error> {
        let outbox = loader.store.outbox();
        let body = outbox
            .events_after(&user2, seq.saturating_sub(1), 1)?
            .into_iter()
            .find(|e| e.seq == seq)
            .map(|e| e.body);
        let record = outbox
            .delivery(&user2, seq)?
            .and_then(|b| DeliveryRecord::decode(&b));
        let config = webhook_for(&loader, &user2, DeviceId::new(lane))?;
        Ok((body, record, config))
    })
    .await;
    let Some(Ok((body, record, config))) = loaded else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    };
    let mark = PendingDelivery {
        user: user.clone(),
        lane,
        seq,
    };
    let Some(body) = body else {
        // The event is gone (its user was removed): nothing to deliver.
        finish(inner, key, &mark, None).await;
        return;
    };
    let mut record = record.unwrap_or_default();
    record.seq = seq;
    record.lane = lane;
    inner.lanes.stats.set_head(key, Some(record.created_at));
    let now = unix_now();
    let Some(config) = config.filter(|c| record.event.is_empty() || c.wants_name(&record.event))
    else {
        record.status = DeliveryStatus::Skipped;
        record.updated_at = now;
        finish(inner, key, &mark, Some(record)).await;
        return;
    };
    if let Some(at) = record.next_attempt_at.filter(|at| *at > now) {
        tokio::time::sleep(Duration::from_secs(at - now)).await;
    }
    let key_bytes = signing_key(&config.secret);
    let signed = sign::signed_body(&body, Some(&key_bytes));
    let timestamp = unix_now();
    let id = if record.id.is_empty() {
        format!("evt_{seq}")
    } else {
        record.id.clone()
    };
    let mut headers = vec![
        ("webhook-id".to_owned(), id.clone()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        (
            "webhook-signature".to_owned(),
            sign::standard_signature(&key_bytes, &id, timestamp, &signed),
        ),
    ];
    headers.extend(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let started = Instant::now();
    let answer = outbound::post(
        Request {
            url: config.webhook_url.clone(),
            headers,
            body: signed,
            timeout: Duration::from_secs(u64::from(config.timeout.max(1))),
            allow_private: inner.settings.allow_private,
        },
        inner.lanes.tls.get_or_init(outbound::tls_config),
    )
    .await;
    let latency = started.elapsed();
    inner.lanes.stats.observe(latency);
    let now = unix_now();
    record.attempts += 1;
    record.round_attempts += 1;
    record.url = Some(config.webhook_url.clone());
    record.latency_ms = Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
    record.updated_at = now;
    let stats = &inner.lanes.stats;
    let retry_after = match answer {
        Ok(a) if (200..300).contains(&a.status) => {
            record.status = DeliveryStatus::Delivered;
            record.last_status = Some(a.status);
            record.last_error = None;
            record.next_attempt_at = None;
            record.delivered_at = Some(now);
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            finish(inner, key, &mark, Some(record)).await;
            return;
        }
        Ok(a) => {
            record.last_status = Some(a.status);
            let excerpt = a.excerpt.chars().take(200).collect::<String>();
            record.last_error = Some(format!(
                "the receiver answered {}{}",
                a.status,
                if excerpt.is_empty() {
                    String::new()
                } else {
                    format!(": {excerpt}")
                }
            ));
            a.retry_after
        }
        Err(failure) => {
            record.last_status = None;
            record.last_error = Some(failure.to_string());
            None
        }
    };
    stats.failed.fetch_add(1, Ordering::Relaxed);
    let too_old = now.saturating_sub(record.created_at) >= inner.settings.max_age.as_secs();
    if record.round_attempts > config.retry_attempts || too_old {
        record.status = DeliveryStatus::Dead;
        record.next_attempt_at = None;
        stats.dead.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(user = %user, seq, event = %record.event, "webhook delivery dead-lettered");
        finish(inner, key, &mark, Some(record)).await;
        return;
    }
    let delay = retry_after
        .unwrap_or_else(|| backoff(&inner.settings, record.round_attempts))
        .min(inner.settings.retry_max);
    record.status = DeliveryStatus::Retrying;
    record.next_attempt_at = Some(now + delay.as_secs());
    stats.retried.fetch_add(1, Ordering::Relaxed);
    save(inner, &user, seq, &record).await;
    tokio::time::sleep(delay).await;
}

/// The delay before retry `n` (1-based): base × 2^(n-1), capped, times a jitter in [½, 1].
fn backoff(settings: &WebhookSettings, n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.saturating_sub(1).min(30));
    let full = settings
        .retry_base
        .saturating_mul(factor)
        .min(settings.retry_max);
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

async fn save(inner: &Arc<Inner>, user: &UserId, seq: u64, record: &DeliveryRecord) {
    let (saver, user, bytes) = (inner.clone(), user.clone(), record.encode());
    if let Some(Err(error)) =
        blocking(move || saver.store.outbox().save_delivery(&user, seq, &bytes)).await
    {
        tracing::warn!(%error, "delivery record not saved");
    }
}

/// The head is done (delivered, dead, skipped): record it and clear its mark.
async fn finish(
    inner: &Arc<Inner>,
    key: &(UserId, u64),
    mark: &PendingDelivery,
    record: Option<DeliveryRecord>,
) {
    let (saver, mark2) = (inner.clone(), mark.clone());
    let done = blocking(move || -> Result<(), wuts_store::Error> {
        let outbox = saver.store.outbox();
        if let Some(record) = record {
            outbox.save_delivery(&mark2.user, mark2.seq, &record.encode())?;
        }
        outbox.set_pending(&mark2, false)
    })
    .await;
    match done {
        Some(Ok(())) => {
            inner.lanes.stats.queue.fetch_sub(1, Ordering::Relaxed);
            inner.lanes.stats.set_head(key, None);
        }
        Some(Err(error)) => {
            tracing::warn!(%error, "delivery outcome not saved; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        None => {}
    }
}

/// Queues a delivery again. `id` is the event id or its sequence number.
pub(super) fn redeliver(
    inner: &Arc<Inner>,
    user: &UserId,
    id: &str,
) -> Result<Option<DeliveryRecord>, wuts_store::Error> {
    let outbox = inner.store.outbox();
    let found = match id.parse::<u64>() {
        Ok(seq) => outbox
            .delivery(user, seq)?
            .and_then(|b| DeliveryRecord::decode(&b)),
        Err(_) => outbox
            .deliveries(user, u64::MAX, 100_000)?
            .into_iter()
            .filter_map(|(_, b)| DeliveryRecord::decode(&b))
            .find(|r| r.id == id),
    };
    let Some(mut record) = found.filter(|r| r.seq > 0) else {
        return Ok(None);
    };
    let mark = PendingDelivery {
        user: user.clone(),
        lane: record.lane,
        seq: record.seq,
    };
    let was_owed = matches!(
        record.status,
        DeliveryStatus::Pending | DeliveryStatus::Retrying
    );
    record.status = DeliveryStatus::Pending;
    record.round_attempts = 0;
    record.next_attempt_at = None;
    record.updated_at = unix_now();
    outbox.save_delivery(user, record.seq, &record.encode())?;
    outbox.set_pending(&mark, true)?;
    outbox.flush_events()?;
    if !was_owed {
        inner.lanes.stats.queue.fetch_add(1, Ordering::Relaxed);
    }
    wake(inner, user, record.lane);
    Ok(Some(record))
}
