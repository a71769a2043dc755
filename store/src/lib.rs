//! Session storage for WUTS devices: the persistence boundary of the engine.
//!
//! What a WhatsApp companion device must keep (protocol sheet sections 4.6, 6 and 8): its Noise
//! and Signal credentials from creation ([`DeviceKeys`]), the pairing result ([`PairedIdentity`]),
//! its one-time pre-keys, plus a little bookkeeping ([`Meta`]). Many devices share one store.
//!
//! - Narrow, synchronous traits ([`Devices`], [`Credentials`], [`PreKeys`], [`Meta`], [`Flush`];
//!   all together as [`Store`]) so the engine can read storage without async or I/O types.
//! - Typed keys ([`DeviceId`], [`PreKeyId`], [`MetaKey`]) rather than strings.
//! - Versioned records (a version byte, then a checked binary layout): a record from a newer build
//!   is [`Error::UnsupportedVersion`], a damaged one [`Error::Corrupt`], both naming the device.
//! - Backends: [`SledStore`] (the only code that names sled) and [`MemStore`] for tests.
//!
//! # Atomicity and durability
//!
//! Every write method is atomic: after a crash either all of it is visible or none of it.
//! Methods documented as **durable** return only once their effect has reached disk:
//! [`Devices::create_device`], [`Devices::remove_device`], [`Credentials::save_pairing`] and
//! [`PreKeys::add_pre_keys`]. So the driver tells nobody "paired" before `save_pairing` returned,
//! and never uploads pre-keys that a crash could lose. The other writes (marking pre-keys
//! uploaded, removing a used pre-key, metadata) become durable at the backend's next periodic
//! flush (sled: every 500 ms), at the next durable write, or on [`Flush::flush`]; a crash before
//! then may lose them but never half-applies them. Reads always see every earlier write.
//!
//! The HTTP gateway's own records (tenants, users, token hashes, idempotency records) sit in
//! [`gateway`], behind their own narrow trait, in the same data directory.
//!
//! This crate must not depend on the engine, transports or HTTP; it does no cryptography.

mod codec;
mod error;
pub mod gateway;
mod jid;
mod keys;
mod keyspace;
mod memory;
pub mod migrate;
mod model;
pub mod pg;
mod record;
mod sled;
mod traits;

pub use crate::codec::RecordError;
pub use crate::error::{BackendError, Error, RecordKind};
pub use crate::jid::{AddressSpace, DeviceJid, InvalidDeviceJid};
pub use crate::keys::{
    AdvSecret, DeviceKeys, KeyPair, OneTimePreKey, PairedIdentity, PreKeyId, PrivateKey, PublicKey,
    RegistrationId, Signature, SignedPreKey,
};
pub use crate::memory::MemStore;
pub use crate::model::{DeviceId, DeviceInfo, DeviceRecord, MetaKey, PreKeyCount};
pub use crate::sled::SledStore;
pub use crate::traits::{Credentials, Devices, Flush, Meta, PreKeys, Store};
