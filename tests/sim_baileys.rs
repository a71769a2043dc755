//! Fidelity proof with a third-party client: Baileys (from npm, outside this repository) trusts
//! the sandbox root, completes the Noise handshake, shows a QR code, is paired by the simulated
//! phone (so it accepted our pair-success and we accepted its pair-device-sign), restarts on
//! the 515 and logs in. Then pairing by code: Baileys' own `requestPairingCode`, the sandbox's
//! phone types its code (so each side opened what the other sealed), and Baileys, started again
//! on its saved credentials, logs in. Then groups (`baileys/groups.rs`): Baileys runs its own
//! group calls against the sandbox and its group events fire from the sandbox's notifications.
//!
//! It needs `node` and `WUTS_BAILEYS_DIR` naming a directory where `npm install
//! baileys@7.0.0-rc14` was run (`.ci/run` does both). Without them a passing test would be a
//! lie, so this is a `harness = false` target (see Cargo.toml) whose `main` says so: it prints
//! `SKIPPED` and `0 passed, 0 failed, 3 skipped`, and where `CI` is set it fails instead (in CI
//! everything must run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use wuts::sim::{Sandbox, SandboxConfig};

#[path = "baileys/groups.rs"]
mod sim_baileys_groups;

const NAME: &str = "baileys_pairs_and_logs_in_against_the_sandbox";
const CODE_NAME: &str = "baileys_pairs_by_code_and_logs_in_again";
const GROUPS_NAME: &str = "baileys_runs_its_group_calls_and_hears_the_sandboxs_notifications";

fn main() -> ExitCode {
    let dir = match baileys_dir() {
        Ok(dir) => dir,
        Err(why) if in_ci() => {
            println!("sim_baileys: FAILED: {why}, and CI is set: in CI the proof must run");
            println!("0 passed, 3 failed, 0 skipped");
            return ExitCode::FAILURE;
        }
        Err(why) => {
            println!("sim_baileys: SKIPPED: {why} (.ci/run installs Baileys)");
            println!("0 passed, 0 failed, 3 skipped");
            return ExitCode::SUCCESS;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut passed, mut failed) = (0, 0);
    for name in [NAME, CODE_NAME, GROUPS_NAME] {
        // A failed check panics, as in any test; the panic message is printed by the default
        // hook.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let dir = dir.clone();
            runtime.block_on(async move {
                match name {
                    NAME => baileys_pairs_and_logs_in_against_the_sandbox(dir).await,
                    CODE_NAME => baileys_pairs_by_code_and_logs_in_again(dir).await,
                    _ => sim_baileys_groups::run(dir).await,
                }
            });
        }));
        if outcome.is_err() {
            println!("sim_baileys: {name} ... FAILED");
            failed += 1;
        } else {
            println!("sim_baileys: {name} ... ok");
            passed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether this runs in CI: `CI` set to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// The Baileys install to use, or why there is none.
fn baileys_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("WUTS_BAILEYS_DIR")
        .map(PathBuf::from)
        .ok_or("WUTS_BAILEYS_DIR is not set")?;
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|n| n.status.success()) {
        return Err("`node --version` does not run".to_owned());
    }
    if !dir.join("node_modules/baileys/package.json").exists() {
        return Err(format!(
            "WUTS_BAILEYS_DIR ({}) has no node_modules/baileys",
            dir.display()
        ));
    }
    Ok(dir)
}

async fn baileys_pairs_and_logs_in_against_the_sandbox(dir: PathBuf) {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let auth = tempfile::tempdir().unwrap();
    let root: String = sb
        .root_public_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/baileys/probe.mjs"
        ))
        .args([&sb.ws_url(), &root, auth.path().to_str().unwrap()])
        .env("BAILEYS_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("Baileys went quiet")
            .expect("Baileys exited")
    };
    let qr = next().await;
    assert_eq!(qr["event"], "qr", "{qr}");
    let paired = sb
        .scan(qr["qr"].as_str().unwrap(), "5511999999999")
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let e = next().await;
        let done = e["event"] == "open";
        events.push(e);
        if done {
            break;
        }
    }
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| *k != "qr")
        .collect();
    assert_eq!(kinds, ["paired", "close", "open"], "{events:?}");
    assert_eq!(
        events.iter().find(|e| e["event"] == "close").unwrap()["code"],
        515
    );
    assert_eq!(events.last().unwrap()["me"], paired.jid.as_str());
    let device = &sb.devices()[0];
    assert_eq!(
        device.prekeys, 812,
        "Baileys' pre-key upload passed the shape checks"
    );
    let _ = child.wait();
}

/// Baileys' probe on `auth`, with extra arguments; its JSON lines arrive on the receiver.
fn probe(
    dir: &std::path::Path,
    sb: &wuts::sim::SandboxHandle,
    auth: &std::path::Path,
    extra: &[&str],
) -> (
    std::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    script(dir, sb, auth, "probe.mjs", extra)
}

/// A script of `tests/baileys/` on `auth` (its stdin piped), with extra arguments; its JSON
/// lines arrive on the receiver.
fn script(
    dir: &std::path::Path,
    sb: &wuts::sim::SandboxHandle,
    auth: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (
    std::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let root: String = sb
        .root_public_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut child = Command::new("node")
        .arg(format!(
            "{}/tests/baileys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([&sb.ws_url(), &root, auth.to_str().unwrap()])
        .args(extra)
        .env("BAILEYS_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("Baileys went quiet")
        .expect("Baileys exited")
}

/// The events up to `open`, QR codes left out.
async fn until_open(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    loop {
        let e = next(rx).await;
        if e["event"] == "qr" {
            continue;
        }
        let done = e["event"] == "open";
        events.push(e);
        if done {
            return events;
        }
    }
}

async fn baileys_pairs_by_code_and_logs_in_again(dir: PathBuf) {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let auth = tempfile::tempdir().unwrap();
    let phone = "5511999990777";
    let (mut child, mut rx) = probe(&dir, &sb, auth.path(), &["code", phone]);
    let code = loop {
        let e = next(&mut rx).await;
        match e["event"].as_str() {
            Some("qr") => continue,
            Some("code") => break e["code"].as_str().unwrap().to_owned(),
            _ => panic!("expected Baileys' pairing code, got {e}"),
        }
    };
    assert_eq!(
        code.len(),
        8,
        "Baileys shows the code without a hyphen: {code}"
    );
    // A mistyped code first: the sandbox's phone cannot open Baileys' bundle.
    let wrong = format!(
        "{}{}",
        if code.starts_with('A') { 'B' } else { 'A' },
        &code[1..]
    );
    // Baileys sends its hello without waiting for the answer and shows the code at once: the
    // phone's first try may come before the server has the hello.
    let refused = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match sb.type_code(phone, &wrong).await {
                Err(wuts::sim::Error::Pairing(wuts::sim::PairingError::NoPairingCode(_))) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    })
    .await
    .expect("the sandbox got Baileys' hello");
    assert!(
        matches!(
            refused,
            Err(wuts::sim::Error::Pairing(
                wuts::sim::PairingError::WrongCode
            ))
        ),
        "{refused:?}"
    );
    let paired = sb.type_code(phone, &code).await.unwrap();
    let events = until_open(&mut rx).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["paired", "close", "open"], "{events:?}");
    assert_eq!(events.last().unwrap()["me"], paired.jid.as_str());
    let _ = child.wait();

    // Started again on the saved credentials: a login, no QR code, no pairing.
    let (mut child, mut rx) = probe(&dir, &sb, auth.path(), &[]);
    let first = next(&mut rx).await;
    assert_eq!(first["event"], "open", "{first}");
    assert_eq!(first["me"], paired.jid.as_str());
    let _ = child.wait();
    assert_eq!(sb.devices().len(), 1);
}
