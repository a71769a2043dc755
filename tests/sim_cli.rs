//! `wuts sim` through the built binary: the JSON line on stdout, a handshake with the printed
//! root key, the control API on the same listener, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use sim_support::{Companion, RawClient};
use wuts::noise::PublicKey;

/// Kills the child if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Running, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wuts sim runs");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (running, serde_json::from_str(&line).expect("one JSON line"))
}

fn root_key(info: &serde_json::Value) -> PublicKey {
    let hex = info["root_public_key"].as_str().unwrap();
    assert_eq!(hex.len(), 64);
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    PublicKey::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn prints_its_urls_and_root_then_serves_both() {
    let (mut child, info) = start(&["--listen", "127.0.0.1:0", "--seed", "7"]);
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["ws_url", "control_url", "root_public_key"]);
    let ws = info["ws_url"].as_str().unwrap();
    let control = info["control_url"].as_str().unwrap();
    assert!(
        ws.starts_with("ws://127.0.0.1:") && ws.ends_with("/ws/chat"),
        "{ws}"
    );
    assert_eq!(
        control,
        ws.replace("ws://", "http://")
            .replace("/ws/chat", "/control")
    );

    let c = Companion::new();
    let mut client = RawClient::connect(ws, root_key(&info), &c.noise, &c.registration_payload())
        .await
        .expect("handshake with the printed root");
    assert!(client.recv().await.child("pair-device").is_some());

    let devices: serde_json::Value = reqwest::get(format!("{control}/devices"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices, serde_json::json!([]));

    // The seed fixes the root key across runs.
    let (_again, info2) = start(&["--seed", "7"]);
    assert_eq!(info["root_public_key"], info2["root_public_key"]);

    #[cfg(unix)]
    {
        let pid = child.0.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn keeps_the_root_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let first = start(&["--data", path]).1["root_public_key"].clone();
    let second = start(&["--data", path]).1["root_public_key"].clone();
    assert_eq!(first, second);
    assert!(dir.path().join("sandbox.sled").is_dir());
}
