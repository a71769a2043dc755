//! `/metrics` in the Prometheus text format (version 0.0.4), written by hand: a few counters
//! and histograms behind short-held mutexes need no metrics framework.
//!
//! - `wuts_http_requests_total{route,method,status}` and
//!   `wuts_http_request_duration_seconds{route}`: every request, by route template.
//! - `wuts_whatsapp_iq_duration_seconds{iq,outcome}`: how long WhatsApp took, measured around
//!   the device call.
//! - `wuts_devices{state}`: the users' devices by state, read at scrape time.
//! - `wuts_device_reconnects_total`: from the registry's counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::client::api::DeviceState;

/// Upper bounds of the histogram buckets, in seconds: from a fast local round trip to
/// WhatsApp's 75 s IQ timeout.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 75.0,
];

/// Every device state, so each is exported even at zero.
const STATES: [DeviceState; 7] = [
    DeviceState::Unpaired,
    DeviceState::Pairing,
    DeviceState::Connecting,
    DeviceState::Connected,
    DeviceState::Disconnected,
    DeviceState::LoggedOut,
    DeviceState::Error,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Cumulative counts are computed when rendering; these are per bucket.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            if let Some(bucket) = self.buckets.get_mut(i) {
                *bucket += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The gateway's own measurements.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    iq: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    /// Cluster mode: requests passed to the node owning their device.
    forwarded: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Counts one request forwarded to another node.
    pub(crate) fn forwarded(&self) {
        self.forwarded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts one finished request.
    pub(crate) fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Records how long an IQ took and whether it succeeded.
    pub(crate) fn observe_iq(&self, iq: &'static str, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.iq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((iq, outcome))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// The exposition text. `devices` are the states of the users' devices now.
    pub(crate) fn render(&self, devices: &[DeviceState], reconnects: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP wuts_devices Devices of gateway users, by state.\n");
        out.push_str("# TYPE wuts_devices gauge\n");
        for state in STATES {
            let count = devices.iter().filter(|s| **s == state).count();
            let _ = writeln!(out, "wuts_devices{{state=\"{}\"}} {count}", state.as_str());
        }

        out.push_str(
            "# HELP wuts_device_reconnects_total Connections re-established after a drop.\n",
        );
        out.push_str("# TYPE wuts_device_reconnects_total counter\n");
        let _ = writeln!(out, "wuts_device_reconnects_total {reconnects}");

        out.push_str(
            "# HELP wuts_cluster_forwarded_requests_total Requests passed to the node owning their device.\n",
        );
        out.push_str("# TYPE wuts_cluster_forwarded_requests_total counter\n");
        let forwarded = self.forwarded.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "wuts_cluster_forwarded_requests_total {forwarded}");

        out.push_str(
            "# HELP wuts_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE wuts_http_requests_total counter\n");
        for ((route, method, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "wuts_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }

        out.push_str("# HELP wuts_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE wuts_http_request_duration_seconds histogram\n");
        for (route, histogram) in self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = format!("route=\"{}\"", escape(route));
            histogram.render(&mut out, "wuts_http_request_duration_seconds", &labels);
        }

        out.push_str(
            "# HELP wuts_whatsapp_iq_duration_seconds WhatsApp IQ round trips by IQ and outcome.\n",
        );
        out.push_str("# TYPE wuts_whatsapp_iq_duration_seconds histogram\n");
        for ((iq, outcome), histogram) in self
            .iq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = format!("iq=\"{iq}\",outcome=\"{outcome}\"");
            histogram.render(&mut out, "wuts_whatsapp_iq_duration_seconds", &labels);
        }
        out
    }
}

/// Escapes a label value (routes are our own templates, but a backslash or quote must never
/// break the format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        metrics.observe_request("/groups", "POST", 201, Duration::from_millis(3));
        metrics.observe_request("/groups", "POST", 201, Duration::from_millis(30));
        metrics.observe_iq("group_create", Duration::from_millis(2), true);
        let text = metrics.render(&[DeviceState::Connected, DeviceState::Connected], 4);
        assert!(text.contains("wuts_devices{state=\"connected\"} 2"));
        assert!(text.contains("wuts_devices{state=\"logged_out\"} 0"));
        assert!(text.contains("wuts_device_reconnects_total 4"));
        assert!(text.contains(
            "wuts_http_requests_total{route=\"/groups\",method=\"POST\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "wuts_http_request_duration_seconds_bucket{route=\"/groups\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "wuts_http_request_duration_seconds_bucket{route=\"/groups\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains(
            "wuts_whatsapp_iq_duration_seconds_count{iq=\"group_create\",outcome=\"ok\"} 1"
        ));
    }
}
