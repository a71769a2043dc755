//! Storage-key layouts: how typed keys become the byte keys of an ordered key/value backend.
//!
//! Device-scoped keys start with the device id as 8 bytes big-endian, so all entries of one
//! device form one contiguous prefix (removable with a prefix scan) and devices sort by id.
//! Nothing here names a backend; `sled.rs` uses these for its trees.

use crate::codec::RecordError;
use crate::keys::PreKeyId;
use crate::model::{DeviceId, MetaKey};

/// Length of a device-id key prefix.
pub(crate) const DEVICE_KEY_LEN: usize = 8;
/// Length of a `pre-keys` key: device prefix plus a 4-byte pre-key id.
pub(crate) const PRE_KEY_KEY_LEN: usize = DEVICE_KEY_LEN + 4;

/// Key of a device's single-record trees, and the prefix of its multi-record trees.
pub(crate) fn device_key(device: DeviceId) -> [u8; DEVICE_KEY_LEN] {
    device.get().to_be_bytes()
}

/// Key of one one-time pre-key: device prefix, then the id (4 bytes big-endian, so keys sort by id).
pub(crate) fn pre_key_key(device: DeviceId, id: PreKeyId) -> [u8; PRE_KEY_KEY_LEN] {
    let mut key = [0u8; PRE_KEY_KEY_LEN];
    let (head, tail) = key.split_at_mut(DEVICE_KEY_LEN);
    head.copy_from_slice(&device_key(device));
    tail.copy_from_slice(&id.get().to_be_bytes());
    key
}

/// Key of one metadata value: device prefix, then the key text (which cannot contain separators).
pub(crate) fn meta_key(device: DeviceId, key: &MetaKey) -> Vec<u8> {
    let mut out = device_key(device).to_vec();
    out.extend_from_slice(key.as_str().as_bytes());
    out
}

/// Reads the device id at the front of a storage key.
pub(crate) fn parse_device_prefix(key: &[u8]) -> Result<DeviceId, RecordError> {
    key.get(..DEVICE_KEY_LEN)
        .and_then(|prefix| <[u8; DEVICE_KEY_LEN]>::try_from(prefix).ok())
        .map(|prefix| DeviceId::new(u64::from_be_bytes(prefix)))
        .ok_or(RecordError::BadKey {
            len: key.len(),
            expected: DEVICE_KEY_LEN,
        })
}

/// Reads the pre-key id from a full `pre-keys` storage key.
pub(crate) fn parse_pre_key_key(key: &[u8]) -> Result<PreKeyId, RecordError> {
    let bad = RecordError::BadKey {
        len: key.len(),
        expected: PRE_KEY_KEY_LEN,
    };
    let id: [u8; 4] = key
        .get(DEVICE_KEY_LEN..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or(bad)?;
    PreKeyId::new(u32::from_be_bytes(id)).ok_or(RecordError::OutOfRange {
        field: "pre-key key",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_prefix_sorts_by_id_and_parses_back() -> Result<(), RecordError> {
        let (low, high) = (DeviceId::new(2), DeviceId::new(256));
        assert!(device_key(low) < device_key(high));
        assert_eq!(parse_device_prefix(&device_key(high))?, high);
        let meta = MetaKey::new("lc").map_err(|_| RecordError::Empty)?;
        assert_eq!(parse_device_prefix(&meta_key(high, &meta))?, high);
        Ok(())
    }

    #[test]
    fn pre_key_key_round_trips_and_rejects_wrong_lengths() -> Result<(), RecordError> {
        let id = PreKeyId::new(0x01_0203).ok_or(RecordError::Empty)?;
        let key = pre_key_key(DeviceId::new(9), id);
        assert_eq!(key, [0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 2, 3]);
        assert_eq!(parse_pre_key_key(&key)?, id);
        assert!(matches!(
            parse_pre_key_key(key.get(..11).unwrap_or_default()),
            Err(RecordError::BadKey {
                len: 11,
                expected: 12
            })
        ));
        assert!(matches!(
            parse_device_prefix(&[1, 2, 3]),
            Err(RecordError::BadKey { len: 3, .. })
        ));
        Ok(())
    }

    #[test]
    fn pre_key_key_with_id_past_three_bytes_is_out_of_range() {
        let mut key = pre_key_key(DeviceId::new(1), PreKeyId::FIRST);
        if let Some(top) = key.get_mut(8) {
            *top = 1;
        }
        assert!(matches!(
            parse_pre_key_key(&key),
            Err(RecordError::OutOfRange { .. })
        ));
    }
}
