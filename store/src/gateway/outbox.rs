//! The event outbox: what happened to a user's devices, in order, kept until it is delivered
//! and served again to a resuming stream. The gateway writes opaque bytes (its JSON envelope
//! and delivery records); this module only orders, indexes and keeps them.
//!
//! - Events get a sequence number per user, 1, 2, 3 ...: the `id:` of the event stream, so a
//!   client resumes with `Last-Event-ID` without gaps.
//! - [`EventStore::append_events`] is **durable**: it returns once the events (and, for those
//!   with a webhook, their pending marks) are on disk, so the gateway acknowledges nothing to
//!   WhatsApp or a caller before an event is safe.
//! - A pending mark `(user, lane, seq)` says a webhook delivery is still owed. Lanes are the
//!   device's store id: deliveries of one lane go in sequence order, lanes do not wait for each
//!   other. Clearing a mark and saving a delivery record are not flushed at once: a crash
//!   between a delivery and the next flush delivers that event again (at least once).
//! - Webhook configurations are kept per user ([`WebhookScope::User`], the default for new
//!   devices) and per device; writing one is durable (a caller was told it is set).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::UserId;
use crate::error::Error;
use crate::model::DeviceId;

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Whose event it is.
    pub user: UserId,
    /// The delivery lane (the device's store id).
    pub lane: u64,
    /// Whether a webhook delivery is owed for it.
    pub pending: bool,
    /// The event as the gateway serialised it.
    pub body: Vec<u8>,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its sequence number within the user's events.
    pub seq: u64,
    /// The bytes appended.
    pub body: Vec<u8>,
}

/// A delivery still owed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingDelivery {
    /// Whose.
    pub user: UserId,
    /// Which lane.
    pub lane: u64,
    /// Which event.
    pub seq: u64,
}

/// Whose webhook configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WebhookScope {
    /// The user's own (`POST /user/webhook`): applies to devices without one of their own.
    User,
    /// One device's (`POST /webhook`).
    Device(DeviceId),
}

impl WebhookScope {
    fn key_bytes(self) -> Vec<u8> {
        match self {
            WebhookScope::User => b"u".to_vec(),
            WebhookScope::Device(id) => {
                let mut out = b"d".to_vec();
                out.extend_from_slice(&id.get().to_be_bytes());
                out
            }
        }
    }
}

/// The outbox, delivery records and webhook configurations of every user.
pub trait EventStore: Send + Sync {
    /// Appends `events` (in order) and returns their sequence numbers. **Durable.**
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<u64>, Error>;
    /// Up to `limit` of the user's events with a sequence number above `after`, oldest first.
    fn events_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error>;
    /// The user's newest sequence number (0 before the first event).
    fn last_seq(&self, user: &UserId) -> Result<u64, Error>;
    /// Every pending mark, in key order (user, lane, seq).
    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, Error>;
    /// The oldest pending mark of one lane.
    fn first_pending(&self, user: &UserId, lane: u64) -> Result<Option<u64>, Error>;
    /// Sets or clears a pending mark.
    fn set_pending(&self, pending: &PendingDelivery, owed: bool) -> Result<(), Error>;
    /// The delivery record of one event.
    fn delivery(&self, user: &UserId, seq: u64) -> Result<Option<Vec<u8>>, Error>;
    /// Saves the delivery record of one event.
    fn save_delivery(&self, user: &UserId, seq: u64, record: &[u8]) -> Result<(), Error>;
    /// Up to `limit` delivery records with a sequence number below `before`, newest first.
    fn deliveries(
        &self,
        user: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Error>;
    /// A webhook configuration.
    fn webhook(&self, user: &UserId, scope: WebhookScope) -> Result<Option<Vec<u8>>, Error>;
    /// Saves (or with `None` removes) a webhook configuration. **Durable.**
    fn save_webhook(
        &self,
        user: &UserId,
        scope: WebhookScope,
        config: Option<&[u8]>,
    ) -> Result<(), Error>;
    /// Removes the user's events (and their delivery records) numbered `up_to` or below,
    /// except those still owed a delivery; returns how many went. Not flushed.
    fn prune_events(&self, user: &UserId, up_to: u64) -> Result<usize, Error>;
    /// Makes every earlier write durable.
    fn flush_events(&self) -> Result<(), Error>;
}

/// `user ‖ 0`: every per-user key starts so (user ids hold no 0 byte).
pub(crate) fn user_prefix(user: &UserId) -> Vec<u8> {
    let mut out = user.as_str().as_bytes().to_vec();
    out.push(0);
    out
}

/// `user ‖ 0 ‖ seq`.
pub(crate) fn event_key(user: &UserId, seq: u64) -> Vec<u8> {
    let mut out = user_prefix(user);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// `user ‖ 0 ‖ lane`.
pub(crate) fn lane_prefix(user: &UserId, lane: u64) -> Vec<u8> {
    let mut out = user_prefix(user);
    out.extend_from_slice(&lane.to_be_bytes());
    out
}

/// `user ‖ 0 ‖ lane ‖ seq`.
pub(crate) fn pending_key(p: &PendingDelivery) -> Vec<u8> {
    let mut out = lane_prefix(&p.user, p.lane);
    out.extend_from_slice(&p.seq.to_be_bytes());
    out
}

/// `user ‖ 0 ‖ scope`.
pub(crate) fn webhook_key(user: &UserId, scope: WebhookScope) -> Vec<u8> {
    let mut out = user_prefix(user);
    out.extend_from_slice(&scope.key_bytes());
    out
}

/// The last 8 bytes of a key as a big-endian number.
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    key.get(start..)?.try_into().ok().map(u64::from_be_bytes)
}

/// Reads a pending key back.
pub(crate) fn parse_pending_key(key: &[u8]) -> Option<PendingDelivery> {
    let zero = key.iter().position(|b| *b == 0)?;
    let user = UserId::new(std::str::from_utf8(key.get(..zero)?).ok()?).ok()?;
    let rest = key.get(zero + 1..)?;
    if rest.len() != 16 {
        return None;
    }
    Some(PendingDelivery {
        user,
        lane: rest.get(..8)?.try_into().ok().map(u64::from_be_bytes)?,
        seq: trailing_u64(rest)?,
    })
}

/// [`EventStore`] in memory, for the HTTP tests.
#[derive(Debug, Default)]
pub struct MemEventStore {
    state: Mutex<MemState>,
}

#[derive(Debug, Default)]
struct MemState {
    seqs: BTreeMap<UserId, u64>,
    events: BTreeMap<(UserId, u64), Vec<u8>>,
    pending: BTreeMap<PendingDelivery, ()>,
    deliveries: BTreeMap<(UserId, u64), Vec<u8>>,
    webhooks: BTreeMap<(UserId, WebhookScope), Vec<u8>>,
}

impl MemEventStore {
    /// Forgets everything of `user`.
    pub(crate) fn remove_user(&self, user: &UserId) {
        let mut state = self.state();
        state.seqs.remove(user);
        state.events.retain(|(owner, _), _| owner != user);
        state.pending.retain(|p, _| &p.user != user);
        state.deliveries.retain(|(owner, _), _| owner != user);
        state.webhooks.retain(|(owner, _), _| owner != user);
    }

    fn state(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventStore for MemEventStore {
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<u64>, Error> {
        let mut state = self.state();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let seq = state.seqs.entry(event.user.clone()).or_insert(0);
            *seq += 1;
            let seq = *seq;
            state
                .events
                .insert((event.user.clone(), seq), event.body.clone());
            if event.pending {
                let mark = PendingDelivery {
                    user: event.user.clone(),
                    lane: event.lane,
                    seq,
                };
                state.pending.insert(mark, ());
            }
            out.push(seq);
        }
        Ok(out)
    }

    fn events_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error> {
        let state = self.state();
        let from = (user.clone(), after.saturating_add(1));
        let to = (user.clone(), u64::MAX);
        Ok(state
            .events
            .range(from..=to)
            .take(limit)
            .map(|((_, seq), body)| StoredEvent {
                seq: *seq,
                body: body.clone(),
            })
            .collect())
    }

    fn last_seq(&self, user: &UserId) -> Result<u64, Error> {
        Ok(self.state().seqs.get(user).copied().unwrap_or(0))
    }

    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, Error> {
        Ok(self.state().pending.keys().cloned().collect())
    }

    fn first_pending(&self, user: &UserId, lane: u64) -> Result<Option<u64>, Error> {
        let state = self.state();
        let from = PendingDelivery {
            user: user.clone(),
            lane,
            seq: 0,
        };
        Ok(state
            .pending
            .range(from..)
            .next()
            .filter(|(p, _)| &p.user == user && p.lane == lane)
            .map(|(p, _)| p.seq))
    }

    fn set_pending(&self, pending: &PendingDelivery, owed: bool) -> Result<(), Error> {
        let mut state = self.state();
        if owed {
            state.pending.insert(pending.clone(), ());
        } else {
            state.pending.remove(pending);
        }
        Ok(())
    }

    fn delivery(&self, user: &UserId, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.state().deliveries.get(&(user.clone(), seq)).cloned())
    }

    fn save_delivery(&self, user: &UserId, seq: u64, record: &[u8]) -> Result<(), Error> {
        self.state()
            .deliveries
            .insert((user.clone(), seq), record.to_vec());
        Ok(())
    }

    fn deliveries(
        &self,
        user: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let state = self.state();
        let from = (user.clone(), 0);
        let to = (user.clone(), before);
        Ok(state
            .deliveries
            .range(from..to)
            .rev()
            .take(limit)
            .map(|((_, seq), record)| (*seq, record.clone()))
            .collect())
    }

    fn webhook(&self, user: &UserId, scope: WebhookScope) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.state().webhooks.get(&(user.clone(), scope)).cloned())
    }

    fn save_webhook(
        &self,
        user: &UserId,
        scope: WebhookScope,
        config: Option<&[u8]>,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let key = (user.clone(), scope);
        match config {
            Some(config) => state.webhooks.insert(key, config.to_vec()),
            None => state.webhooks.remove(&key),
        };
        Ok(())
    }

    fn prune_events(&self, user: &UserId, up_to: u64) -> Result<usize, Error> {
        let mut state = self.state();
        let owed: std::collections::HashSet<u64> = state
            .pending
            .keys()
            .filter(|p| &p.user == user)
            .map(|p| p.seq)
            .collect();
        let before = state.events.len();
        state
            .events
            .retain(|(owner, seq), _| owner != user || *seq > up_to || owed.contains(seq));
        state
            .deliveries
            .retain(|(owner, seq), _| owner != user || *seq > up_to || owed.contains(seq));
        Ok(before - state.events.len())
    }

    fn flush_events(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keys_read_back() -> Result<(), Error> {
        let p = PendingDelivery {
            user: UserId::new("u-1")?,
            lane: 7,
            seq: 300,
        };
        assert_eq!(parse_pending_key(&pending_key(&p)), Some(p));
        assert_eq!(parse_pending_key(b"u\0short"), None);
        Ok(())
    }
}
