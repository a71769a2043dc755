//! The storage traits, split by who uses them.
//!
//! - [`Devices`]: the registry's view (create, list, remove device slots).
//! - [`Credentials`]: what the engine reads to connect and writes when pairing completes.
//! - [`PreKeys`]: the one-time pre-key pool.
//! - [`Meta`]: a small per-device key/value area for engine and gateway bookkeeping.
//! - [`Flush`]: make earlier writes durable.
//!
//! All methods are synchronous and take `&self`: implementations synchronise internally, so one
//! store can be shared (`Arc<dyn Store>`) by every device driver in the process. Every method
//! that names a device fails with [`Error::UnknownDevice`] if it does not exist.
//!
//! Which writes are durable on return is listed in the crate docs ("Atomicity and durability")
//! and marked **durable** on each method.

use crate::error::Error;
use crate::keys::{DeviceKeys, OneTimePreKey, PairedIdentity, PreKeyId, SignedPreKey};
use crate::model::{DeviceId, DeviceInfo, DeviceRecord, MetaKey, PreKeyCount};

/// Creating, listing and removing device slots.
pub trait Devices {
    /// Stores the credentials of a new device and returns its fresh id. **Durable.**
    ///
    /// Taking the keys here (rather than creating an empty slot) means a device never exists
    /// without credentials.
    fn create_device(&self, keys: &DeviceKeys) -> Result<DeviceId, Error>;

    /// Lists every device in id order.
    ///
    /// Each entry is decoded on its own: a damaged device shows up as an `Err` entry (use
    /// [`Error::device`] to learn which) while the others are listed normally. The outer `Err`
    /// is only for failures of the store as a whole.
    fn list_devices(&self) -> Result<Vec<Result<DeviceInfo, Error>>, Error>;

    /// Wipes a device and everything stored for it (keys, pairing, pre-keys, metadata), e.g.
    /// after logout or `device_removed`. Returns whether it existed. **Durable.**
    fn remove_device(&self, device: DeviceId) -> Result<bool, Error>;

    /// Starts a device over under the same id: replaces its keys with `keys` and wipes its
    /// pairing, pre-keys and metadata, e.g. after a logout, so it can pair again while whoever
    /// holds the id (a gateway user) keeps it. **Durable.**
    fn reset_device(&self, device: DeviceId, keys: &DeviceKeys) -> Result<(), Error>;
}

/// The device credentials the engine connects with.
pub trait Credentials {
    /// Loads a device's keys and, if paired, its identity.
    fn load_device(&self, device: DeviceId) -> Result<DeviceRecord, Error>;

    /// Records the result of pairing, in one transaction. **Durable**: when this returns `Ok`,
    /// the pairing survives a crash, so only then may anyone be told the device is paired.
    ///
    /// Saving the same identity again is a no-op, so a retried write is harmless; a different
    /// identity on an already-paired device fails with [`Error::AlreadyPaired`].
    fn save_pairing(&self, device: DeviceId, paired: &PairedIdentity) -> Result<(), Error>;

    /// Replaces the device's signed pre-key (a rotation), keeping every other key. **Durable**:
    /// the new key must survive a crash before the server is told of it.
    fn replace_signed_pre_key(&self, device: DeviceId, key: &SignedPreKey) -> Result<(), Error>;
}

/// The pool of one-time pre-keys.
///
/// The engine generates keys with ids starting at [`PreKeys::next_pre_key_id`], adds them,
/// uploads a batch from [`PreKeys::pre_keys_to_upload`], marks that batch uploaded, and removes
/// a key once a message that consumed it has been decrypted.
pub trait PreKeys {
    /// The id to give the next generated key: the id after the last key of the most recent
    /// batch (wrapping within the 3-byte range), or 1 for a device that never had pre-keys.
    fn next_pre_key_id(&self, device: DeviceId) -> Result<PreKeyId, Error>;

    /// Adds a batch of not-yet-uploaded keys, all or nothing. **Durable**, because the keys
    /// must survive a crash before they are uploaded.
    ///
    /// Fails with [`Error::DuplicatePreKey`] if an id is already stored or repeats within the
    /// batch. Afterwards [`PreKeys::next_pre_key_id`] returns the id after the batch's last key.
    fn add_pre_keys(&self, device: DeviceId, keys: &[OneTimePreKey]) -> Result<(), Error>;

    /// Up to `max` keys not yet uploaded, lowest id first.
    fn pre_keys_to_upload(&self, device: DeviceId, max: usize)
    -> Result<Vec<OneTimePreKey>, Error>;

    /// Marks keys as uploaded after the server accepted them; returns how many were marked.
    /// Ids that are not stored are skipped (they may have been consumed meanwhile).
    fn mark_pre_keys_uploaded(&self, device: DeviceId, ids: &[PreKeyId]) -> Result<usize, Error>;

    /// Loads one key, e.g. the one a `pkmsg` names.
    fn pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<Option<OneTimePreKey>, Error>;

    /// Removes a used key; returns whether it was stored.
    fn remove_pre_key(&self, device: DeviceId, id: PreKeyId) -> Result<bool, Error>;

    /// Counts stored and uploaded keys.
    fn pre_key_count(&self, device: DeviceId) -> Result<PreKeyCount, Error>;
}

/// A per-device key/value area for small engine or gateway bookkeeping (a login counter, a push
/// name). Values are opaque bytes inside a versioned record; callers own their value format.
pub trait Meta {
    /// Reads a value.
    fn meta(&self, device: DeviceId, key: &MetaKey) -> Result<Option<Vec<u8>>, Error>;

    /// Writes a value, replacing any previous one.
    fn set_meta(&self, device: DeviceId, key: &MetaKey, value: &[u8]) -> Result<(), Error>;

    /// Removes a value; returns whether it existed.
    fn remove_meta(&self, device: DeviceId, key: &MetaKey) -> Result<bool, Error>;
}

/// Making earlier writes durable.
pub trait Flush {
    /// Returns once every write that returned before this call has reached disk.
    fn flush(&self) -> Result<(), Error>;
}

/// Everything a backend provides; what the driver and registry hold as `Arc<dyn Store>`.
pub trait Store: Devices + Credentials + PreKeys + Meta + Flush + Send + Sync {}

impl<T> Store for T where T: Devices + Credentials + PreKeys + Meta + Flush + Send + Sync {}
