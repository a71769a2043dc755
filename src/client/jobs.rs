//! The store work a device's connection asks for, as plain synchronous functions: the driver
//! runs them on tokio's blocking pool, engine tests run them inline over `MemStore`.

use rand::SeedableRng;
use rand::rngs::{OsRng, StdRng};
use wuts_store::{DeviceId, MetaKey, OneTimePreKey, PairedIdentity, Store};

use crate::engine::{Resume, keys};

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

fn login_count_key() -> Result<MetaKey, wuts_store::Error> {
    MetaKey::new("login-count")
}

fn routing_key() -> Result<MetaKey, wuts_store::Error> {
    MetaKey::new("edge-routing")
}

/// What the next connection carries over: the edge routing info and the login counter.
pub fn resume(store: &dyn Store, id: DeviceId) -> Result<Resume, wuts_store::Error> {
    let count = store.meta(id, &login_count_key()?)?;
    let login_count = count
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(0, u32::from_be_bytes);
    let rotated = store.meta(id, &rotation_key()?)?;
    let signed_pre_key_rotated_at = rotated
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes);
    Ok(Resume {
        routing_info: store.meta(id, &routing_key()?)?,
        login_count,
        signed_pre_key_rotated_at,
    })
}

fn rotation_key() -> Result<MetaKey, wuts_store::Error> {
    MetaKey::new("spk-rotated-at")
}

/// For [`crate::engine::Event::SignedPreKeyRotated`]: keeps the schedule across restarts
/// (flushed: a lost mark would rotate again early, harmless but wasteful).
pub fn record_rotation(store: &dyn Store, id: DeviceId, at: u64) -> Result<(), wuts_store::Error> {
    store.set_meta(id, &rotation_key()?, &at.to_be_bytes())?;
    store.flush()
}

/// For [`crate::engine::Event::CheckDigest`]: the one-time keys with these ids that the store
/// holds, in the given order.
pub fn listed_pre_keys(
    store: &dyn Store,
    id: DeviceId,
    ids: &[u32],
) -> Result<Vec<OneTimePreKey>, wuts_store::Error> {
    let mut held = Vec::with_capacity(ids.len());
    for raw in ids {
        let Some(key_id) = wuts_store::PreKeyId::new(*raw) else {
            continue;
        };
        if let Some(key) = store.pre_key(id, key_id)? {
            held.push(key);
        }
    }
    Ok(held)
}

/// A login succeeded: the counter the next one sends goes up (not flushed: a crash may send
/// the same counter again, which is harmless).
pub fn count_login(store: &dyn Store, id: DeviceId) -> Result<(), wuts_store::Error> {
    let next = resume(store, id)?.login_count.saturating_add(1);
    store.set_meta(id, &login_count_key()?, &next.to_be_bytes())
}

/// The server's edge routing info, kept for the next connection (not flushed).
pub fn save_routing(store: &dyn Store, id: DeviceId, info: &[u8]) -> Result<(), wuts_store::Error> {
    store.set_meta(id, &routing_key()?, info)
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
    // A new pairing counts its logins from zero.
    store.remove_meta(id, &login_count_key()?)?;
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
