//! [`EventStore`] on sled: trees of its own beside the gateway's.
//!
//! | tree           | key                              | value                      |
//! |----------------|----------------------------------|----------------------------|
//! | `ev-seq`       | user id                          | last sequence (8 B BE)     |
//! | `ev-outbox`    | user id ‖ 0 ‖ seq (8 B BE)        | event bytes                |
//! | `ev-pending`   | user id ‖ 0 ‖ lane ‖ seq          | empty                      |
//! | `ev-delivery`  | user id ‖ 0 ‖ seq                 | delivery record bytes      |
//! | `ev-webhooks`  | user id ‖ 0 ‖ `u` or `d` ‖ device | configuration bytes        |

use ::sled::transaction::Transactional;
use ::sled::{Db, Tree};

use super::{SledStore, abort, backend, transaction};
use crate::codec::RecordError;
use crate::error::{Error, RecordKind};
use crate::gateway::UserId;
use crate::gateway::outbox::{
    EventStore, NewEvent, PendingDelivery, StoredEvent, WebhookScope, event_key, lane_prefix,
    parse_pending_key, pending_key, trailing_u64, user_prefix, webhook_key,
};

/// The outbox's trees, opened with the store.
pub(super) struct Trees {
    seqs: Tree,
    events: Tree,
    pending: Tree,
    deliveries: Tree,
    webhooks: Tree,
}

impl Trees {
    pub(super) fn open(db: &Db) -> Result<Self, Error> {
        let tree = |name: &str| db.open_tree(name).map_err(backend("open tree"));
        Ok(Self {
            seqs: tree("ev-seq")?,
            events: tree("ev-outbox")?,
            pending: tree("ev-pending")?,
            deliveries: tree("ev-delivery")?,
            webhooks: tree("ev-webhooks")?,
        })
    }
}

fn counter(bytes: &[u8]) -> Result<u64, Error> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Error::CorruptStore {
            record: RecordKind::EventCounter,
            source: RecordError::OutOfRange { field: "seq" },
        })
}

impl EventStore for SledStore {
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<u64>, Error> {
        let t = &self.events;
        let trees = (&t.seqs, &t.events, &t.pending);
        let result = trees.transaction(|(seqs, outbox, pending)| {
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                let last = match seqs.get(event.user.as_str())? {
                    Some(bytes) => match counter(&bytes) {
                        Ok(n) => n,
                        Err(error) => return abort(error),
                    },
                    None => 0,
                };
                let seq = last + 1;
                seqs.insert(event.user.as_str(), &seq.to_be_bytes())?;
                outbox.insert(event_key(&event.user, seq), event.body.as_slice())?;
                if event.pending {
                    let mark = PendingDelivery {
                        user: event.user.clone(),
                        lane: event.lane,
                        seq,
                    };
                    pending.insert(pending_key(&mark), &[] as &[u8])?;
                }
                out.push(seq);
            }
            Ok(out)
        });
        let seqs = transaction("append events", result)?;
        self.flush_for("append events")?;
        Ok(seqs)
    }

    fn events_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error> {
        let from = event_key(user, after.saturating_add(1));
        let to = event_key(user, u64::MAX);
        let mut out = Vec::new();
        for entry in self.events.events.range(from..=to).take(limit) {
            let (key, value) = entry.map_err(backend("read events"))?;
            if let Some(seq) = trailing_u64(&key) {
                out.push(StoredEvent {
                    seq,
                    body: value.to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn last_seq(&self, user: &UserId) -> Result<u64, Error> {
        match self
            .events
            .seqs
            .get(user.as_str())
            .map_err(backend("read event seq"))?
        {
            Some(bytes) => counter(&bytes),
            None => Ok(0),
        }
    }

    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, Error> {
        let mut out = Vec::new();
        for entry in self.events.pending.iter() {
            let (key, _) = entry.map_err(backend("read pending deliveries"))?;
            // A key that does not read back is not ours to act on.
            if let Some(p) = parse_pending_key(&key) {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn first_pending(&self, user: &UserId, lane: u64) -> Result<Option<u64>, Error> {
        match self
            .events
            .pending
            .scan_prefix(lane_prefix(user, lane))
            .next()
        {
            Some(entry) => {
                let (key, _) = entry.map_err(backend("read pending deliveries"))?;
                Ok(trailing_u64(&key))
            }
            None => Ok(None),
        }
    }

    fn set_pending(&self, pending: &PendingDelivery, owed: bool) -> Result<(), Error> {
        let key = pending_key(pending);
        let tree = &self.events.pending;
        if owed {
            tree.insert(key, &[] as &[u8])
        } else {
            tree.remove(key)
        }
        .map(drop)
        .map_err(backend("mark delivery"))
    }

    fn delivery(&self, user: &UserId, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        let stored = self
            .events
            .deliveries
            .get(event_key(user, seq))
            .map_err(backend("read delivery"))?;
        Ok(stored.map(|v| v.to_vec()))
    }

    fn save_delivery(&self, user: &UserId, seq: u64, record: &[u8]) -> Result<(), Error> {
        self.events
            .deliveries
            .insert(event_key(user, seq), record)
            .map(drop)
            .map_err(backend("save delivery"))
    }

    fn deliveries(
        &self,
        user: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let from = event_key(user, 0);
        let to = event_key(user, before);
        let mut out = Vec::new();
        for entry in self.events.deliveries.range(from..to).rev().take(limit) {
            let (key, value) = entry.map_err(backend("read deliveries"))?;
            if let Some(seq) = trailing_u64(&key) {
                out.push((seq, value.to_vec()));
            }
        }
        Ok(out)
    }

    fn webhook(&self, user: &UserId, scope: WebhookScope) -> Result<Option<Vec<u8>>, Error> {
        let stored = self
            .events
            .webhooks
            .get(webhook_key(user, scope))
            .map_err(backend("read webhook"))?;
        Ok(stored.map(|v| v.to_vec()))
    }

    fn save_webhook(
        &self,
        user: &UserId,
        scope: WebhookScope,
        config: Option<&[u8]>,
    ) -> Result<(), Error> {
        let key = webhook_key(user, scope);
        let trees = (self.gateway.users_tree(), &self.events.webhooks);
        let result = trees.transaction(|(users, webhooks)| {
            if users.get(user.as_str())?.is_none() {
                return abort(Error::UnknownUser(user.clone()));
            }
            match config {
                Some(config) => webhooks.insert(key.as_slice(), config)?,
                None => webhooks.remove(key.as_slice())?,
            };
            Ok(())
        });
        transaction("save webhook", result)?;
        self.flush_for("save webhook")
    }

    fn prune_events(&self, user: &UserId, up_to: u64) -> Result<usize, Error> {
        let mut owed = std::collections::HashSet::new();
        for entry in self.events.pending.scan_prefix(user_prefix(user)) {
            let (key, _) = entry.map_err(backend("prune events"))?;
            if let Some(seq) = trailing_u64(&key) {
                owed.insert(seq);
            }
        }
        let mut pruned = 0;
        for tree in [&self.events.events, &self.events.deliveries] {
            let mut batch = ::sled::Batch::default();
            let mut n = 0;
            for entry in tree.range(event_key(user, 0)..=event_key(user, up_to)) {
                let (key, _) = entry.map_err(backend("prune events"))?;
                if trailing_u64(&key).is_some_and(|seq| !owed.contains(&seq)) {
                    batch.remove(key);
                    n += 1;
                }
            }
            tree.apply_batch(batch).map_err(backend("prune events"))?;
            if std::ptr::eq(tree, &self.events.events) {
                pruned = n;
            }
        }
        Ok(pruned)
    }

    fn flush_events(&self) -> Result<(), Error> {
        self.flush_for("flush events")
    }
}

/// Removes everything a user's events left (on user removal).
pub(super) fn remove_user(trees: &Trees, user: &UserId) -> Result<(), Error> {
    let prefix = user_prefix(user);
    for tree in [
        &trees.events,
        &trees.pending,
        &trees.deliveries,
        &trees.webhooks,
    ] {
        let mut batch = ::sled::Batch::default();
        for entry in tree.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(backend("remove user events"))?;
            batch.remove(key);
        }
        tree.apply_batch(batch)
            .map_err(backend("remove user events"))?;
    }
    trees
        .seqs
        .remove(user.as_str())
        .map(drop)
        .map_err(backend("remove user events"))
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use super::*;
    use crate::gateway::record::tests::sample_user;
    use crate::gateway::{GatewayStore, Tenant, TenantId};

    fn event(user: &UserId, lane: u64, pending: bool, body: &str) -> NewEvent {
        NewEvent {
            user: user.clone(),
            lane,
            pending,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn events_are_ordered_per_user_and_survive_a_reopen() -> Result<(), Box<dyn StdError>> {
        let dir = tempfile::tempdir()?;
        let a = UserId::new("a")?;
        let b = UserId::new("b")?;
        {
            let store = SledStore::open(dir.path())?;
            store.create_tenant(&Tenant {
                id: TenantId::new("t")?,
                name: "T".into(),
                created_at: 1,
            })?;
            store.create_user(&sample_user("a", "t", 1)?)?;
            let seqs = store.append_events(&[
                event(&a, 7, true, "a1"),
                event(&b, 9, false, "b1"),
                event(&a, 8, true, "a2"),
            ])?;
            assert_eq!(seqs, [1, 1, 2]);
            assert_eq!(store.append_events(&[event(&a, 7, true, "a3")])?, [3]);
            store.save_webhook(&a, WebhookScope::User, Some(b"cfg"))?;
            assert!(matches!(
                store.save_webhook(&b, WebhookScope::User, Some(b"cfg")),
                Err(Error::UnknownUser(_))
            ));
            store.set_pending(
                &PendingDelivery {
                    user: a.clone(),
                    lane: 8,
                    seq: 2,
                },
                false,
            )?;
            store.save_delivery(&a, 1, b"r1")?;
            store.save_delivery(&a, 3, b"r3")?;
            store.flush_events()?;
            // Dropped without a clean close: what was flushed is what a crash keeps.
        }
        let store = SledStore::open(dir.path())?;
        let read: Vec<_> = store
            .events_after(&a, 1, 10)?
            .into_iter()
            .map(|e| e.body)
            .collect();
        assert_eq!(read, [b"a2".to_vec(), b"a3".to_vec()]);
        assert_eq!(store.last_seq(&a)?, 3);
        assert_eq!(store.last_seq(&b)?, 1);
        assert_eq!(store.first_pending(&a, 7)?, Some(1));
        assert_eq!(store.first_pending(&a, 8)?, None);
        let owed: Vec<_> = store
            .pending_deliveries()?
            .into_iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(owed, [1, 3]);
        assert_eq!(
            store.webhook(&a, WebhookScope::User)?,
            Some(b"cfg".to_vec())
        );
        let newest: Vec<_> = store
            .deliveries(&a, u64::MAX, 10)?
            .into_iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(newest, [3, 1]);
        // Pruning keeps what is still owed (1 and 3 are pending).
        assert_eq!(store.prune_events(&a, 3)?, 1);
        let left: Vec<_> = store
            .events_after(&a, 0, 10)?
            .into_iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, [1, 3]);
        store.remove_user(&a)?;
        assert!(store.events_after(&a, 0, 10)?.is_empty());
        assert!(store.pending_deliveries()?.is_empty());
        Ok(())
    }
}
