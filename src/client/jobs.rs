//! The store work a device's connection asks for, as plain synchronous functions: the driver
//! runs them on tokio's blocking pool, engine tests run them inline over `MemStore`.

use rand::SeedableRng;
use rand::rngs::{OsRng, StdRng};
use wuts_store::{DeviceId, MetaKey, OneTimePreKey, PairedIdentity, Store};

use crate::engine::keys;

/// For [`crate::engine::Event::NeedPreKeys`]: takes the stored keys not yet uploaded, generates
/// and durably adds the rest (from `seed`), and marks the batch uploaded (facts §5.5).
pub fn prepare_pre_keys(
    store: &dyn Store,
    id: DeviceId,
    n: usize,
    seed: [u8; 32],
) -> Result<Vec<OneTimePreKey>, wuts_store::Error> {
    let mut pending = store.pre_keys_to_upload(id, n)?;
    if pending.len() < n {
        let first = store.next_pre_key_id(id)?;
        let mut rng = StdRng::from_seed(seed);
        let fresh = keys::one_time_pre_keys(&mut rng, first, n - pending.len());
        store.add_pre_keys(id, &fresh)?;
        pending.extend(fresh);
    }
    let ids: Vec<_> = pending.iter().map(|k| k.id).collect();
    store.mark_pre_keys_uploaded(id, &ids)?;
    Ok(pending)
}

/// After a logout: fresh keys, no pairing, durably; the device keeps its id.
pub fn reset(store: &dyn Store, id: DeviceId) -> Result<(), wuts_store::Error> {
    store.reset_device(id, &keys::generate(&mut OsRng))
}

/// The mark of a pairing saved but not yet accepted by a login.
fn unconfirmed_key() -> Result<MetaKey, wuts_store::Error> {
    MetaKey::new("pairing-unconfirmed")
}

/// For [`crate::engine::Event::SavePairing`]: marks the pairing unconfirmed, then saves it
/// durably (the durable write flushes the mark too, so a crash leaves both or neither).
pub fn save_pairing(
    store: &dyn Store,
    id: DeviceId,
    identity: &PairedIdentity,
) -> Result<(), wuts_store::Error> {
    store.set_meta(id, &unconfirmed_key()?, b"1")?;
    store.save_pairing(id, identity)
}

/// Whether the device's pairing still waits for its first accepted login.
pub fn is_unconfirmed(store: &dyn Store, id: DeviceId) -> Result<bool, wuts_store::Error> {
    Ok(store.meta(id, &unconfirmed_key()?)?.is_some())
}

/// A login accepted the pairing.
pub fn confirm_pairing(store: &dyn Store, id: DeviceId) -> Result<(), wuts_store::Error> {
    store.remove_meta(id, &unconfirmed_key()?)?;
    store.flush()
}

/// The mark of a device its operator disconnected.
fn offline_key() -> Result<MetaKey, wuts_store::Error> {
    MetaKey::new("held-offline")
}

/// Records whether the operator holds the device offline (a restart honours it).
pub fn hold_offline(
    store: &dyn Store,
    id: DeviceId,
    offline: bool,
) -> Result<(), wuts_store::Error> {
    let key = offline_key()?;
    if offline {
        store.set_meta(id, &key, b"1")?;
    } else {
        store.remove_meta(id, &key)?;
    }
    store.flush()
}

/// Whether the operator holds the device offline.
pub fn is_held_offline(store: &dyn Store, id: DeviceId) -> Result<bool, wuts_store::Error> {
    Ok(store.meta(id, &offline_key()?)?.is_some())
}
