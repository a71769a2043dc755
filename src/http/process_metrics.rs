//! The `process_*` metrics Prometheus client libraries export by convention, and the build's
//! version, so dashboards made for any exporter show this process too. Linux reads `/proc`;
//! elsewhere the figures `/proc` gives are left out.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// When this process started, as near as the library can tell: the first time it was asked.
fn start_time() -> f64 {
    static START: OnceLock<f64> = OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    })
}

/// Marks the start; called when the gateway state is built.
pub(crate) fn mark_start() {
    start_time();
}

/// Resident memory in bytes, from `/proc/self/status` (`VmRSS:  1234 kB`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Virtual memory in bytes (`VmSize`).
fn virtual_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Open file descriptors.
fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// CPU time of the whole process (user and system), in seconds.
#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9)
}

#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

/// Appends the process metrics and `wuts_build_info` to `out`.
pub(crate) fn render(out: &mut String) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: Option<String>| {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    };
    gauge(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu_seconds().map(|s| format!("{s:.3}")),
    );
    gauge(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        resident_bytes().map(|b| b.to_string()),
    );
    gauge(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        virtual_bytes().map(|b| b.to_string()),
    );
    gauge(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        open_fds().map(|n| n.to_string()),
    );
    gauge(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft.to_string()),
    );
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        Some(format!("{:.0}", start_time())),
    );
    let _ = writeln!(
        out,
        "# HELP wuts_build_info The running build; the value is always 1.\n\
         # TYPE wuts_build_info gauge\n\
         wuts_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_process_figures_and_the_build() {
        mark_start();
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("process_start_time_seconds "), "{out}");
        assert!(out.contains("process_max_fds "), "{out}");
        assert!(out.contains("wuts_build_info{version=\""), "{out}");
        if cfg!(target_os = "linux") {
            for name in [
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "process_open_fds ",
            ] {
                assert!(out.contains(name), "{name} in {out}");
            }
        }
    }
}
