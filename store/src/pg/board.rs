//! The status board: what each device's owner last published about it (state, JID, QR code,
//! pairing code), so any node can show any device in listings without asking its owner, and
//! the cluster's forwarding secret.

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};

use super::error::{PgError, backend};
use super::{Fence, device_sql, epoch_sql};
use crate::model::DeviceId;

/// One device's published status (times are Unix seconds; the QR's validity in ms).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusRow {
    /// The lifecycle phase, as its stable name.
    pub state: String,
    /// The device JID once paired.
    pub jid: Option<String>,
    /// Why it is where it is: stable code and sentence.
    pub reason: Option<(String, String)>,
    /// The QR code on show, its expiry and its validity.
    pub qr: Option<(String, u64, u64)>,
    /// The pairing code on show, its phone and its expiry.
    pub pair_code: Option<(String, String, u64)>,
    /// When it was last seen connected.
    pub last_seen: Option<u64>,
    /// Whether the node that published it still owns the device and holds its lease (read
    /// back only; a stale row describes a device whose node died).
    pub live: bool,
}

fn int(value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::Corrupt("a time beyond bigint"))
}

fn uint(value: i64) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::Corrupt("a negative time"))
}

/// Publishes `row` for the fence's device; only while the fence is current (a node that lost
/// the device cannot overwrite its new owner's status). Returns whether it was written.
pub async fn publish_status(
    conn: &mut PgConnection,
    fence: &Fence,
    row: &StatusRow,
) -> Result<bool, PgError> {
    let qr = row.qr.as_ref();
    let code = row.pair_code.as_ref();
    let done = sqlx::query(
        "INSERT INTO wuts_device_status (device_id, epoch, state, jid, reason_code,
           reason_message, qr, qr_expires_at, qr_ttl_ms, pair_code, pair_phone, pair_expires_at,
           last_seen, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now()
         WHERE EXISTS (SELECT 1 FROM wuts_device_owner WHERE device_id = $1 AND epoch = $2
                       AND owner_node = $14 AND owner_inc = $15)
         ON CONFLICT (device_id) DO UPDATE SET epoch = excluded.epoch, state = excluded.state,
           jid = excluded.jid, reason_code = excluded.reason_code,
           reason_message = excluded.reason_message, qr = excluded.qr,
           qr_expires_at = excluded.qr_expires_at, qr_ttl_ms = excluded.qr_ttl_ms,
           pair_code = excluded.pair_code, pair_phone = excluded.pair_phone,
           pair_expires_at = excluded.pair_expires_at, last_seen = excluded.last_seen,
           updated_at = now()
         WHERE wuts_device_status.epoch <= excluded.epoch",
    )
    .bind(device_sql(fence.device)?)
    .bind(epoch_sql(fence.epoch)?)
    .bind(&row.state)
    .bind(row.jid.as_deref())
    .bind(row.reason.as_ref().map(|r| r.0.as_str()))
    .bind(row.reason.as_ref().map(|r| r.1.as_str()))
    .bind(qr.map(|q| q.0.as_str()))
    .bind(qr.map(|q| int(q.1)).transpose()?)
    .bind(qr.map(|q| int(q.2)).transpose()?)
    .bind(code.map(|c| c.0.as_str()))
    .bind(code.map(|c| c.1.as_str()))
    .bind(code.map(|c| int(c.2)).transpose()?)
    .bind(row.last_seen.map(int).transpose()?)
    .bind(fence.node.as_str())
    .bind(fence.incarnation.0)
    .execute(conn)
    .await
    .map_err(backend("publish a device status"))?;
    Ok(done.rows_affected() > 0)
}

/// What `device`'s owner last published, if anything.
pub async fn read_status(pool: &PgPool, device: DeviceId) -> Result<Option<StatusRow>, PgError> {
    let row = sqlx::query(
        "SELECT s.state, s.jid, s.reason_code, s.reason_message, s.qr, s.qr_expires_at,
           s.qr_ttl_ms, s.pair_code, s.pair_phone, s.pair_expires_at, s.last_seen,
           EXISTS (SELECT 1 FROM wuts_device_owner o JOIN wuts_node n
                     ON n.node_id = o.owner_node AND n.incarnation = o.owner_inc
                   WHERE o.device_id = s.device_id AND o.epoch = s.epoch
                     AND n.expires_at > now()) AS live
         FROM wuts_device_status s WHERE s.device_id = $1",
    )
    .bind(device_sql(device)?)
    .fetch_optional(pool)
    .await
    .map_err(backend("read a device status"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let get = backend("read a device status");
    let text = |name: &str| -> Result<Option<String>, PgError> {
        row.try_get(name).map_err(backend("read a device status"))
    };
    let num = |name: &str| -> Result<Option<u64>, PgError> {
        let value: Option<i64> = row.try_get(name).map_err(backend("read a device status"))?;
        value.map(uint).transpose()
    };
    let state: String = row.try_get("state").map_err(get)?;
    let reason = match (text("reason_code")?, text("reason_message")?) {
        (Some(code), Some(message)) => Some((code, message)),
        _ => None,
    };
    let qr = match (text("qr")?, num("qr_expires_at")?, num("qr_ttl_ms")?) {
        (Some(code), Some(expires), Some(ttl)) => Some((code, expires, ttl)),
        _ => None,
    };
    let pair_code = match (
        text("pair_code")?,
        text("pair_phone")?,
        num("pair_expires_at")?,
    ) {
        (Some(code), Some(phone), Some(expires)) => Some((code, phone, expires)),
        _ => None,
    };
    Ok(Some(StatusRow {
        state,
        jid: text("jid")?,
        reason,
        qr,
        pair_code,
        last_seen: num("last_seen")?,
        live: row
            .try_get("live")
            .map_err(backend("read a device status"))?,
    }))
}

/// The cluster's forwarding secret: the first node to ask stores `fresh`; every node then
/// reads the same one.
pub async fn cluster_secret(conn: &mut PgConnection, fresh: &[u8]) -> Result<Vec<u8>, PgError> {
    sqlx::query("INSERT INTO wuts_cluster (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING")
        .bind(fresh)
        .execute(&mut *conn)
        .await
        .map_err(backend("store the cluster secret"))?;
    let (secret,): (Vec<u8>,) = sqlx::query_as("SELECT secret FROM wuts_cluster WHERE id = 1")
        .fetch_one(conn)
        .await
        .map_err(backend("read the cluster secret"))?;
    Ok(secret)
}
