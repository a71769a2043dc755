//! The gateway wired as `wuts serve --sandbox` wires it, for end-to-end tests: the in-process
//! sandbox on loopback, a real `SledStore` in a temp dir and the real device [`Registry`] over
//! it (restored at start), behind the shared harness (`gateway_harness`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test binary uses a subset.

#[path = "../gateway_harness/mod.rs"]
mod harness;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use harness::*;
use serde_json::Value;
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::engine::lifecycle::Settings;
use wuts::http::{GatewayConfig, ResponseStyle, SandboxInfo};
use wuts::sim::{Sandbox, SandboxConfig, SandboxHandle};
use wuts_store::SledStore;
use wuts_store::gateway::GatewayStore;

pub async fn sandbox(seed: u64) -> SandboxHandle {
    Sandbox::start(SandboxConfig {
        seed: Some(seed),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// How a gateway is started.
#[derive(Clone, Debug)]
pub struct Options {
    pub style: ResponseStyle,
    /// The engine's IQ timeout (short in tests that provoke a timeout).
    pub iq_timeout: Duration,
    /// How long QR codes are shown (first, later); short in tests that let pairing time out.
    pub qr_ttl: Option<(Duration, Duration)>,
    /// The root key the gateway trusts; the sandbox's unless a test wants it wrong.
    pub trusted_root: Option<wuts::noise::PublicKey>,
    /// How many times a fault (certificate, handshake) is retried.
    pub fault_retries: Option<u32>,
    /// Webhook delivery settings (tests with a loopback receiver allow private targets).
    pub webhooks: Option<wuts::http::WebhookSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            style: ResponseStyle::Wuts,
            iq_timeout: Duration::from_secs(15),
            qr_ttl: None,
            trusted_root: None,
            fault_retries: None,
            webhooks: None,
        }
    }
}

/// The registry's settings as `wuts serve` builds them (`build_devices`), pointed at the
/// sandbox. Debug builds generate pre-keys slowly, so the first batch is smaller than WA Web's
/// 812, and reconnects back off briefly.
pub fn client_config(sim: &SandboxHandle, iq_timeout: Duration) -> ClientConfig {
    ClientConfig {
        ws_url: sim.ws_url(),
        engine: Arc::new(EngineConfig {
            trusted_root: sim.root_public_key(),
            iq_timeout,
            pre_key_batch: (50, 50),
            ..EngineConfig::default()
        }),
        lifecycle: Settings {
            backoff: (Duration::from_millis(50), Duration::from_millis(500)),
            ..Settings::default()
        },
        ..ClientConfig::default()
    }
}

/// The real registry's gateway.
pub type E2eGateway = Gateway<Registry>;

/// Opens the store in `data`, restores the registry and serves, as `wuts serve` does.
pub async fn start(sim: &SandboxHandle, data: &Path, options: Options) -> E2eGateway {
    let store = Arc::new(SledStore::open(data).expect("store opens"));
    let mut client = client_config(sim, options.iq_timeout);
    let mut engine = (*client.engine).clone();
    engine.qr_ttl = options.qr_ttl.unwrap_or(engine.qr_ttl);
    engine.trusted_root = options.trusted_root.unwrap_or(engine.trusted_root);
    client.engine = Arc::new(engine);
    if let Some(n) = options.fault_retries {
        client.lifecycle.fault_retries = n;
    }
    let registry = Registry::new(store.clone(), client);
    registry.restore().expect("devices restored");
    let config = GatewayConfig {
        response_style: options.style,
        sandbox: Some(SandboxInfo {
            ws_url: sim.ws_url(),
            control_url: sim.control_url(),
        }),
        webhooks: options.webhooks.unwrap_or_default(),
        ..GatewayConfig::default()
    };
    let gateway_store: Arc<dyn GatewayStore> = store;
    serve(Arc::new(registry), gateway_store, config).await
}

/// What only the real registry's gateway can do.
impl E2eGateway {
    /// Pairs the user's device to `phone` over the admin API and the sandbox's phone, reading
    /// the event stream: it must say `state` (unpaired or logged out), `qr`, `paired`,
    /// `connected`, in that order. Returns the device JID.
    pub async fn pair(&self, sim: &SandboxHandle, user: &User, phone: &str) -> String {
        let mut events = self.events(user).await;
        let (name, state) = events.next().await;
        assert_eq!(name, "state");
        let state = state["state"].as_str().unwrap_or_default();
        assert!(["unpaired", "logged_out"].contains(&state), "{state}");

        let response = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/users/{}/pair", user.id),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let (name, qr) = events.next().await;
        assert_eq!(name, "qr", "{qr}");
        let code = qr["code"].as_str().unwrap().to_owned();
        // The same code is served by GET /qr.
        let shown: Value = self
            .admin(
                reqwest::Method::GET,
                &format!("/admin/users/{}/qr", user.id),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["code"], code.as_str());

        let paired = sim.scan(&code, phone).await.expect("the phone scans");
        let (name, data) = events.next().await;
        assert_eq!(name, "paired", "{data}");
        assert_eq!(data["jid"], paired.jid.as_str());
        let (name, data) = events.next().await;
        assert_eq!(name, "connected", "{data}");

        let shown = self.show_user(user).await;
        assert_eq!(shown["state"], "connected");
        assert_eq!(shown["jid"], paired.jid.as_str());
        paired.jid
    }

    /// Waits until the user's device is connected (after a restart).
    pub async fn connected(&self, user: &User) {
        let mut events = self.events(user).await;
        let (name, state) = events.next().await;
        assert_eq!(name, "state");
        if state["state"] != "connected" {
            events.wait_for("connected").await;
        }
    }
}
