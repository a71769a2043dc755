//! Key work off the async workers, answered back to the connection: the store work of the key
//! upkeep (pre-keys, the digest check, signed pre-key rotation) and a pairing code's PBKDF2.

use tokio::time::Instant;

use super::{Driver, Live, blocking, jobs};
use crate::engine::Event;

impl Driver {
    /// Runs one key event's store job and answers the connection.
    pub(super) async fn key_job(&self, l: &mut Live, ev: Event, base: Instant) {
        let (store, id) = (self.store.clone(), self.id);
        let device = id.get();
        match ev {
            Event::NeedPreKeys(n) => {
                let seed: [u8; 32] = rand::random();
                let keys = blocking(move || jobs::prepare_pre_keys(store.as_ref(), id, n, seed));
                match keys.await {
                    Ok(keys) => l.conn.pre_keys_ready(base.elapsed(), &keys),
                    Err(e) => {
                        tracing::warn!(device, error = %e, "pre-keys not prepared");
                        l.conn.pre_keys_ready(base.elapsed(), &[]);
                    }
                }
            }
            Event::CheckDigest(digest) => {
                let ids = digest.pre_key_ids.clone();
                let held = blocking(move || jobs::listed_pre_keys(store.as_ref(), id, &ids));
                match held.await {
                    Ok(held) => l.conn.digest_keys_loaded(base.elapsed(), &digest, &held),
                    Err(e) => tracing::warn!(device, error = %e, "digest not checked"),
                }
            }
            Event::SaveSignedPreKey(key) => {
                let saved = blocking(move || store.replace_signed_pre_key(id, &key));
                l.conn.signed_pre_key_saved(base.elapsed(), saved.await);
            }
            Event::SignedPreKeyRotated { at } => {
                let saved = blocking(move || jobs::record_rotation(store.as_ref(), id, at));
                if let Err(e) = saved.await {
                    tracing::warn!(device, error = %e, "rotation time not kept");
                }
            }
            Event::DeriveCodeKey(job) => {
                let key = blocking(move || job.run()).await;
                l.conn.code_key_derived(base.elapsed(), key);
            }
            _ => {}
        }
    }
}
