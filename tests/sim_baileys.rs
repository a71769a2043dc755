//! Fidelity proof with a third-party client: Baileys (from npm, outside this repository) trusts
//! the sandbox root, completes the Noise handshake, shows a QR code, is paired by the simulated
//! phone (so it accepted our pair-success and we accepted its pair-device-sign), restarts on
//! the 515 and logs in.
//!
//! Skipped (passes with a note) unless `node` runs and `WUTS_BAILEYS_DIR` names a directory
//! where `npm install baileys@7.0.0-rc14` was run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wuts::sim::{Sandbox, SandboxConfig};

fn baileys_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("WUTS_BAILEYS_DIR")?);
    let node = Command::new("node").arg("--version").output().ok()?;
    (node.status.success() && dir.join("node_modules/baileys/package.json").exists()).then_some(dir)
}

#[tokio::test]
async fn baileys_pairs_and_logs_in_against_the_sandbox() {
    let Some(dir) = baileys_dir() else {
        eprintln!("skipped: set WUTS_BAILEYS_DIR to a directory with node_modules/baileys");
        return;
    };
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
