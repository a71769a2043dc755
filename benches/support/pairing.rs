//! Pairing many devices quickly for the benches: in-process through the sandbox's phone, with
//! a small first pre-key upload.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures_util::StreamExt;
use wuts::client::api::DeviceEvent;
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::noise::PublicKey;

/// A client for the sandbox at `ws_url`. Pre-keys live in the store, not in a device's memory:
/// a first upload of 30 instead of WA Web's 812 makes pairing thousands of devices take
/// seconds, not minutes.
pub fn client_config(ws_url: String, root: PublicKey) -> ClientConfig {
    ClientConfig {
        ws_url,
        engine: Arc::new(EngineConfig {
            trusted_root: root,
            pre_key_batch: (30, 30),
            ..EngineConfig::default()
        }),
        ..ClientConfig::default()
    }
}

/// Creates and pairs `n` devices on `reg`, 64 at a time: the sandbox's phone (control API at
/// `control`) scans each QR code as phone number `prefix` followed by 11 digits.
pub async fn pair_many(reg: &Registry, control: &str, n: usize, prefix: &str) {
    let http = reqwest::Client::new();
    futures_util::stream::iter(0..n)
        .for_each_concurrent(64, |i| {
            let http = http.clone();
            async move {
                let client = reg.create_device().await.unwrap();
                let mut rx = client.subscribe();
                client.pair().await.unwrap();
                loop {
                    match rx.recv().await.unwrap() {
                        DeviceEvent::Qr(qr) => {
                            let phone = format!("{prefix}{i:011}");
                            let body = serde_json::json!({"qr": qr.code, "phone": phone});
                            let r = http
                                .post(format!("{control}/scan"))
                                .json(&body)
                                .send()
                                .await
                                .unwrap();
                            assert!(r.status().is_success(), "scan: {}", r.status());
                        }
                        DeviceEvent::Connected => break,
                        _ => {}
                    }
                }
            }
        })
        .await;
}
