//! `Idempotency-Key` for `POST /groups` and every other mutating group route ([`run_keyed`]):
//! a retry with the same key and the same request gets
//! the first response back and creates nothing; the same key with another request is refused
//! (422, as in the IETF `Idempotency-Key` draft).
//!
//! Requests with one key run one at a time (a per-key async lock), so a retry that arrives while
//! the first attempt is still waiting for WhatsApp waits for it (up to its own deadline) and
//! then replays its result, rather than creating a second group.
//!
//! A keyed request never goes to WhatsApp twice: a `pending` record is on disk before it is
//! sent, and the response is on disk before it is answered. After a failure that reached
//! nothing (validation, device offline) or that WhatsApp refused, the record goes and a retry
//! runs again. After one whose outcome is unknown (a timeout, a lost connection, a crash), the
//! record stays `pending` and retries answer `OUTCOME_UNKNOWN` until it expires. Cost: two
//! fsyncs per keyed request (BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;
use wuts_store::gateway::{IdempotencyKey, Outcome, StoredResponse, UserId};

use super::{ApiError, AppState, unix_now};
use crate::client::api::DeviceId;
use crate::ops::groups::CreateGroup;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

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

    /// Holds the key within `wait`, or says a request with it is still running.
    pub(crate) async fn acquire_within(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        wait: Duration,
    ) -> Result<KeyGuard<'_>, ApiError> {
        tokio::time::timeout(wait, self.acquire(user, key))
            .await
            .map_err(|_| ApiError::IdempotencyKeyInUse)
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
pub(crate) fn request_hash(device: DeviceId, request: &CreateGroup) -> [u8; 32] {
    let canonical = serde_json::json!([
        device.get(),
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

/// A digest of any other keyed request: the route, the device and the normalised request
/// (its canonical JSON), so the same key on another route or group is a different request.
pub(crate) fn hash_of(device: DeviceId, route: &str, canonical: &serde_json::Value) -> [u8; 32] {
    let text = serde_json::json!([device.get(), route, canonical]).to_string();
    Sha256::digest(text.as_bytes()).into()
}

/// Why a keyed request's work failed, and whether WhatsApp may have acted on it (then the
/// key stays pending and retries answer `OUTCOME_UNKNOWN`).
pub(crate) struct Failure {
    pub(crate) error: ApiError,
    pub(crate) unknown: bool,
}

impl Failure {
    /// A client error, classified as `POST /groups` does: a stopped device task may have sent
    /// it, so it counts as unknown like a timeout.
    pub(crate) fn of(
        error: crate::client::api::Error,
        map: impl FnOnce(crate::client::api::Error) -> ApiError,
    ) -> Self {
        let unknown = error.outcome_unknown() || matches!(error, crate::client::api::Error::Closed);
        Failure {
            error: map(error),
            unknown,
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            unknown: false,
        }
    }
}

/// Runs `work` under the request's `Idempotency-Key`, if it sent one: a replay answers the
/// stored response, an unknown earlier outcome is refused, and a new response is stored
/// before it is answered. Without a key, `work` just runs.
pub(crate) async fn run_keyed(
    state: &Arc<AppState>,
    user: &UserId,
    key: Option<IdempotencyKey>,
    hash: [u8; 32],
    work: impl std::future::Future<Output = Result<(axum::http::StatusCode, Vec<u8>), Failure>>,
) -> Result<axum::response::Response, ApiError> {
    use super::groups::{json_response, replay};
    let Some(key) = key else {
        return work
            .await
            .map(|(status, body)| json_response(status, body))
            .map_err(|f| f.error);
    };
    let _guard = state
        .in_flight
        .acquire_within(user, &key, state.config.idempotency_wait)
        .await?;
    match lookup(state, user, &key, &hash)? {
        Lookup::Replay(status, body) => return Ok(replay(status, body)),
        Lookup::Unknown => return Err(ApiError::OutcomeUnknown),
        Lookup::Run => begin(state, user, &key, hash, true).await?,
        Lookup::Rerun => begin(state, user, &key, hash, false).await?,
    }
    match work.await {
        Ok((status, body)) => {
            complete(state, user, &key, hash, status.as_u16(), &body).await;
            Ok(json_response(status, body))
        }
        Err(Failure { error, unknown }) => {
            if !unknown {
                abandon(state, user, &key);
            }
            Err(error)
        }
    }
}

/// What to do with a keyed request.
pub(crate) enum Lookup {
    /// Nothing stored: run it (a new record for the user's quota).
    Run,
    /// Only an expired record: run it (in place of that record).
    Rerun,
    /// Answered before: send this status and body again.
    Replay(u16, Vec<u8>),
    /// An earlier attempt's outcome is unknown: do not send it again.
    Unknown,
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
        return Ok(Lookup::Rerun);
    }
    if stored.request_hash != *hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(match stored.outcome {
        Outcome::Pending => Lookup::Unknown,
        Outcome::Completed { status, body } => Lookup::Replay(status, body),
    })
}

/// Writes `record` and makes it durable, off the async workers.
async fn save_durably(
    state: &Arc<AppState>,
    user: &UserId,
    key: &IdempotencyKey,
    record: StoredResponse,
) -> Result<(), ApiError> {
    let (state, user, key) = (state.clone(), user.clone(), key.clone());
    let saved = tokio::task::spawn_blocking(move || {
        state.store.save_response(&user, &key, &record)?;
        state.store.flush_gateway()
    })
    .await;
    match saved {
        Ok(result) => result.map_err(ApiError::internal),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// How many idempotency records each user holds, counted once from the store and kept up to
/// date, so the per-user cap costs no scan per request. Recounted after each sweep.
#[derive(Debug, Default)]
pub(crate) struct Quota {
    held: Mutex<HashMap<UserId, usize>>,
}

impl Quota {
    /// Takes one record's place for `user`, or refuses past `cap`.
    fn take(&self, state: &AppState, user: &UserId) -> Result<(), ApiError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match held.get(user) {
            Some(n) => *n,
            None => state.store.count_responses(user)?,
        };
        if count >= state.config.idempotency_keys_per_user {
            held.insert(user.clone(), count);
            return Err(ApiError::TooManyIdempotencyKeys {
                limit: state.config.idempotency_keys_per_user,
            });
        }
        held.insert(user.clone(), count + 1);
        Ok(())
    }

    /// Gives a place back (the record was removed).
    fn give_back(&self, user: &UserId) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(user) {
            *n = n.saturating_sub(1);
        }
    }

    /// Forgets every count (after a sweep): the next request of each user recounts.
    fn reset(&self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Before the request goes to WhatsApp: a durable `pending` record, so that even a crash can
/// never lead to sending it twice. `new_record` says whether it takes a new place in the user's
/// quota (no record existed) or replaces an expired one.
pub(crate) async fn begin(
    state: &Arc<AppState>,
    user: &UserId,
    key: &IdempotencyKey,
    hash: [u8; 32],
    new_record: bool,
) -> Result<(), ApiError> {
    if new_record {
        state.quota.take(state, user)?;
    }
    let record = StoredResponse {
        request_hash: hash,
        outcome: Outcome::Pending,
        created_at: unix_now(),
    };
    save_durably(state, user, key, record).await
}

/// After a success: the response, durably, before it is sent. A failure to store is logged,
/// not returned: the group exists and the client must hear about it (a retry then answers
/// `OUTCOME_UNKNOWN`, never a second group).
pub(crate) async fn complete(
    state: &Arc<AppState>,
    user: &UserId,
    key: &IdempotencyKey,
    hash: [u8; 32],
    status: u16,
    body: &[u8],
) {
    let record = StoredResponse {
        request_hash: hash,
        outcome: Outcome::Completed {
            status,
            body: body.to_vec(),
        },
        created_at: unix_now(),
    };
    if let Err(error) = save_durably(state, user, key, record).await {
        tracing::error!(%error, "could not store the response for the idempotency key");
    }
}

/// After a failure that created nothing (refused before sending, or by WhatsApp): forget the
/// attempt so a retry runs.
pub(crate) fn abandon(state: &AppState, user: &UserId, key: &IdempotencyKey) {
    match state.store.remove_response(user, key) {
        Ok(true) => state.quota.give_back(user),
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%error, "could not remove a failed request's idempotency record");
        }
    }
}

/// Deletes expired records every `idempotency_sweep_every`, until aborted; each sweep runs on
/// the blocking pool.
pub(crate) async fn sweep_forever(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.idempotency_sweep_every);
    loop {
        tick.tick().await;
        let ttl = state.config.idempotency_ttl.as_secs();
        let swept = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                state.store.sweep_responses(unix_now().saturating_sub(ttl))
            })
            .await
        };
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(swept)) => {
                state.quota.reset();
                tracing::debug!(swept, "expired idempotency records removed");
            }
            Ok(Err(error)) => tracing::warn!(%error, "sweeping idempotency records failed"),
            Err(error) => tracing::warn!(%error, "the sweep task failed"),
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
        let d = DeviceId::new(1);
        assert_eq!(request_hash(d, &a), request_hash(d, &b));
        assert_ne!(request_hash(d, &a), request_hash(DeviceId::new(2), &a));
        b.locked = true;
        assert_ne!(request_hash(d, &a), request_hash(d, &b));
    }
}
