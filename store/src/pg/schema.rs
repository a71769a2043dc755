//! The cluster schema and its migrations: numbered steps applied in order under an advisory
//! lock, so nodes starting together migrate once. A database from a newer build is refused
//! rather than written with old assumptions.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::error::{PgError, backend};

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = 2;

/// An arbitrary constant that names our advisory lock.
const MIGRATION_LOCK: i64 = 0x7775_7473_5f6d_6967; // "wuts_mig"

const STEPS: [&str; 2] = [
    r#"
CREATE TABLE wuts_node (
  node_id     text PRIMARY KEY,
  incarnation uuid NOT NULL,
  rpc_addr    text NOT NULL,
  state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'restarting')),
  weight      int  NOT NULL DEFAULT 100 CHECK (weight >= 0),
  expires_at  timestamptz NOT NULL
);
CREATE TABLE wuts_device_owner (
  device_id  bigint PRIMARY KEY,
  owner_node text,
  owner_inc  uuid,
  epoch      bigint NOT NULL DEFAULT 0,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wuts_device_owner_by_node ON wuts_device_owner (owner_node, owner_inc);
CREATE TABLE wuts_kv (
  device_id bigint   NOT NULL,
  tree      smallint NOT NULL,
  key       bytea    NOT NULL,
  value     bytea    NOT NULL,
  epoch     bigint   NOT NULL,
  PRIMARY KEY (device_id, tree, key)
) WITH (fillfactor = 80);
CREATE FUNCTION wuts_owner_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wuts_owner',
    NEW.device_id || ' ' || NEW.epoch || ' ' || coalesce(NEW.owner_node, '-'));
  RETURN NEW;
END $$;
CREATE TRIGGER wuts_owner_changed AFTER UPDATE OF epoch ON wuts_device_owner
  FOR EACH ROW EXECUTE FUNCTION wuts_owner_notify();
"#,
    r#"
CREATE SEQUENCE wuts_device_seq AS bigint MINVALUE 1;
CREATE TABLE wuts_admin (
  id         smallint PRIMARY KEY CHECK (id = 1),
  token_hash bytea NOT NULL
);
CREATE TABLE wuts_tenant (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE wuts_user (
  id         text PRIMARY KEY,
  tenant_id  text NOT NULL REFERENCES wuts_tenant (id),
  name       text NOT NULL,
  device_id  bigint NOT NULL,
  token_hash bytea NOT NULL UNIQUE,
  created_at bigint NOT NULL
);
CREATE TABLE wuts_gateway_device (
  id         text PRIMARY KEY,
  user_id    text NOT NULL REFERENCES wuts_user (id) ON DELETE CASCADE,
  name       text NOT NULL,
  device_id  bigint NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX wuts_gateway_device_by_user ON wuts_gateway_device (user_id);
CREATE TABLE wuts_idempotency (
  user_id      text NOT NULL REFERENCES wuts_user (id) ON DELETE CASCADE,
  key          text NOT NULL,
  request_hash bytea NOT NULL,
  status       int,
  body         bytea,
  created_at   bigint NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX wuts_idempotency_by_age ON wuts_idempotency (created_at);
CREATE TABLE wuts_event_seq (user_id text PRIMARY KEY, last bigint NOT NULL);
CREATE TABLE wuts_event (
  user_id text NOT NULL, seq bigint NOT NULL, body bytea NOT NULL,
  PRIMARY KEY (user_id, seq)
);
CREATE TABLE wuts_pending (
  user_id text NOT NULL, lane bigint NOT NULL, seq bigint NOT NULL,
  PRIMARY KEY (user_id, lane, seq)
);
CREATE TABLE wuts_delivery (
  user_id text NOT NULL, seq bigint NOT NULL, record bytea NOT NULL,
  PRIMARY KEY (user_id, seq)
);
CREATE TABLE wuts_console_session (
  key    bytea PRIMARY KEY,
  record bytea NOT NULL
);
CREATE TABLE wuts_cluster (
  id     smallint PRIMARY KEY CHECK (id = 1),
  secret bytea NOT NULL
);
CREATE TABLE wuts_device_status (
  device_id       bigint PRIMARY KEY,
  epoch           bigint NOT NULL,
  state           text NOT NULL,
  jid             text,
  reason_code     text,
  reason_message  text,
  qr              text,
  qr_expires_at   bigint,
  qr_ttl_ms       bigint,
  pair_code       text,
  pair_phone      text,
  pair_expires_at bigint,
  last_seen       bigint,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE wuts_webhook (
  user_id text NOT NULL, scope bigint NOT NULL, config bytea NOT NULL,
  PRIMARY KEY (user_id, scope)
);
"#,
];

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it found.
pub async fn migrate(conn: &mut PgConnection) -> Result<i32, PgError> {
    let mut tx = conn.begin().await.map_err(backend("begin a migration"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend("take the migration lock"))?;
    sqlx::query("CREATE TABLE IF NOT EXISTS wuts_schema (version int NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(backend("create the schema marker"))?;
    let found: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM wuts_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend("read the schema version"))?;
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (at, step) in STEPS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        sqlx::raw_sql(step)
            .execute(&mut *tx)
            .await
            .map_err(backend("apply a schema step"))?;
        let version = i32::try_from(at + 1).map_err(|_| PgError::Corrupt("a schema step count"))?;
        sqlx::query("INSERT INTO wuts_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend("record the schema version"))?;
    }
    tx.commit().await.map_err(backend("commit a migration"))?;
    Ok(found)
}
