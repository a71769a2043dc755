//! Typed keys and the values the store traits hand out: device ids, metadata keys, listings.

use std::fmt;

use crate::error::Error;
use crate::jid::DeviceJid;
use crate::keys::{DeviceKeys, PairedIdentity};

/// Identifies one device slot in a store.
///
/// The store chooses ids on creation, counting up from 1, and never reuses one, even after
/// [`remove_device`](crate::Devices::remove_device): the gateway may still hold a mapping to an
/// old id, and that mapping must not silently start pointing at a new device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DeviceId(u64);

impl DeviceId {
    /// Rebuilds an id the gateway stored earlier (from [`DeviceId::get`]).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw id, for storing elsewhere.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {}", self.0)
    }
}

/// Name of an entry in a device's metadata area (e.g. `login-counter`).
///
/// Restricted to 1..=64 bytes of `[a-z0-9._-]`, so keys are readable in dumps and can never
/// contain separators or bytes that would make two keys collide.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MetaKey(String);

impl MetaKey {
    /// Longest accepted key, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let valid_char =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.bytes().all(valid_char) {
            return Err(Error::InvalidMetaKey { key });
        }
        Ok(Self(key))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of [`list_devices`](crate::Devices::list_devices): enough to decide which devices to
/// start at boot.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The device.
    pub id: DeviceId,
    /// Its own JID once paired; `None` while it still needs pairing.
    pub jid: Option<DeviceJid>,
}

impl DeviceInfo {
    pub(crate) fn new(id: DeviceId, jid: Option<DeviceJid>) -> Self {
        Self { id, jid }
    }

    /// Whether the device has completed pairing.
    pub fn is_paired(&self) -> bool {
        self.jid.is_some()
    }
}

/// Everything the engine needs to connect as one device.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// Credentials created with the device.
    pub keys: DeviceKeys,
    /// Pairing result; `None` means the next connect registers (shows a QR code).
    pub paired: Option<PairedIdentity>,
}

impl DeviceRecord {
    pub(crate) fn new(id: DeviceId, keys: DeviceKeys, paired: Option<PairedIdentity>) -> Self {
        Self { id, keys, paired }
    }
}

/// How many one-time pre-keys a device holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct PreKeyCount {
    /// All stored keys, uploaded or not.
    pub stored: usize,
    /// Keys the server has been given (and not yet consumed locally).
    pub uploaded: usize,
}

impl PreKeyCount {
    pub(crate) fn new(stored: usize, uploaded: usize) -> Self {
        Self { stored, uploaded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_key_accepts_simple_names() {
        for key in ["lc", "login-counter", "push.name_v2", &"a".repeat(64)] {
            assert!(MetaKey::new(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn meta_key_rejects_empty_long_and_odd_bytes() {
        for key in ["", "Upper", "a b", "a/b", "ção", &"a".repeat(65)] {
            assert!(
                matches!(MetaKey::new(key), Err(Error::InvalidMetaKey { .. })),
                "{key}"
            );
        }
    }

    #[test]
    fn device_id_displays_with_its_number() {
        assert_eq!(DeviceId::new(7).to_string(), "device 7");
        assert_eq!(DeviceId::new(7).get(), 7);
    }
}
