//! Writing a [`Snapshot`] into an empty cluster database, in one transaction.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::error::{PgError, backend};
use crate::gateway::Outcome;
use crate::gateway::outbox::WebhookScope;
use crate::migrate::Snapshot;

fn big(value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::Corrupt("a number beyond bigint in the store"))
}

/// Imports `snapshot`; refuses (`PgError::NotEmpty`) a database holding devices or users.
pub(crate) async fn import(conn: &mut PgConnection, snapshot: &Snapshot) -> Result<(), PgError> {
    let mut tx = conn.begin().await.map_err(backend("begin the import"))?;
    let (held,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM wuts_device_owner) OR EXISTS (SELECT 1 FROM wuts_user)",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(backend("check the target is empty"))?;
    if held {
        return Err(PgError::NotEmpty);
    }
    for device in &snapshot.devices {
        // Unowned at epoch 0: the first node to start claims it.
        sqlx::query("INSERT INTO wuts_device_owner (device_id) VALUES ($1)")
            .bind(big(*device)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("import a device"))?;
    }
    for (device, tree, key, value) in &snapshot.kv {
        sqlx::query(
            "INSERT INTO wuts_kv (device_id, tree, key, value, epoch) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(big(*device)?)
        .bind(*tree)
        .bind(key.as_slice())
        .bind(value.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(backend("import a device record"))?;
    }
    if snapshot.last_device_id > 0 {
        sqlx::query("SELECT setval('wuts_device_seq', $1)")
            .bind(big(snapshot.last_device_id)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("set the device id sequence"))?;
    }
    if let Some(admin) = &snapshot.admin {
        sqlx::query("INSERT INTO wuts_admin (id, token_hash) VALUES (1, $1)")
            .bind(admin.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(backend("import the admin token"))?;
    }
    for t in &snapshot.tenants {
        sqlx::query("INSERT INTO wuts_tenant (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(t.id.as_str())
            .bind(&t.name)
            .bind(big(t.created_at)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("import a tenant"))?;
    }
    for u in &snapshot.users {
        sqlx::query(
            "INSERT INTO wuts_user (id, tenant_id, name, device_id, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(u.id.as_str())
        .bind(u.tenant.as_str())
        .bind(&u.name)
        .bind(big(u.device.get())?)
        .bind(u.token_hash.as_bytes().as_slice())
        .bind(big(u.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(backend("import a user"))?;
    }
    for d in &snapshot.gateway_devices {
        sqlx::query(
            "INSERT INTO wuts_gateway_device (id, user_id, name, device_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(d.id.as_str())
        .bind(d.user.as_str())
        .bind(&d.name)
        .bind(big(d.device.get())?)
        .bind(big(d.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(backend("import a device slot"))?;
    }
    for (user, key, r) in &snapshot.responses {
        let (status, body) = match &r.outcome {
            Outcome::Pending => (None, None),
            Outcome::Completed { status, body } => {
                (Some(i32::from(*status)), Some(body.as_slice()))
            }
        };
        sqlx::query(
            "INSERT INTO wuts_idempotency (user_id, key, request_hash, status, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.as_str())
        .bind(key)
        .bind(r.request_hash.as_slice())
        .bind(status)
        .bind(body)
        .bind(big(r.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(backend("import an idempotency record"))?;
    }
    for (user, last) in &snapshot.event_seqs {
        sqlx::query("INSERT INTO wuts_event_seq (user_id, last) VALUES ($1, $2)")
            .bind(user.as_str())
            .bind(big(*last)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("import an event counter"))?;
    }
    for (table, column, rows) in [
        ("wuts_event", "body", &snapshot.events),
        ("wuts_delivery", "record", &snapshot.deliveries),
    ] {
        for (user, seq, bytes) in rows {
            sqlx::query(&format!(
                "INSERT INTO {table} (user_id, seq, {column}) VALUES ($1, $2, $3)"
            ))
            .bind(user.as_str())
            .bind(big(*seq)?)
            .bind(bytes.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(backend("import an event"))?;
        }
    }
    for p in &snapshot.pending {
        sqlx::query("INSERT INTO wuts_pending (user_id, lane, seq) VALUES ($1, $2, $3)")
            .bind(p.user.as_str())
            .bind(big(p.lane)?)
            .bind(big(p.seq)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("import an owed delivery"))?;
    }
    for (user, scope, config) in &snapshot.webhooks {
        let scope = match scope {
            WebhookScope::User => -1,
            WebhookScope::Device(id) => big(id.get())?,
        };
        sqlx::query("INSERT INTO wuts_webhook (user_id, scope, config) VALUES ($1, $2, $3)")
            .bind(user.as_str())
            .bind(scope)
            .bind(config.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(backend("import a webhook"))?;
    }
    for session in &snapshot.console_sessions {
        sqlx::query("INSERT INTO wuts_console_session (key, record) VALUES ($1, $2)")
            .bind(session.key.as_slice())
            .bind(session.record.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(backend("import a console session"))?;
    }
    tx.commit().await.map_err(backend("commit the import"))
}
