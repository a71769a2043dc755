//! The event outbox on PostgreSQL: events numbered per user, delivery marks, delivery records
//! and webhook configurations, as the sled and memory outboxes keep them.

use std::future::Future;
use std::sync::Arc;

use sqlx::postgres::PgPool;

use super::bridge::Bridge;
use super::gateway::{signed, sql, unsigned};
use crate::error::{Error, RecordKind};
use crate::gateway::UserId;
use crate::gateway::outbox::{EventStore, NewEvent, PendingDelivery, StoredEvent, WebhookScope};

const KIND: RecordKind = RecordKind::EventCounter;

/// [`EventStore`] on PostgreSQL.
pub struct PgEventStore {
    bridge: Arc<Bridge>,
}

impl PgEventStore {
    pub(crate) fn new(bridge: Arc<Bridge>) -> Self {
        PgEventStore { bridge }
    }

    fn call<T, F>(&self, op: &'static str, query: impl FnOnce(PgPool) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.bridge.run(op, query)
    }
}

/// A webhook scope as a column: the user's own is -1, a device's its id.
fn scope_sql(scope: WebhookScope) -> Result<i64, Error> {
    match scope {
        WebhookScope::User => Ok(-1),
        WebhookScope::Device(id) => signed(id.get(), KIND, "device id"),
    }
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl EventStore for PgEventStore {
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<u64>, Error> {
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            rows.push((
                e.user.as_str().to_owned(),
                signed(e.lane, KIND, "lane")?,
                e.pending,
                e.body.clone(),
            ));
        }
        self.call("append events", move |pool| async move {
            let mut tx = pool.begin().await.map_err(sql("append events"))?;
            let mut out = Vec::with_capacity(rows.len());
            for (user, lane, pending, body) in rows {
                // The row lock on the counter orders concurrent appends of one user.
                let (seq,): (i64,) = sqlx::query_as(
                    "INSERT INTO wuts_event_seq (user_id, last) VALUES ($1, 1)
                     ON CONFLICT (user_id) DO UPDATE SET last = wuts_event_seq.last + 1
                     RETURNING last",
                )
                .bind(&user)
                .fetch_one(&mut *tx)
                .await
                .map_err(sql("number an event"))?;
                sqlx::query("INSERT INTO wuts_event (user_id, seq, body) VALUES ($1, $2, $3)")
                    .bind(&user)
                    .bind(seq)
                    .bind(body)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql("append an event"))?;
                if pending {
                    sqlx::query(
                        "INSERT INTO wuts_pending (user_id, lane, seq) VALUES ($1, $2, $3)",
                    )
                    .bind(&user)
                    .bind(lane)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql("mark a delivery owed"))?;
                }
                out.push(unsigned(seq, KIND, "seq")?);
            }
            tx.commit().await.map_err(sql("append events"))?;
            Ok(out)
        })
    }

    fn events_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error> {
        let user = user.as_str().to_owned();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Vec<u8>)> = self.call("read events", move |pool| async move {
            sqlx::query_as(
                "SELECT seq, body FROM wuts_event WHERE user_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
            )
            .bind(user)
            .bind(after)
            .bind(limit_sql(limit))
            .fetch_all(&pool)
            .await
            .map_err(sql("read events"))
        })?;
        rows.into_iter()
            .map(|(seq, body)| {
                Ok(StoredEvent {
                    seq: unsigned(seq, KIND, "seq")?,
                    body,
                })
            })
            .collect()
    }

    fn last_seq(&self, user: &UserId) -> Result<u64, Error> {
        let user = user.as_str().to_owned();
        let row: Option<(i64,)> = self.call("read the event counter", move |pool| async move {
            sqlx::query_as("SELECT last FROM wuts_event_seq WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&pool)
                .await
                .map_err(sql("read the event counter"))
        })?;
        row.map_or(Ok(0), |(last,)| unsigned(last, KIND, "seq"))
    }

    fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, Error> {
        let rows: Vec<(String, i64, i64)> =
            self.call("list owed deliveries", |pool| async move {
                sqlx::query_as(
                    "SELECT user_id, lane, seq FROM wuts_pending
                 ORDER BY user_id COLLATE \"C\", lane, seq",
                )
                .fetch_all(&pool)
                .await
                .map_err(sql("list owed deliveries"))
            })?;
        rows.into_iter()
            .map(|(user, lane, seq)| {
                Ok(PendingDelivery {
                    user: UserId::new(user)?,
                    lane: unsigned(lane, KIND, "lane")?,
                    seq: unsigned(seq, KIND, "seq")?,
                })
            })
            .collect()
    }

    fn first_pending(&self, user: &UserId, lane: u64) -> Result<Option<u64>, Error> {
        let user = user.as_str().to_owned();
        let lane = signed(lane, KIND, "lane")?;
        let row: Option<(i64,)> = self.call("read a lane", move |pool| async move {
            sqlx::query_as(
                "SELECT seq FROM wuts_pending WHERE user_id = $1 AND lane = $2
                 ORDER BY seq LIMIT 1",
            )
            .bind(user)
            .bind(lane)
            .fetch_optional(&pool)
            .await
            .map_err(sql("read a lane"))
        })?;
        row.map(|(seq,)| unsigned(seq, KIND, "seq")).transpose()
    }

    fn set_pending(&self, pending: &PendingDelivery, owed: bool) -> Result<(), Error> {
        let user = pending.user.as_str().to_owned();
        let lane = signed(pending.lane, KIND, "lane")?;
        let seq = signed(pending.seq, KIND, "seq")?;
        self.call("mark a delivery", move |pool| async move {
            let query = if owed {
                "INSERT INTO wuts_pending (user_id, lane, seq) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM wuts_pending WHERE user_id = $1 AND lane = $2 AND seq = $3"
            };
            sqlx::query(query)
                .bind(user)
                .bind(lane)
                .bind(seq)
                .execute(&pool)
                .await
                .map_err(sql("mark a delivery"))?;
            Ok(())
        })
    }

    fn delivery(&self, user: &UserId, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        let user = user.as_str().to_owned();
        let seq = signed(seq, KIND, "seq")?;
        let row: Option<(Vec<u8>,)> = self.call("read a delivery", move |pool| async move {
            sqlx::query_as("SELECT record FROM wuts_delivery WHERE user_id = $1 AND seq = $2")
                .bind(user)
                .bind(seq)
                .fetch_optional(&pool)
                .await
                .map_err(sql("read a delivery"))
        })?;
        Ok(row.map(|(r,)| r))
    }

    fn save_delivery(&self, user: &UserId, seq: u64, record: &[u8]) -> Result<(), Error> {
        let user = user.as_str().to_owned();
        let seq = signed(seq, KIND, "seq")?;
        let record = record.to_vec();
        self.call("save a delivery", move |pool| async move {
            sqlx::query(
                "INSERT INTO wuts_delivery (user_id, seq, record) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, seq) DO UPDATE SET record = excluded.record",
            )
            .bind(user)
            .bind(seq)
            .bind(record)
            .execute(&pool)
            .await
            .map_err(sql("save a delivery"))?;
            Ok(())
        })
    }

    fn deliveries(
        &self,
        user: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let user = user.as_str().to_owned();
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Vec<u8>)> = self.call("list deliveries", move |pool| async move {
            sqlx::query_as(
                "SELECT seq, record FROM wuts_delivery WHERE user_id = $1 AND seq < $2
                 ORDER BY seq DESC LIMIT $3",
            )
            .bind(user)
            .bind(before)
            .bind(limit_sql(limit))
            .fetch_all(&pool)
            .await
            .map_err(sql("list deliveries"))
        })?;
        rows.into_iter()
            .map(|(seq, record)| Ok((unsigned(seq, KIND, "seq")?, record)))
            .collect()
    }

    fn webhook(&self, user: &UserId, scope: WebhookScope) -> Result<Option<Vec<u8>>, Error> {
        let user = user.as_str().to_owned();
        let scope = scope_sql(scope)?;
        let row: Option<(Vec<u8>,)> = self.call("read a webhook", move |pool| async move {
            sqlx::query_as("SELECT config FROM wuts_webhook WHERE user_id = $1 AND scope = $2")
                .bind(user)
                .bind(scope)
                .fetch_optional(&pool)
                .await
                .map_err(sql("read a webhook"))
        })?;
        Ok(row.map(|(c,)| c))
    }

    fn save_webhook(
        &self,
        user: &UserId,
        scope: WebhookScope,
        config: Option<&[u8]>,
    ) -> Result<(), Error> {
        let user = user.as_str().to_owned();
        let scope = scope_sql(scope)?;
        let config = config.map(<[u8]>::to_vec);
        self.call("save a webhook", move |pool| async move {
            let query = match config {
                Some(config) => sqlx::query(
                    "INSERT INTO wuts_webhook (user_id, scope, config) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, scope) DO UPDATE SET config = excluded.config",
                )
                .bind(user)
                .bind(scope)
                .bind(config),
                None => sqlx::query("DELETE FROM wuts_webhook WHERE user_id = $1 AND scope = $2")
                    .bind(user)
                    .bind(scope),
            };
            query.execute(&pool).await.map_err(sql("save a webhook"))?;
            Ok(())
        })
    }

    fn prune_events(&self, user: &UserId, up_to: u64) -> Result<usize, Error> {
        let user = user.as_str().to_owned();
        let up_to = i64::try_from(up_to).unwrap_or(i64::MAX);
        self.call("prune events", move |pool| async move {
            let mut tx = pool.begin().await.map_err(sql("prune events"))?;
            let mut pruned = 0;
            for table in ["wuts_event", "wuts_delivery"] {
                let done = sqlx::query(&format!(
                    "DELETE FROM {table} t WHERE t.user_id = $1 AND t.seq <= $2
                     AND NOT EXISTS (SELECT 1 FROM wuts_pending p
                       WHERE p.user_id = t.user_id AND p.seq = t.seq)"
                ))
                .bind(&user)
                .bind(up_to)
                .execute(&mut *tx)
                .await
                .map_err(sql("prune events"))?;
                if table == "wuts_event" {
                    pruned = done.rows_affected();
                }
            }
            tx.commit().await.map_err(sql("prune events"))?;
            Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
        })
    }

    /// Every write committed before it returned: nothing to flush.
    fn flush_events(&self) -> Result<(), Error> {
        Ok(())
    }
}
