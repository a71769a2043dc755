//! Settings shared by every connection of a process.

use std::time::Duration;

use super::payload::ClientVersion;
use crate::noise::PublicKey;

/// Settings shared by every connection of a process.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Root key the server's certificate chain must lead to.
    pub trusted_root: PublicKey,
    /// The WhatsApp Web build presented in the payload.
    pub version: ClientVersion,
    /// Name shown in the phone's "Linked devices" list.
    pub os: String,
    /// How long an IQ may wait for its reply (whatsmeow: 75 s).
    pub iq_timeout: Duration,
    /// How long from connect to `success` or `pair-device`.
    pub setup_timeout: Duration,
    /// Keepalive pings go out at a random interval in this range (whatsmeow: 20-30 s).
    pub keepalive_interval: (Duration, Duration),
    /// A ping unanswered this long means the link is dead.
    pub keepalive_timeout: Duration,
    /// How long the first QR code is shown (60 s), and each later one (20 s).
    pub qr_ttl: (Duration, Duration),
    /// How long a pairing code is valid once WhatsApp accepted it (WhatsApp Web: about 180 s).
    pub pair_code_ttl: Duration,
    /// Below this many pre-keys on the server, upload more.
    pub min_pre_keys: u32,
    /// How many to upload when the server has none (WA Web: 812), and otherwise.
    pub pre_key_batch: (usize, usize),
    /// How often the signed pre-key is replaced: 27 days, the interval WA Web's `RotateKeyJob`
    /// returns to its scheduler (whatsapp-rust `SIGNED_PRE_KEY_ROTATION_INTERVAL_MS`).
    pub signed_pre_key_rotation: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            trusted_root: crate::noise::WHATSAPP_ROOT_KEY,
            version: ClientVersion::default(),
            os: "WUTS".into(),
            iq_timeout: Duration::from_secs(75),
            setup_timeout: Duration::from_secs(20),
            keepalive_interval: (Duration::from_secs(20), Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
            qr_ttl: (Duration::from_secs(60), Duration::from_secs(20)),
            pair_code_ttl: Duration::from_secs(180),
            min_pre_keys: 5,
            pre_key_batch: (812, 50),
            signed_pre_key_rotation: Duration::from_secs(27 * 24 * 60 * 60),
        }
    }
}
