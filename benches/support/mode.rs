//! Measurement or smoke test. `cargo bench` passes `--bench`; `cargo test --benches` (and
//! `--all-targets`) runs a `harness = false` bench with no argument at all, and the test suite
//! must not wait minutes for full-size runs, so anything without `--bench` is a smoke test.

/// True unless `--bench` was given (`--test` also means smoke, as in Criterion's test mode).
/// A smoke run says so on stdout, so nobody takes its figures for measurements.
pub fn smoke(bench: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test");
    if smoke {
        println!(
            "{bench}: smoke mode (no --bench argument): smallest sizes, the figures measure nothing"
        );
    }
    smoke
}
