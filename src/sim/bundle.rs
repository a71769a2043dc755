//! The key bundle the server holds for a device, as plain data (no locks, no stanzas), so the
//! device table (`state`) and its records (`records`) can hold it without importing the
//! operations in `prekeys`.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::noise::PublicKey;

/// A signed pre-key as the server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedKey {
    pub id: u32,
    pub value: [u8; 32],
    pub signature: [u8; 64],
}

/// What the server holds for one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyBundle {
    pub signed: Option<SignedKey>,
    pub one_time: BTreeMap<u32, [u8; 32]>,
    /// Uploads and rotations accepted (live only).
    pub uploads: u32,
    pub rotations: u32,
}

impl KeyBundle {
    /// One-time keys held.
    pub fn count(&self) -> u32 {
        u32::try_from(self.one_time.len()).unwrap_or(u32::MAX)
    }

    /// The digest's hash; `None` without a bundle.
    pub fn hash(&self, identity: &PublicKey) -> Option<[u8; 20]> {
        let signed = self.signed.as_ref()?;
        let mut h = Sha1::new();
        h.update(identity.as_bytes());
        h.update(signed.value);
        h.update(signed.signature);
        for key in self.one_time.values() {
            h.update(key);
        }
        Some(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_part_in_id_order() {
        let identity = PublicKey::from_slice(&[9; 32]).expect("key");
        let mut bundle = KeyBundle::default();
        assert_eq!(bundle.hash(&identity), None);
        bundle.signed = Some(SignedKey {
            id: 1,
            value: [1; 32],
            signature: [2; 64],
        });
        bundle.one_time.insert(2, [4; 32]);
        bundle.one_time.insert(1, [3; 32]);
        let mut h = Sha1::new();
        for part in [&[9u8; 32][..], &[1; 32], &[2; 64], &[3; 32], &[4; 32]] {
            h.update(part);
        }
        let want: [u8; 20] = h.finalize().into();
        assert_eq!(bundle.hash(&identity), Some(want));
    }
}
