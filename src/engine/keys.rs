//! Device credentials: creating them (facts §4.6, §8) and moving keys between the store's plain
//! byte types and the Noise layer's key types.

use rand_core::{CryptoRng, RngCore};
use wuts_store as store;

use crate::noise::{self, xeddsa};

/// Fresh credentials for a new device (signed pre-key id 1, as every reference): noise and identity key pairs, the signed pre-key
/// (XEdDSA by the identity key over `05 || public`), a registration id in libsignal's range and
/// the ADV secret the phone will HMAC with.
pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> store::DeviceKeys {
    let noise = noise::KeyPair::generate(rng);
    let identity = to_store(&noise::KeyPair::generate(rng));
    let signed_pre_key = signed_pre_key(rng, &identity, store::PreKeyId::FIRST);
    let mut adv = [0u8; 32];
    rng.fill_bytes(&mut adv);
    store::DeviceKeys {
        noise: to_store(&noise),
        identity,
        signed_pre_key,
        registration_id: store::RegistrationId::from_random(rng.next_u32()),
        adv_secret: store::AdvSecret::from_bytes(adv),
    }
}

/// A fresh signed pre-key with this id: XEdDSA by the identity key over `05 || public`.
pub fn signed_pre_key(
    rng: &mut (impl RngCore + CryptoRng),
    identity: &store::KeyPair,
    id: store::PreKeyId,
) -> store::SignedPreKey {
    let spk = noise::KeyPair::generate(rng);
    let mut msg = [0u8; 33];
    msg[0] = 0x05;
    msg[1..].copy_from_slice(spk.public().as_bytes());
    let signature = xeddsa::sign_with_rng(to_noise(identity).secret(), &msg, rng);
    store::SignedPreKey {
        id,
        key_pair: to_store(&spk),
        signature: store::Signature::from_bytes(signature),
    }
}

/// A store key pair as a Noise key pair.
pub fn to_noise(kp: &store::KeyPair) -> noise::KeyPair {
    noise::KeyPair::from_secret(noise::SecretKey::from_bytes(*kp.private.as_bytes()))
}

/// A Noise key pair as store bytes.
pub fn to_store(kp: &noise::KeyPair) -> store::KeyPair {
    store::KeyPair {
        private: store::PrivateKey::from_bytes(*kp.secret().to_bytes()),
        public: store::PublicKey::from_bytes(*kp.public().as_bytes()),
    }
}

/// One-time pre-keys with consecutive ids from `first`.
pub fn one_time_pre_keys(
    rng: &mut (impl RngCore + CryptoRng),
    first: store::PreKeyId,
    count: usize,
) -> Vec<store::OneTimePreKey> {
    let mut id = first;
    (0..count)
        .map(|_| {
            let key = store::OneTimePreKey {
                id,
                key_pair: to_store(&noise::KeyPair::generate(rng)),
            };
            id = id.next();
            key
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn signed_pre_key_verifies_under_the_identity_key() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let keys = generate(&mut rng);
        let mut msg = vec![0x05];
        msg.extend_from_slice(keys.signed_pre_key.key_pair.public.as_bytes());
        let identity = to_noise(&keys.identity);
        assert!(xeddsa::verify(
            identity.public(),
            &msg,
            keys.signed_pre_key.signature.as_bytes()
        ));
        assert_eq!(
            to_noise(&keys.noise).public().as_bytes(),
            keys.noise.public.as_bytes()
        );
    }
}
