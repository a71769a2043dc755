//! Sample values shared by the integration tests.

#![allow(dead_code, clippy::expect_used)] // Each test binary uses a different subset; samples are valid.

use std::error::Error;

use wuts_store::{
    AdvSecret, DeviceKeys, KeyPair, OneTimePreKey, PairedIdentity, PreKeyId, PrivateKey, PublicKey,
    RegistrationId, Signature, SignedPreKey,
};

pub type TestResult = Result<(), Box<dyn Error>>;

pub fn key_pair(seed: u8) -> KeyPair {
    KeyPair {
        private: PrivateKey::from_bytes([seed; 32]),
        public: PublicKey::from_bytes([seed.wrapping_mul(3); 32]),
    }
}

/// Distinct credentials per `seed`.
pub fn device_keys(seed: u8) -> DeviceKeys {
    DeviceKeys {
        noise: key_pair(seed),
        identity: key_pair(seed.wrapping_add(1)),
        signed_pre_key: SignedPreKey {
            id: PreKeyId::FIRST,
            key_pair: key_pair(seed.wrapping_add(2)),
            signature: Signature::from_bytes([seed; 64]),
        },
        registration_id: RegistrationId::from_random(u32::from(seed) * 1000),
        adv_secret: AdvSecret::from_bytes([seed.wrapping_add(3); 32]),
    }
}

pub fn paired(jid: &str) -> PairedIdentity {
    PairedIdentity {
        jid: jid.parse().expect("a device JID"),
        lid: Some("236395184570386:77@lid".parse().expect("a LID")),
        platform: "android".to_owned(),
        business_name: Some("Padaria".to_owned()),
        signed_device_identity: vec![0x0A, 0x78, 0x12, 0x20, 0x00, 0xFF],
        account_signature_key: PublicKey::from_bytes([0x42; 32]),
        key_index: 19,
    }
}

/// `count` pre-keys with consecutive ids starting at `from`.
pub fn pre_keys(from: u32, count: u32) -> Result<Vec<OneTimePreKey>, Box<dyn Error>> {
    (from..from + count)
        .map(|id| {
            Ok(OneTimePreKey {
                id: PreKeyId::new(id).ok_or("pre-key id out of range")?,
                key_pair: key_pair(id.to_be_bytes()[3]),
            })
        })
        .collect()
}

pub fn pre_key_id(id: u32) -> Result<PreKeyId, Box<dyn Error>> {
    Ok(PreKeyId::new(id).ok_or("pre-key id out of range")?)
}
