//! Behaviour every backend must share, run against `MemStore`, `SledStore` (on a temp dir) and
//! `PgStore` (on a throw-away PostgreSQL) through `&dyn Store`, the way the engine and registry
//! hold them.

mod common;
mod pg_support;

use std::sync::Arc;

use common::{TestResult, device_keys, paired, pre_key_id, pre_keys};
use wuts_store::{DeviceId, Error, MetaKey, PreKeyCount, PreKeyId, Store};

/// Instantiates each behaviour once per backend: `mem::<name>` and `sled::<name>`.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod mem {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    super::$name(std::sync::Arc::new(wuts_store::MemStore::new()))
                }
            )*
        }
        mod sled {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    let dir = tempfile::tempdir()?;
                    super::$name(std::sync::Arc::new(wuts_store::SledStore::open(dir.path())?))
                }
            )*
        }
        /// One PostgreSQL for all cases (starting one takes seconds), a fresh database each.
        mod pg {
            #[test]
            fn every_behaviour() -> super::TestResult {
                let Some(pg) = super::pg_support::TempPostgres::start("conformance::pg") else {
                    return Ok(());
                };
                $(
                    let url = pg.database(stringify!($name));
                    super::$name(super::pg_store(&url)?)
                        .map_err(|e| format!("{}: {e}", stringify!($name)))?;
                )*
                Ok(())
            }
        }
    };
}

/// A `PgStore` on a fresh database, as one node incarnation that owns what it creates.
fn pg_store(url: &str) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    use wuts_store::pg::{Bridge, DEFAULT_CALL_TIMEOUT, Fences, Incarnation, NodeId, PgStore};
    let bridge = Arc::new(Bridge::connect(url, 4, DEFAULT_CALL_TIMEOUT)?);
    let node = NodeId::new("conformance")?;
    let incarnation = Incarnation(uuid::Uuid::new_v4());
    Ok(Arc::new(PgStore::new(
        bridge,
        node,
        incarnation,
        Arc::new(Fences::default()),
    )))
}

for_each_backend!(
    created_devices_load_back_with_increasing_ids,
    unknown_device_is_a_typed_error_everywhere,
    pairing_is_saved_idempotent_and_exclusive,
    listing_reports_pairing_state,
    pre_key_batches_upload_and_consume,
    pre_key_batch_is_all_or_nothing,
    next_pre_key_id_follows_the_last_batch,
    meta_values_set_replace_and_remove,
    remove_device_wipes_only_that_device,
    reset_device_starts_over_under_the_same_id,
    concurrent_creation_hands_out_unique_ids,
    signed_pre_key_is_replaced_alone,
);

fn created_devices_load_back_with_increasing_ids(store: Arc<dyn Store>) -> TestResult {
    let a = store.create_device(&device_keys(1))?;
    let b = store.create_device(&device_keys(2))?;
    assert_eq!(a, DeviceId::new(1));
    assert!(b > a);
    let record = store.load_device(b)?;
    assert_eq!(record.id, b);
    assert_eq!(record.keys, device_keys(2));
    assert_eq!(record.paired, None);
    Ok(())
}

fn unknown_device_is_a_typed_error_everywhere(store: Arc<dyn Store>) -> TestResult {
    let ghost = DeviceId::new(99);
    let key = MetaKey::new("lc")?;
    let id = PreKeyId::FIRST;
    let results = [
        store.load_device(ghost).map(drop),
        store.save_pairing(ghost, &paired("1:1@s.whatsapp.net")),
        store.next_pre_key_id(ghost).map(drop),
        store.add_pre_keys(ghost, &pre_keys(1, 2)?),
        store.pre_keys_to_upload(ghost, 10).map(drop),
        store.mark_pre_keys_uploaded(ghost, &[id]).map(drop),
        store.pre_key(ghost, id).map(drop),
        store.remove_pre_key(ghost, id).map(drop),
        store.pre_key_count(ghost).map(drop),
        store.meta(ghost, &key).map(drop),
        store.set_meta(ghost, &key, b"x"),
        store.remove_meta(ghost, &key).map(drop),
    ];
    for (i, result) in results.into_iter().enumerate() {
        assert!(
            matches!(result, Err(Error::UnknownDevice(d)) if d == ghost),
            "call {i}: {result:?}"
        );
    }
    assert!(!store.remove_device(ghost)?);
    Ok(())
}

fn pairing_is_saved_idempotent_and_exclusive(store: Arc<dyn Store>) -> TestResult {
    let device = store.create_device(&device_keys(1))?;
    let identity = paired("559984726662:77@s.whatsapp.net");
    store.save_pairing(device, &identity)?;
    assert_eq!(store.load_device(device)?.paired, Some(identity.clone()));

    store.save_pairing(device, &identity)?;
    let other = paired("111:2@s.whatsapp.net");
    assert!(matches!(
        store.save_pairing(device, &other),
        Err(Error::AlreadyPaired(d)) if d == device
    ));
    assert_eq!(store.load_device(device)?.paired, Some(identity));
    Ok(())
}

fn signed_pre_key_is_replaced_alone(store: Arc<dyn Store>) -> TestResult {
    let device = store.create_device(&device_keys(1))?;
    let identity = paired("559984726662:77@s.whatsapp.net");
    store.save_pairing(device, &identity)?;
    let mut rotated = device_keys(2).signed_pre_key;
    rotated.id = pre_key_id(2)?;
    store.replace_signed_pre_key(device, &rotated)?;
    let loaded = store.load_device(device)?;
    assert_eq!(loaded.keys.signed_pre_key, rotated);
    assert_eq!(loaded.keys.identity, device_keys(1).identity);
    assert_eq!(loaded.paired, Some(identity));
    assert!(matches!(
        store.replace_signed_pre_key(DeviceId::new(999), &rotated),
        Err(Error::UnknownDevice(_))
    ));
    Ok(())
}

fn listing_reports_pairing_state(store: Arc<dyn Store>) -> TestResult {
    let a = store.create_device(&device_keys(1))?;
    let b = store.create_device(&device_keys(2))?;
    store.save_pairing(b, &paired("2:1@s.whatsapp.net"))?;
    let listing = store
        .list_devices()?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let summary: Vec<_> = listing.iter().map(|d| (d.id, d.is_paired())).collect();
    assert_eq!(summary, [(a, false), (b, true)]);
    assert_eq!(
        listing
            .get(1)
            .and_then(|d| d.jid.as_ref())
            .map(ToString::to_string),
        Some("2:1@s.whatsapp.net".to_owned())
    );
    Ok(())
}

fn pre_key_batches_upload_and_consume(store: Arc<dyn Store>) -> TestResult {
    let device = store.create_device(&device_keys(1))?;
    let batch = pre_keys(1, 812)?;
    store.add_pre_keys(device, &batch)?;
    assert_eq!(store.pre_key_count(device)?, count(812, 0));

    let first = store.pre_keys_to_upload(device, 30)?;
    assert_eq!(first.as_slice(), batch.get(..30).ok_or("batch")?);
    let ids: Vec<_> = first.iter().map(|k| k.id).collect();
    assert_eq!(store.mark_pre_keys_uploaded(device, &ids)?, 30);
    assert_eq!(
        store.mark_pre_keys_uploaded(device, &ids)?,
        0,
        "already marked"
    );
    assert_eq!(store.pre_key_count(device)?, count(812, 30));
    let next = store.pre_keys_to_upload(device, 1)?;
    assert_eq!(next.first().map(|k| k.id.get()), Some(31));

    let used = pre_key_id(5)?;
    assert_eq!(store.pre_key(device, used)?.as_ref(), batch.get(4));
    assert!(store.remove_pre_key(device, used)?);
    assert!(!store.remove_pre_key(device, used)?);
    assert_eq!(store.pre_key(device, used)?, None);
    assert_eq!(
        store.mark_pre_keys_uploaded(device, &[used])?,
        0,
        "missing ids are skipped"
    );
    assert_eq!(store.pre_key_count(device)?, count(811, 29));
    Ok(())
}

fn pre_key_batch_is_all_or_nothing(store: Arc<dyn Store>) -> TestResult {
    let device = store.create_device(&device_keys(1))?;
    store.add_pre_keys(device, &pre_keys(1, 3)?)?;

    let overlapping = pre_keys(3, 5)?;
    assert!(matches!(
        store.add_pre_keys(device, &overlapping),
        Err(Error::DuplicatePreKey { pre_key, .. }) if pre_key.get() == 3
    ));
    let mut repeated = pre_keys(10, 2)?;
    repeated.extend(pre_keys(10, 1)?);
    assert!(matches!(
        store.add_pre_keys(device, &repeated),
        Err(Error::DuplicatePreKey { pre_key, .. }) if pre_key.get() == 10
    ));

    assert_eq!(store.pre_key_count(device)?, count(3, 0));
    assert_eq!(store.next_pre_key_id(device)?.get(), 4);
    Ok(())
}

fn next_pre_key_id_follows_the_last_batch(store: Arc<dyn Store>) -> TestResult {
    let device = store.create_device(&device_keys(1))?;
    assert_eq!(store.next_pre_key_id(device)?, PreKeyId::FIRST);
    store.add_pre_keys(device, &pre_keys(1, 10)?)?;
    assert_eq!(store.next_pre_key_id(device)?.get(), 11);
    store.add_pre_keys(device, &[])?;
    assert_eq!(
        store.next_pre_key_id(device)?.get(),
        11,
        "empty batch changes nothing"
    );
    store.add_pre_keys(device, &pre_keys(PreKeyId::MAX, 1)?)?;
    assert_eq!(
        store.next_pre_key_id(device)?.get(),
        1,
        "wraps past the 3-byte range"
    );
    Ok(())
}

fn meta_values_set_replace_and_remove(store: Arc<dyn Store>) -> TestResult {
    let a = store.create_device(&device_keys(1))?;
    let b = store.create_device(&device_keys(2))?;
    let lc = MetaKey::new("login-counter")?;
    assert_eq!(store.meta(a, &lc)?, None);
    store.set_meta(a, &lc, &[0])?;
    store.set_meta(a, &lc, &[1])?;
    store.set_meta(b, &lc, &[])?;
    assert_eq!(store.meta(a, &lc)?, Some(vec![1]));
    assert_eq!(store.meta(b, &lc)?, Some(vec![]));
    assert!(store.remove_meta(a, &lc)?);
    assert!(!store.remove_meta(a, &lc)?);
    assert_eq!(store.meta(a, &lc)?, None);
    assert_eq!(store.meta(b, &lc)?, Some(vec![]));
    Ok(())
}

fn remove_device_wipes_only_that_device(store: Arc<dyn Store>) -> TestResult {
    let lc = MetaKey::new("lc")?;
    let mut devices = Vec::new();
    for seed in [1, 2] {
        let device = store.create_device(&device_keys(seed))?;
        store.save_pairing(device, &paired(&format!("{seed}:1@s.whatsapp.net")))?;
        store.add_pre_keys(device, &pre_keys(1, 20)?)?;
        store.set_meta(device, &lc, b"7")?;
        devices.push(device);
    }
    let (gone, kept) = match devices.as_slice() {
        [gone, kept] => (*gone, *kept),
        _ => return Err("two devices".into()),
    };
    assert!(store.remove_device(gone)?);
    assert!(matches!(
        store.load_device(gone),
        Err(Error::UnknownDevice(_))
    ));
    assert!(matches!(
        store.pre_key_count(gone),
        Err(Error::UnknownDevice(_))
    ));
    assert_eq!(store.pre_key_count(kept)?, count(20, 0));
    assert_eq!(store.meta(kept, &lc)?, Some(b"7".to_vec()));
    assert!(store.load_device(kept)?.paired.is_some());
    let listed: Vec<_> = store
        .list_devices()?
        .into_iter()
        .flatten()
        .map(|d| d.id)
        .collect();
    assert_eq!(listed, [kept]);

    let again = store.create_device(&device_keys(1))?;
    assert!(again > kept, "removed ids are not reused");
    assert_eq!(store.pre_key_count(again)?, count(0, 0));
    store.flush()?;
    Ok(())
}

fn reset_device_starts_over_under_the_same_id(store: Arc<dyn Store>) -> TestResult {
    let lc = MetaKey::new("lc")?;
    let device = store.create_device(&device_keys(1))?;
    let other = store.create_device(&device_keys(2))?;
    for d in [device, other] {
        store.save_pairing(d, &paired(&format!("{}:1@s.whatsapp.net", d.get())))?;
        store.add_pre_keys(d, &pre_keys(1, 20)?)?;
        store.set_meta(d, &lc, b"7")?;
    }
    store.reset_device(device, &device_keys(3))?;
    let record = store.load_device(device)?;
    assert_eq!(record.keys, device_keys(3));
    assert!(record.paired.is_none());
    assert_eq!(store.pre_key_count(device)?, count(0, 0));
    assert_eq!(store.next_pre_key_id(device)?, PreKeyId::FIRST);
    assert_eq!(store.meta(device, &lc)?, None);
    let listed: Vec<_> = store.list_devices()?.into_iter().flatten().collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.is_paired() == (d.id == other)));
    assert!(store.load_device(other)?.paired.is_some());
    assert_eq!(store.pre_key_count(other)?, count(20, 0));
    // It can pair again.
    store.save_pairing(device, &paired("9:1@s.whatsapp.net"))?;
    assert!(matches!(
        store.reset_device(DeviceId::new(999), &device_keys(4)),
        Err(Error::UnknownDevice(_))
    ));
    Ok(())
}

fn concurrent_creation_hands_out_unique_ids(store: Arc<dyn Store>) -> TestResult {
    let handles: Vec<_> = (0..4u8)
        .map(|seed| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| store.create_device(&device_keys(seed)))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for handle in handles {
        ids.extend(handle.join().map_err(|_| "thread panicked")??);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    Ok(())
}

fn count(stored: usize, uploaded: usize) -> PreKeyCount {
    let mut count = PreKeyCount::default();
    count.stored = stored;
    count.uploaded = uploaded;
    count
}
