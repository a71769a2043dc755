//! A copy of a data directory made while it is in use, as one snapshot of the whole store.
//!
//! sled 0.34 has no consistent export: `Db::export` reads tree after tree through live
//! iterators, so a write that spans trees (a user and its token index, an event and its
//! pending mark) can land half in a copy. What sled does offer is `Db::checksum`, which scans
//! every tree while holding sled's global write lock, i.e. over one moment of the store. So a
//! backup copies every tree, then compares the checksum of the copy with the live store's: if
//! they match, the copy *is* the store as it was at that checksum (a consistent state), and it
//! is flushed and then opened as a store (schema checked) before the backup is called done. If
//! a write came in between, the copy is thrown away and taken again, a bounded number of times
//! ([`Error::BackupUnsettled`] after that). Both checksums briefly hold back every writer.
//!
//! The copy reads through our own loop rather than `Db::export`, whose iterators panic on an
//! I/O error; here the error is returned.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ::sled::Db;

use super::{DB_DIR, Error, SledStore, backend, open_db};

/// Copies taken before giving up on a store that keeps changing.
const ATTEMPTS: u32 = 20;

/// Fails unless `dest` is absent or an empty directory: a backup never mixes with other files.
fn fresh_destination(dest: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dest.to_path_buf(),
        source,
    };
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the destination is not empty",
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(dest).map_err(io),
        Err(e) => Err(io(e)),
    }
}

/// Every tree of `from` written into `to` (a fresh database).
fn copy_trees(from: &Db, to: &Db) -> Result<(), Error> {
    for name in from.tree_names() {
        let source = from.open_tree(&name).map_err(backend("backup read"))?;
        let target = to.open_tree(&name).map_err(backend("backup write"))?;
        let mut batch = ::sled::Batch::default();
        let mut pending = 0usize;
        for entry in source.iter() {
            let (key, value) = entry.map_err(backend("backup read"))?;
            batch.insert(key, value);
            pending += 1;
            if pending == 1024 {
                target
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(backend("backup write"))?;
                pending = 0;
            }
        }
        target.apply_batch(batch).map_err(backend("backup write"))?;
    }
    Ok(())
}

impl SledStore {
    /// Writes a consistent, openable copy of this store into `dest` (absent or empty), while
    /// the store stays in use.
    pub fn copy_to(&self, dest: &Path) -> Result<(), Error> {
        self.copy_to_with(dest, |_| {})
    }

    /// [`SledStore::copy_to`], calling `between(attempt)` after each copy and before it is
    /// checked (tests write there to make a copy stale).
    fn copy_to_with(&self, dest: &Path, mut between: impl FnMut(u32)) -> Result<(), Error> {
        fresh_destination(dest)?;
        let db_dir = dest.join(DB_DIR);
        for attempt in 1..=ATTEMPTS {
            let settled = {
                let copy = open_db(&db_dir, 8 * 1024 * 1024).map_err(backend("backup open"))?;
                copy_trees(&self.db, &copy)?;
                between(attempt);
                let live = self.db.checksum().map_err(backend("backup checksum"))?;
                let copied = copy.checksum().map_err(backend("backup checksum"))?;
                if live == copied {
                    copy.flush().map_err(backend("backup flush"))?;
                }
                live == copied
            };
            if settled {
                // Proof that the copy is a store this build opens.
                drop(SledStore::open_with_cache(dest, 8 * 1024 * 1024)?);
                return Ok(());
            }
            fs::remove_dir_all(&db_dir).map_err(|source| Error::Io {
                path: db_dir.clone(),
                source,
            })?;
            // Give a burst of writes a moment to pass before the next copy.
            std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
        }
        Err(Error::BackupUnsettled { attempts: ATTEMPTS })
    }

    /// Restores the backup in `from` into the data directory `to` (absent or empty; the
    /// gateway stopped). The backup is opened and checked first, then copied.
    pub fn restore(from: &Path, to: &Path) -> Result<(), Error> {
        let backup = SledStore::open_with_cache(from, 8 * 1024 * 1024)?;
        backup.copy_to(to)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::DeviceId;
    use crate::gateway::{GatewayStore, Tenant, TenantId, TokenHash, User, UserId};

    fn tenant(id: &str) -> Tenant {
        Tenant {
            id: TenantId::new(id).unwrap(),
            name: "Padaria".into(),
            created_at: 1,
        }
    }

    fn user(n: u32) -> User {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        User {
            id: UserId::new(format!("u{n}")).unwrap(),
            tenant: TenantId::new("t1").unwrap(),
            name: format!("user {n}"),
            device: DeviceId::new(u64::from(n) + 1),
            token_hash: TokenHash::from_bytes(hash),
            created_at: 1,
        }
    }

    /// Users and their token index, read from a backup: every user is found by its token, and
    /// the index holds nothing else.
    fn consistent_users(dir: &Path) -> usize {
        let store = SledStore::open(dir).unwrap();
        let users = store.users().unwrap();
        for u in &users {
            assert_eq!(
                store.user_by_token(&u.token_hash).unwrap().as_ref(),
                Some(u)
            );
        }
        let index = store.db.open_tree("gw-tokens").unwrap();
        assert_eq!(index.len(), users.len(), "a token without its user");
        users.len()
    }

    #[test]
    fn a_write_during_the_copy_is_caught_and_the_copy_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStore::open(dir.path().join("data")).unwrap();
        live.create_tenant(&tenant("t1")).unwrap();
        let backup = dir.path().join("backup");
        let mut attempts = 0;
        live.copy_to_with(&backup, |attempt| {
            attempts = attempt;
            if attempt == 1 {
                live.create_user(&user(1)).unwrap();
            }
        })
        .unwrap();
        assert_eq!(attempts, 2, "the stale first copy was taken again");
        assert_eq!(consistent_users(&backup), 1, "the copy has the write");
    }

    #[test]
    fn a_store_that_never_settles_gives_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStore::open(dir.path().join("data")).unwrap();
        live.create_tenant(&tenant("t1")).unwrap();
        let backup = dir.path().join("backup");
        let result = live.copy_to_with(&backup, |attempt| {
            live.create_user(&user(attempt)).unwrap();
        });
        assert!(matches!(
            result,
            Err(Error::BackupUnsettled { attempts: ATTEMPTS })
        ));
        assert!(!backup.join(DB_DIR).exists(), "no half copy is left");
    }

    #[test]
    fn backups_taken_while_users_are_written_are_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let live = Arc::new(SledStore::open(dir.path().join("data")).unwrap());
        live.create_tenant(&tenant("t1")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (live, stop) = (live.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    // One transaction over the users and token trees, then a pause: long
                    // enough that a copy can settle between two writes on a loaded machine,
                    // short enough that writes keep landing while copies are taken.
                    live.create_user(&user(n)).unwrap();
                    n += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
                n
            })
        };
        let mut taken = Vec::new();
        for i in 0..10 {
            if taken.len() == 3 {
                break;
            }
            let backup = dir.path().join(format!("backup-{i}"));
            match live.copy_to(&backup) {
                Ok(()) => taken.push(backup),
                Err(Error::BackupUnsettled { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::SeqCst);
        let written = writer.join().unwrap();
        assert!(!taken.is_empty(), "no backup settled");
        let mut last = 0;
        for backup in &taken {
            let users = consistent_users(backup);
            assert!(users >= last && users <= written as usize);
            last = users;
        }
    }

    #[test]
    fn a_live_store_copies_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStore::open(dir.path().join("data")).unwrap();
        live.set_admin_token(&TokenHash::from_bytes([7; 32]))
            .unwrap();
        let tenant = tenant("t1");
        live.create_tenant(&tenant).unwrap();

        let backup = dir.path().join("backup");
        live.copy_to(&backup).unwrap();
        // Still in use after the copy; a second copy into the same place is refused.
        live.create_tenant(&Tenant {
            id: TenantId::new("t2").unwrap(),
            ..tenant.clone()
        })
        .unwrap();
        assert!(matches!(live.copy_to(&backup), Err(Error::Io { .. })));

        let restored = dir.path().join("restored");
        SledStore::restore(&backup, &restored).unwrap();
        let store = SledStore::open(&restored).unwrap();
        assert_eq!(
            store.admin_token().unwrap(),
            Some(TokenHash::from_bytes([7; 32]))
        );
        let tenants = store.tenants().unwrap();
        assert_eq!(tenants, vec![tenant], "the copy is the store as it was");
    }
}
