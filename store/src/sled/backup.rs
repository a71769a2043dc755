//! A copy of a data directory made while it is in use: every tree of the open database is read
//! and written into a new database at the destination, which is flushed and then opened as a
//! store (schema checked) before the copy is called done. Each tree is read in one pass; a
//! write that races with the copy is either in it or not, never half in. Devices, users and
//! tokens are written before they are acknowledged, so a backup taken after an acknowledgement
//! holds it.

use std::fs;
use std::path::Path;

use super::{DB_DIR, Error, SledStore, backend, open_db};

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

impl SledStore {
    /// Writes a consistent, openable copy of this store into `dest` (absent or empty), while
    /// the store stays in use.
    pub fn copy_to(&self, dest: &Path) -> Result<(), Error> {
        fresh_destination(dest)?;
        {
            let copy =
                open_db(&dest.join(DB_DIR), 8 * 1024 * 1024).map_err(backend("backup open"))?;
            copy.import(self.db.export());
            copy.flush().map_err(backend("backup flush"))?;
        }
        // Proof that the copy is a store this build opens.
        drop(SledStore::open_with_cache(dest, 8 * 1024 * 1024)?);
        Ok(())
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

    use super::*;
    use crate::gateway::{GatewayStore, Tenant, TenantId, TokenHash};

    #[test]
    fn a_live_store_copies_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStore::open(dir.path().join("data")).unwrap();
        live.set_admin_token(&TokenHash::from_bytes([7; 32]))
            .unwrap();
        let tenant = Tenant {
            id: TenantId::new("t1").unwrap(),
            name: "Padaria".into(),
            created_at: 1,
        };
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
