//! `wuts_store::Error`: the one error type of the storage layer.
//!
//! Errors about a record always name the device it belongs to, so one damaged device can be
//! reported and skipped while the others keep running. Backend failures keep the backend's error
//! as their `source`, boxed, so that sled's types do not leak outside `sled.rs`.

use std::fmt;
use std::path::PathBuf;

use crate::codec::RecordError;
use crate::gateway::{TenantId, UserId};
use crate::keys::PreKeyId;
use crate::model::DeviceId;

/// Which kind of record an error is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum RecordKind {
    /// A device's [`DeviceKeys`](crate::DeviceKeys).
    DeviceKeys,
    /// The store-wide device-id counter.
    DeviceCounter,
    /// A device's "next pre-key id" counter.
    PreKeyCounter,
    /// A device's [`PairedIdentity`](crate::PairedIdentity).
    PairedIdentity,
    /// One of a device's one-time pre-keys.
    PreKey,
    /// A value in a device's metadata area.
    Meta,
    /// The store's schema marker.
    Schema,
    /// A gateway tenant.
    Tenant,
    /// A gateway user.
    User,
    /// The gateway's token-hash index.
    TokenIndex,
    /// The gateway's admin-token hash.
    AdminToken,
    /// A response stored for an idempotency key.
    StoredResponse,
    /// One of a user's devices, as the gateway names it.
    GatewayDevice,
    /// A user's event sequence counter.
    EventCounter,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeviceKeys => "device keys",
            Self::DeviceCounter => "device id counter",
            Self::PreKeyCounter => "pre-key id counter",
            Self::PairedIdentity => "paired identity",
            Self::PreKey => "one-time pre-key",
            Self::Meta => "metadata value",
            Self::Schema => "schema marker",
            Self::Tenant => "tenant",
            Self::User => "user",
            Self::TokenIndex => "token index",
            Self::AdminToken => "admin token",
            Self::StoredResponse => "stored response",
            Self::GatewayDevice => "gateway device",
            Self::EventCounter => "event sequence counter",
        })
    }
}

/// A failure inside the storage backend (I/O, backend corruption), kept as the error's source.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl BackendError {
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device record exists but cannot be decoded.
    #[error("{device}: {record} record is damaged")]
    Corrupt {
        /// The device the record belongs to.
        device: DeviceId,
        /// Which record.
        record: RecordKind,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// A store-wide record (not tied to a device) cannot be decoded.
    #[error("store {record} record is damaged")]
    CorruptStore {
        /// Which record.
        record: RecordKind,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// A device record was written by a newer build; upgrade before opening this store.
    #[error("{device}: {record} record has version {version}, newer than this build reads")]
    UnsupportedVersion {
        /// The device the record belongs to.
        device: DeviceId,
        /// Which record.
        record: RecordKind,
        /// The version byte found.
        version: u8,
    },
    /// The store's layout was written by a newer build.
    #[error("store schema {found} is newer than this build supports ({supported})")]
    UnsupportedSchema {
        /// Schema found on disk.
        found: u64,
        /// Newest schema this build supports.
        supported: u64,
    },
    /// A record could not be encoded (a field too long for its length prefix).
    #[error("{device}: cannot encode {record} record")]
    Encode {
        /// The device being written.
        device: DeviceId,
        /// Which record.
        record: RecordKind,
        /// What could not be encoded.
        #[source]
        source: RecordError,
    },
    /// Every attempt at a backup saw the store change while it was copied, so none is a
    /// snapshot of one moment; nothing is kept. Trying again when writes are quieter works.
    #[error("the store changed during each of {attempts} backup attempts; try again")]
    BackupUnsettled {
        /// Attempts made.
        attempts: u32,
    },
    /// Another process (or another handle in this one) has the data directory open.
    #[error("data directory {path} is in use by another store handle or process")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The data directory or its lock file could not be created or opened.
    #[error("cannot prepare data directory {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The backend failed while performing `operation`.
    #[error("storage backend failed during {operation}")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// The store's database could not be reached in time while performing `operation`
    /// (cluster mode: a partition, an overloaded server); a retry may succeed.
    #[error("the store's database did not answer during {operation}")]
    Unavailable {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// No device with this id exists (never created, or removed).
    #[error("{0} does not exist")]
    UnknownDevice(DeviceId),
    /// The device is already paired with a different identity; remove it and create a new one.
    #[error("{0} is already paired with a different identity")]
    AlreadyPaired(DeviceId),
    /// A batch of pre-keys reuses an id that is already stored (or repeats one).
    #[error("{device}: one-time pre-key {} already exists", pre_key.get())]
    DuplicatePreKey {
        /// The device.
        device: DeviceId,
        /// The repeated id.
        pre_key: PreKeyId,
    },
    /// A metadata key is empty, too long or uses characters outside `[a-z0-9._-]`.
    #[error("invalid metadata key {key:?}")]
    InvalidMetaKey {
        /// The rejected key.
        key: String,
    },
    /// Every device id has been handed out.
    #[error("device ids exhausted")]
    DeviceIdsExhausted,
    /// A gateway id or idempotency key has the wrong shape.
    #[error("invalid {kind} id {id:?}")]
    InvalidId {
        /// What kind of id (`tenant`, `user`, `idempotency key`).
        kind: &'static str,
        /// The rejected text.
        id: String,
    },
    /// No gateway tenant with this id exists.
    #[error("tenant {0} does not exist")]
    UnknownTenant(TenantId),
    /// No gateway user with this id exists.
    #[error("user {0} does not exist")]
    UnknownUser(UserId),
    /// A gateway record with this id (or this token hash) already exists.
    #[error("{what} already exists")]
    Duplicate {
        /// What collided (`tenant id`, `user id`, `token`).
        what: &'static str,
    },
    /// Cluster mode: this node does not own the device (any more), so the write was refused
    /// (every store write is fenced by the owner's epoch). The driver stops the device.
    #[error("{0} is not owned by this node: the write was fenced")]
    Fenced(DeviceId),
}

impl Error {
    /// The device this error is about, if it is about one device.
    ///
    /// Lets [`list_devices`](crate::Devices::list_devices) callers report which device is damaged.
    pub fn device(&self) -> Option<DeviceId> {
        match self {
            Self::Corrupt { device, .. }
            | Self::UnsupportedVersion { device, .. }
            | Self::Encode { device, .. }
            | Self::DuplicatePreKey { device, .. } => Some(*device),
            Self::UnknownDevice(device) | Self::AlreadyPaired(device) | Self::Fenced(device) => {
                Some(*device)
            }
            _ => None,
        }
    }

    /// Maps a decode failure of `device`'s `record` to [`Error::UnsupportedVersion`] when the
    /// record is from a newer build and to [`Error::Corrupt`] otherwise.
    pub(crate) fn decode(device: DeviceId, record: RecordKind, source: RecordError) -> Self {
        match source {
            RecordError::UnsupportedVersion { found, .. } => Self::UnsupportedVersion {
                device,
                record,
                version: found,
            },
            source => Self::Corrupt {
                device,
                record,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn corrupt_record_names_device_and_keeps_cause() {
        let error = Error::decode(
            DeviceId::new(3),
            RecordKind::DeviceKeys,
            RecordError::TrailingBytes { count: 2 },
        );
        assert_eq!(error.to_string(), "device 3: device keys record is damaged");
        assert_eq!(error.device(), Some(DeviceId::new(3)));
        let cause = error.source().map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("2 unexpected bytes after the last field")
        );
    }

    #[test]
    fn error_can_cross_threads() {
        fn assert_thread_safe<T: Send + Sync + 'static>() {}
        assert_thread_safe::<Error>();
    }

    #[test]
    fn newer_record_version_is_not_called_damage() {
        let error = Error::decode(
            DeviceId::new(1),
            RecordKind::PairedIdentity,
            RecordError::UnsupportedVersion {
                found: 9,
                newest: 1,
            },
        );
        assert!(matches!(
            error,
            Error::UnsupportedVersion { version: 9, .. }
        ));
    }
}
