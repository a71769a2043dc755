//! The store work a device's connection asks for, as plain synchronous functions: the driver
//! runs them on tokio's blocking pool, engine tests run them inline over `MemStore`.

use rand::SeedableRng;
use rand::rngs::{OsRng, StdRng};
use wuts_store::{DeviceId, OneTimePreKey, Store};

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
