//! Tests of the sled backend that reach into its trees: damaged records, future versions,
//! locking, and what `remove_device` and `open` leave behind. Behaviour shared with `MemStore`
//! is tested in `tests/conformance.rs`.

use std::error::Error as StdError;

use super::*;
use crate::keys::{KeyPair, OneTimePreKey, PreKeyId, PrivateKey, PublicKey};
use crate::keyspace::pre_key_key;
use crate::model::{MetaKey, PreKeyCount};
use crate::record::tests::sample_keys;
use crate::traits::{Meta, PreKeys};

type TestResult = Result<(), Box<dyn StdError>>;

fn keys(seed: u8) -> Result<DeviceKeys, Box<dyn StdError>> {
    Ok(sample_keys(seed).ok_or("sample keys")?)
}

fn paired(jid: &str) -> PairedIdentity {
    PairedIdentity {
        jid: jid.parse().expect("a device JID"),
        lid: None,
        platform: "android".to_owned(),
        business_name: None,
        signed_device_identity: vec![1, 2, 3],
        account_signature_key: PublicKey::from_bytes([4; 32]),
        key_index: 1,
    }
}

fn pre_keys(from: u32, count: u32) -> Result<Vec<OneTimePreKey>, Box<dyn StdError>> {
    (from..from + count)
        .map(|id| {
            Ok(OneTimePreKey {
                id: PreKeyId::new(id).ok_or("pre-key id")?,
                key_pair: KeyPair {
                    private: PrivateKey::from_bytes([id.to_be_bytes()[3]; 32]),
                    public: PublicKey::from_bytes([7; 32]),
                },
            })
        })
        .collect()
}

/// A store with two devices, both paired and holding pre-keys and metadata.
fn two_devices(store: &SledStore) -> Result<(DeviceId, DeviceId), Box<dyn StdError>> {
    let a = store.create_device(&keys(1)?)?;
    let b = store.create_device(&keys(2)?)?;
    store.save_pairing(a, &paired("1:1@s.whatsapp.net"))?;
    store.save_pairing(b, &paired("2:1@s.whatsapp.net"))?;
    store.add_pre_keys(a, &pre_keys(1, 5)?)?;
    store.add_pre_keys(b, &pre_keys(1, 5)?)?;
    let lc = MetaKey::new("lc")?;
    store.set_meta(a, &lc, b"1")?;
    store.set_meta(b, &lc, b"2")?;
    Ok((a, b))
}

fn prefix_len(tree: &Tree, device: DeviceId) -> usize {
    tree.scan_prefix(device_key(device)).count()
}

#[test]
fn second_open_in_same_process_is_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _first = SledStore::open(dir.path())?;
    match SledStore::open(dir.path()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        other => return Err(format!("expected Locked, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn reopening_after_drop_keeps_everything() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b) = {
        let store = SledStore::open(dir.path())?;
        two_devices(&store)?
    };
    let store = SledStore::open(dir.path())?;
    let record = store.load_device(a)?;
    assert_eq!(record.keys, keys(1)?);
    assert_eq!(record.paired, Some(paired("1:1@s.whatsapp.net")));
    assert_eq!(store.pre_key_count(b)?, PreKeyCount::new(5, 0));
    assert_eq!(store.meta(b, &MetaKey::new("lc")?)?, Some(b"2".to_vec()));
    assert_eq!(store.next_pre_key_id(a)?.get(), 6);
    Ok(())
}

#[test]
fn damaged_device_keys_name_the_device_and_spare_the_others() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    let (a, b) = two_devices(&store)?;
    // Cut the record short, as a torn or bit-rotted write would.
    store
        .device_keys
        .insert(device_key(a), &[1u8, 0xAA, 0xBB][..])?;

    match store.load_device(a) {
        Err(Error::Corrupt {
            device,
            record: RecordKind::DeviceKeys,
            source: RecordError::Truncated { .. },
        }) => assert_eq!(device, a),
        other => return Err(format!("expected Corrupt, got {other:?}").into()),
    }
    assert_eq!(store.load_device(b)?.keys, keys(2)?);

    let listing = store.list_devices()?;
    assert_eq!(listing.len(), 2);
    let damaged: Vec<_> = listing.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged.first().and_then(|e| e.device()), Some(a));
    let healthy: Vec<_> = listing.iter().filter_map(|e| e.as_ref().ok()).collect();
    assert_eq!(healthy.first().map(|d| d.id), Some(b));
    Ok(())
}

#[test]
fn a_stored_jid_that_does_not_read_back_names_its_device() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    let (a, b) = two_devices(&store)?;
    store.save_pairing(a, &paired("1:1@s.whatsapp.net"))?;
    // The same record with its JID damaged in place: `1:1@` becomes `1x1@`.
    let mut bytes = record::encode_paired(&paired("1:1@s.whatsapp.net"))?;
    let at = bytes
        .windows(4)
        .position(|w| w == b"1:1@")
        .ok_or("the JID is in the record")?;
    if let Some(colon) = bytes.get_mut(at + 1) {
        *colon = b'x';
    }
    store.paired.insert(device_key(a), bytes)?;
    match store.load_device(a) {
        Err(Error::Corrupt {
            device,
            record: RecordKind::PairedIdentity,
            source: RecordError::OutOfRange { field: "jid" },
        }) => assert_eq!(device, a),
        other => return Err(format!("expected Corrupt, got {other:?}").into()),
    }
    let listing = store.list_devices()?;
    let damaged: Vec<_> = listing.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(damaged.first().and_then(|e| e.device()), Some(a));
    assert!(listing.iter().flatten().any(|d| d.id == b));
    Ok(())
}

#[test]
fn damaged_pairing_and_pre_key_records_stay_with_their_device() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    let (a, b) = two_devices(&store)?;
    store
        .paired
        .insert(device_key(a), &[1u8, 0, 0, 0, 99][..])?;
    let first = PreKeyId::new(1).ok_or("id")?;
    store.pre_keys.insert(pre_key_key(a, first), &[1u8][..])?;

    let err = store.load_device(a).err().ok_or("damaged pairing loaded")?;
    assert!(matches!(
        err,
        Error::Corrupt {
            record: RecordKind::PairedIdentity,
            ..
        }
    ));
    assert_eq!(err.device(), Some(a));
    let err = store
        .pre_key_count(a)
        .err()
        .ok_or("damaged pre-key counted")?;
    assert!(matches!(
        err,
        Error::Corrupt {
            record: RecordKind::PreKey,
            ..
        }
    ));
    assert_eq!(err.device(), Some(a));

    assert!(store.load_device(b)?.paired.is_some());
    assert_eq!(store.pre_key_count(b)?.stored, 5);
    assert_eq!(
        store.list_devices()?.iter().filter(|e| e.is_ok()).count(),
        1
    );
    Ok(())
}

#[test]
fn record_from_a_newer_build_is_unsupported_not_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    let (a, _) = two_devices(&store)?;
    let mut bytes = store
        .device_keys
        .get(device_key(a))?
        .ok_or("keys")?
        .to_vec();
    if let Some(version) = bytes.first_mut() {
        *version = 7;
    }
    store.device_keys.insert(device_key(a), bytes)?;
    assert!(matches!(
        store.load_device(a),
        Err(Error::UnsupportedVersion { device, record: RecordKind::DeviceKeys, version: 7 })
            if device == a
    ));
    Ok(())
}

#[test]
fn store_from_a_newer_build_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = SledStore::open(dir.path())?;
        store
            .store
            .insert(SCHEMA_KEY, record::encode_counter(SCHEMA + 1))?;
        // Written straight to sled, so flushed here: dropping a handle does not promise it.
        store.store.flush()?;
    }
    assert!(matches!(
        SledStore::open(dir.path()),
        Err(Error::UnsupportedSchema { found, supported: SCHEMA }) if found == SCHEMA + 1
    ));
    Ok(())
}

#[test]
fn remove_device_wipes_every_tree_and_keeps_the_other_device() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    let (a, b) = two_devices(&store)?;
    assert!(store.remove_device(a)?);
    for tree in [
        &store.device_keys,
        &store.paired,
        &store.pre_key_counter,
        &store.pre_keys,
        &store.meta,
    ] {
        assert_eq!(
            prefix_len(tree, a),
            0,
            "tree {:?} kept entries",
            tree.name()
        );
        assert!(
            prefix_len(tree, b) > 0,
            "tree {:?} lost the other device",
            tree.name()
        );
    }
    assert!(!store.remove_device(a)?);
    Ok(())
}

#[test]
fn open_sweeps_leftovers_of_an_interrupted_removal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b) = {
        let store = SledStore::open(dir.path())?;
        let (a, b) = two_devices(&store)?;
        // Simulate a crash after the removal transaction but before the prefix wipe.
        store.device_keys.remove(device_key(a))?;
        store.paired.remove(device_key(a))?;
        (a, b)
    };
    let store = SledStore::open(dir.path())?;
    assert_eq!(prefix_len(&store.pre_keys, a), 0);
    assert_eq!(prefix_len(&store.meta, a), 0);
    assert_eq!(prefix_len(&store.pre_keys, b), 5);
    assert_eq!(prefix_len(&store.meta, b), 1);
    Ok(())
}

#[test]
fn device_ids_are_not_reused_after_removal_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = {
        let store = SledStore::open(dir.path())?;
        let first = store.create_device(&keys(1)?)?;
        store.remove_device(first)?;
        first
    };
    let store = SledStore::open(dir.path())?;
    let second = store.create_device(&keys(1)?)?;
    assert!(second > first, "{second} reused or preceded {first}");
    Ok(())
}

#[test]
fn damaged_device_counter_is_a_store_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path())?;
    store.store.insert(LAST_DEVICE_ID_KEY, &[1u8, 2][..])?;
    assert!(matches!(
        store.create_device(&keys(1)?),
        Err(Error::CorruptStore {
            record: RecordKind::DeviceCounter,
            ..
        })
    ));
    Ok(())
}
