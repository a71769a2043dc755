//! Fidelity proof with a third-party client: Baileys (from npm, outside this repository) trusts
//! the sandbox root, completes the Noise handshake, shows a QR code, is paired by the simulated
//! phone (so it accepted our pair-success and we accepted its pair-device-sign), restarts on
//! the 515 and logs in.
//!
//! It needs `node` and `WUTS_BAILEYS_DIR` naming a directory where `npm install
//! baileys@7.0.0-rc14` was run (`.ci/run` does both). Without them a passing test would be a
//! lie, so this is a `harness = false` target (see Cargo.toml) whose `main` says so: it prints
//! `SKIPPED` and `0 passed, 0 failed, 1 skipped`, and where `CI` is set it fails instead (in CI
//! everything must run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use wuts::sim::{Sandbox, SandboxConfig};

const NAME: &str = "baileys_pairs_and_logs_in_against_the_sandbox";

fn main() -> ExitCode {
    let dir = match baileys_dir() {
        Ok(dir) => dir,
        Err(why) if in_ci() => {
            println!("sim_baileys: FAILED: {why}, and CI is set: in CI the proof must run");
            println!("0 passed, 1 failed, 0 skipped");
            return ExitCode::FAILURE;
        }
        Err(why) => {
            println!("sim_baileys: SKIPPED: {why} (.ci/run installs Baileys)");
            println!("0 passed, 0 failed, 1 skipped");
            return ExitCode::SUCCESS;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A failed check panics, as in any test; the panic message is printed by the default hook.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(baileys_pairs_and_logs_in_against_the_sandbox(dir));
    }));
    if outcome.is_err() {
        println!("sim_baileys: {NAME} ... FAILED");
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    println!("sim_baileys: {NAME} ... ok");
    println!("1 passed, 0 failed");
    ExitCode::SUCCESS
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
