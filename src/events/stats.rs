//! Delivery counters, the queue gauges and the latency histogram, for `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use wuts_store::gateway::UserId;

use super::unix_now;

/// Latency buckets (seconds) of the delivery histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Delivery counters for `/metrics`.
#[derive(Default)]
pub(crate) struct Stats {
    pub(super) delivered: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead: AtomicU64,
    /// Device events dropped because the outbox writer was too far behind.
    pub(super) dropped: AtomicU64,
    /// Owed deliveries.
    pub(super) queue: AtomicI64,
    /// Creation time of each lane's head, for the oldest-undelivered gauge.
    heads: Mutex<HashMap<(UserId, u64), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Stats {
    pub(super) fn observe(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    pub(super) fn set_head(&self, lane: &(UserId, u64), created_at: Option<u64>) {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        match created_at {
            Some(t) => heads.insert(lane.clone(), t),
            None => heads.remove(lane),
        };
    }

    pub(super) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        counter(
            out,
            "wuts_webhook_delivered_total",
            "Webhook deliveries answered with a 2xx.",
            &self.delivered,
        );
        counter(
            out,
            "wuts_webhook_failed_total",
            "Webhook attempts that failed.",
            &self.failed,
        );
        counter(
            out,
            "wuts_webhook_retried_total",
            "Webhook retries scheduled.",
            &self.retried,
        );
        counter(
            out,
            "wuts_events_dropped_total",
            "Device events dropped because the outbox writer was too far behind.",
            &self.dropped,
        );
        counter(
            out,
            "wuts_webhook_dead_lettered_total",
            "Webhook deliveries given up.",
            &self.dead,
        );
        let _ = writeln!(
            out,
            "# HELP wuts_webhook_queue_depth Webhook deliveries owed.\n# TYPE wuts_webhook_queue_depth gauge\nwuts_webhook_queue_depth {}",
            self.queue.load(Ordering::Relaxed).max(0)
        );
        let oldest = self
            .heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .min()
            .map(|t| unix_now().saturating_sub(*t))
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP wuts_webhook_oldest_undelivered_seconds Age of the oldest event a lane is delivering.\n# TYPE wuts_webhook_oldest_undelivered_seconds gauge\nwuts_webhook_oldest_undelivered_seconds {oldest}"
        );
        let name = "wuts_webhook_delivery_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Webhook attempt latency.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}
