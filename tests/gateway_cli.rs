//! `wuts serve` through the built binary: configuration errors, and a real start in sandbox mode
//! (the admin token printed once, graceful stop on SIGTERM, the token kept across restarts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};

fn serve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wuts"));
    command.arg("serve").args(args);
    for var in [
        "WUTS_CONFIG",
        "WUTS_LISTEN",
        "WUTS_DATA",
        "WUTS_WA_URL",
        "WUTS_WA_ROOT_KEY",
        "WUTS_SANDBOX",
        "WUTS_RESPONSE_STYLE",
        "WUTS_LOG_FORMAT",
        "WUTS_ADMIN_TOKEN",
        "WUTS_WA_REQUEST_TIMEOUT",
        "WUTS_WA_VERSION",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("wuts runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_setting() {
    let out = serve(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--data",
        "--wa-url",
        "--wa-root-key",
        "--sandbox",
        "--response-style",
        "--log-format",
        "--wa-request-timeout",
        "--admin-token",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    // Every flag names its variable beside it, WUTS_ADMIN_TOKEN included.
    for var in [
        "WUTS_CONFIG",
        "WUTS_LISTEN",
        "WUTS_DATA",
        "WUTS_WA_URL",
        "WUTS_WA_ROOT_KEY",
        "WUTS_WA_VERSION",
        "WUTS_SANDBOX",
        "WUTS_RESPONSE_STYLE",
        "WUTS_LOG_FORMAT",
        "WUTS_SHUTDOWN_TIMEOUT",
        "WUTS_HEADER_TIMEOUT",
        "WUTS_MAX_CONNECTIONS",
        "WUTS_STORE_CACHE_MB",
        "WUTS_IDEMPOTENCY_KEYS_PER_USER",
        "WUTS_WA_REQUEST_TIMEOUT",
        "WUTS_ADMIN_TOKEN",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "{var} in\n{help}");
    }
    let out = serve(&["--help"], &[("WUTS_ADMIN_TOKEN", "very-secret-token")]);
    assert!(
        !text(&out.stdout).contains("very-secret-token"),
        "the token's value stays hidden"
    );
}

#[test]
fn a_taken_port_fails_first_naming_the_address_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = serve(
        &[
            "--sandbox",
            "--listen",
            &addr,
            "--data",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("--listen"),
        "{stderr}"
    );
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(
        !stderr.contains("devices restored"),
        "nothing restored first: {stderr}"
    );
    assert!(!data.exists(), "the store was not even opened");
    assert!(
        !stderr.contains('\x1b'),
        "no colour codes when not a terminal: {stderr:?}"
    );
}

#[test]
fn bad_settings_exit_with_status_2() {
    let out = serve(&["--response-style", "fancy"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown response style"));
    let out = serve(&[], &[("WUTS_WA_ROOT_KEY", "xyz")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("wa_root_key"));
}

/// A running `wuts serve`, stopped with SIGTERM when dropped.
struct Running {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Running {
    fn start(data: &std::path::Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wuts"));
        command
            .args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env_remove("WUTS_ADMIN_TOKEN")
            .env_remove("WUTS_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("wuts serve starts");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Running { child, lines }
    }

    /// Stdout lines up to and including the `listening on` one.
    fn until_listening(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.expect("stdout line");
            let done = line.starts_with("listening on ");
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("wuts serve exited before listening: {seen:?}");
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("exits")
    }
}

/// A bare HTTP/1.1 GET; returns the status line and body.
fn get(base: &str, path: &str, bearer: Option<&str>) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_in_sandbox_mode_prints_the_admin_token_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Running::start(&data);
    let lines = first.until_listening();
    assert!(lines[0].starts_with("wuts "), "version first: {lines:?}");
    for setting in ["listen", "data", "sandbox", "wa_request_timeout  55s"] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(setting)),
            "{setting} in the summary: {lines:?}"
        );
    }
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("admin token (shown once, keep it): "))
        .expect("a generated admin token")
        .to_owned();
    let base = lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    assert!(get(&base, "/healthz", None).starts_with("HTTP/1.1 200"));
    let sandbox = get(&base, "/admin/sandbox", Some(&token));
    assert!(
        sandbox.starts_with("HTTP/1.1 200") && sandbox.contains("ws_url"),
        "{sandbox}"
    );
    assert!(first.stop().success(), "graceful exit on SIGTERM");

    // Restarted on the same data: no new token, and the first one still works.
    let mut second = Running::start(&data);
    let lines = second.until_listening();
    assert!(
        !lines.iter().any(|l| l.contains("admin token")),
        "{lines:?}"
    );
    let base = lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    assert!(get(&base, "/admin/sandbox", Some(&token)).starts_with("HTTP/1.1 200"));
    assert!(get(&base, "/admin/sandbox", Some("wrong")).starts_with("HTTP/1.1 401"));
    assert!(second.stop().success());
}

fn store(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wuts"));
    command
        .arg("store")
        .args(args)
        .env_remove("WUTS_ADMIN_TOKEN")
        .env_remove("WUTS_DATA")
        .envs(env.iter().copied());
    command.output().expect("wuts runs")
}

#[test]
fn store_backup_works_live_and_offline_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let mut running = Running::start(&data);
    let lines = running.until_listening();
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("admin token (shown once, keep it): "))
        .unwrap()
        .to_owned();
    let base = lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();

    // Live: the gateway holds the directory, so it is asked (with the admin token) to copy.
    let live = dir.path().join("live-backup");
    let live_arg = live.to_str().unwrap();
    let out = store(
        &["backup", live_arg, "--data", data_arg, "--gateway", &base],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("WUTS_ADMIN_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    let out = store(
        &["backup", live_arg, "--data", data_arg, "--gateway", &base],
        &[("WUTS_ADMIN_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("by the gateway"));
    let again = store(
        &["backup", live_arg, "--data", data_arg, "--gateway", &base],
        &[("WUTS_ADMIN_TOKEN", &token)],
    );
    assert!(!again.status.success(), "a backup never overwrites");
    assert!(running.stop().success());

    // Offline: copied directly.
    let offline = dir.path().join("offline-backup");
    let out = store(
        &["backup", offline.to_str().unwrap(), "--data", data_arg],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Restored into a new directory, the gateway starts with the same admin token.
    let restored = dir.path().join("restored");
    let out = store(
        &["restore", live_arg, "--data", restored.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut again = Running::start(&restored);
    let lines = again.until_listening();
    assert!(
        !lines.iter().any(|l| l.contains("admin token")),
        "{lines:?}"
    );
    let base = lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    assert!(get(&base, "/admin/sandbox", Some(&token)).starts_with("HTTP/1.1 200"));
    assert!(again.stop().success());
}

#[test]
fn probes_log_at_debug_and_logs_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wuts"));
    command
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env_remove("WUTS_CONFIG")
        .env("WUTS_ADMIN_TOKEN", "probe-test-token")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    let mut child = command.spawn().expect("wuts serve starts");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut running = Running { child, lines };
    let lines = running.until_listening();
    let base = lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            get(&base, probe, None).starts_with("HTTP/1.1 200"),
            "{probe}"
        );
    }
    assert!(get(&base, "/admin/sandbox", Some("probe-test-token")).starts_with("HTTP/1.1 200"));
    assert!(running.stop().success());
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("/admin/sandbox") && logged.contains("request finished"),
        "other requests are logged at INFO:\n{logged}"
    );
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert!(!logged.contains(probe), "{probe} logged at INFO:\n{logged}");
    }
    assert!(!logged.contains('\x1b'), "no colour codes in a file");
    assert!(!logged.contains("probe-test-token"), "no token in the logs");
}
