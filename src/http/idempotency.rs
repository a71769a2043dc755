//! `Idempotency-Key` for `POST /groups`: a retry with the same key and the same request gets
//! the first response back and creates nothing; the same key with another request is refused
//! (422, as in the IETF `Idempotency-Key` draft).
//!
//! Requests with one key run one at a time (a per-key async lock), so a retry that arrives while
//! the first attempt is still waiting for WhatsApp waits for it and then replays its result,
//! rather than creating a second group. Only successes are stored: after a failure nothing was
//! created, so running the request again is safe and may succeed. A timeout is the exception
//! to "nothing was created" (WhatsApp may have acted without answering); the client learns that
//! from the 504 and can check before retrying.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;
use wuts_store::gateway::{IdempotencyKey, StoredResponse, UserId};

use super::{ApiError, AppState, unix_now};
use crate::ops::groups::CreateGroup;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How often expired records are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

type Slot = (UserId, IdempotencyKey);

/// Keys with a request running, each with its lock.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    locks: Mutex<HashMap<Slot, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while a request with a key runs; releases the key on drop.
pub(crate) struct KeyGuard<'a> {
    in_flight: &'a InFlight,
    slot: Slot,
    /// The guard owns a clone of the lock's `Arc`.
    held: OwnedMutexGuard<()>,
}

impl InFlight {
    /// Requests holding or waiting for a key right now.
    pub(crate) fn requests(&self) -> usize {
        let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Each holder and waiter owns a clone of its key's lock; the map owns one more.
        locks.values().map(|l| Arc::strong_count(l) - 1).sum()
    }

    /// Waits until no other request with this key runs, then holds the key.
    pub(crate) async fn acquire(&self, user: &UserId, key: &IdempotencyKey) -> KeyGuard<'_> {
        let slot = (user.clone(), key.clone());
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(slot.clone())
            .or_default()
            .clone();
        let held = lock.lock_owned().await;
        KeyGuard {
            in_flight: self,
            slot,
            held,
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self
            .in_flight
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The guard's clone and the map's are the only ones: nobody waits, the entry can go.
        // Waiters clone under this same map lock, so the count cannot change while we look.
        let lock = OwnedMutexGuard::mutex(&self.held);
        let unused = locks
            .get(&self.slot)
            .is_some_and(|entry| Arc::ptr_eq(entry, lock))
            && Arc::strong_count(lock) == 2;
        if unused {
            locks.remove(&self.slot);
        }
    }
}

/// The request's key, if it sent one.
pub(crate) fn key_of(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let message = "must be 1 to 255 visible ASCII characters";
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", message))?;
    IdempotencyKey::new(text)
        .map(Some)
        .map_err(|_| ApiError::invalid("Idempotency-Key", message))
}

/// A digest of the normalised request: two bodies that mean the same group (participants
/// written differently, fields reordered, whitespace) hash the same.
pub(crate) fn request_hash(request: &CreateGroup) -> [u8; 32] {
    let canonical = serde_json::json!([
        request.subject,
        request
            .participants
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        request.description,
        request.announcement,
        request.locked,
        request.join_approval,
        request.community,
        request.parent.as_ref().map(ToString::to_string),
    ]);
    Sha256::digest(canonical.to_string().as_bytes()).into()
}

/// What to do with a keyed request.
pub(crate) enum Lookup {
    /// Nothing stored (or expired): run it.
    Run,
    /// Answered before: send this again.
    Replay(StoredResponse),
}

/// Looks the key up, applying the TTL and refusing a different request under the same key.
pub(crate) fn lookup(
    state: &AppState,
    user: &UserId,
    key: &IdempotencyKey,
    hash: &[u8; 32],
) -> Result<Lookup, ApiError> {
    let Some(stored) = state.store.stored_response(user, key)? else {
        return Ok(Lookup::Run);
    };
    let ttl = state.config.idempotency_ttl.as_secs();
    if stored.created_at.saturating_add(ttl) <= unix_now() {
        return Ok(Lookup::Run);
    }
    if stored.request_hash != *hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(Lookup::Replay(stored))
}

/// Stores a success for replay. A failure to store is logged, not returned: the group exists
/// and the client must hear about it.
pub(crate) fn remember(
    state: &AppState,
    user: &UserId,
    key: &IdempotencyKey,
    hash: [u8; 32],
    status: u16,
    body: &[u8],
) {
    let stored = StoredResponse {
        request_hash: hash,
        status,
        body: body.to_vec(),
        created_at: unix_now(),
    };
    if let Err(error) = state.store.save_response(user, key, &stored) {
        tracing::error!(%error, "could not store the response for the idempotency key");
    }
}

/// Deletes expired records every [`SWEEP_EVERY`], until aborted.
pub(crate) async fn sweep_forever(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let ttl = state.config.idempotency_ttl.as_secs();
        match state.store.sweep_responses(unix_now().saturating_sub(ttl)) {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired idempotency records removed"),
            Err(error) => tracing::warn!(%error, "sweeping idempotency records failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::Jid;

    #[tokio::test]
    async fn one_request_per_key_and_entries_are_released() {
        let in_flight = InFlight::default();
        let user = UserId::new("u").unwrap();
        let key = IdempotencyKey::new("k").unwrap();
        let first = in_flight.acquire(&user, &key).await;
        let second =
            tokio::time::timeout(Duration::from_millis(20), in_flight.acquire(&user, &key)).await;
        assert!(second.is_err(), "a second holder must wait");
        drop(first);
        let again = in_flight.acquire(&user, &key).await;
        drop(again);
        assert!(in_flight.locks.lock().unwrap().is_empty());
    }

    #[test]
    fn hash_ignores_spelling_but_not_meaning() {
        let a = CreateGroup {
            subject: "A".into(),
            participants: vec![Jid::new("5511999990001", "s.whatsapp.net")],
            ..CreateGroup::default()
        };
        let mut b = a.clone();
        assert_eq!(request_hash(&a), request_hash(&b));
        b.locked = true;
        assert_ne!(request_hash(&a), request_hash(&b));
    }
}
