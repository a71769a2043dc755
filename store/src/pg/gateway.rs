//! `PgGatewayStore`: the gateway's tenants, users, token hashes, device slots and idempotency
//! records on PostgreSQL, shared by every node of a cluster (any node answers any API call).
//!
//! Plain tables rather than opaque records, so an operator can read them with `psql`. Nothing
//! here is fenced: these rows are not a device's, and every write is one transaction that
//! PostgreSQL commits durably before the call returns. Ids are ordered with `COLLATE "C"`,
//! byte order, as sled and the memory store list them.

use std::future::Future;
use std::sync::Arc;

use sqlx::postgres::PgPool;

use super::bridge::Bridge;
use super::error::backend;
use super::outbox::PgEventStore;
use crate::codec::RecordError;
use crate::error::{Error, RecordKind};
use crate::gateway::outbox::EventStore;
use crate::gateway::{
    ConsoleSession, GatewayDevice, GatewayDeviceId, GatewayStore, IdempotencyKey, Outcome,
    StoredResponse, Tenant, TenantId, TokenHash, User, UserId,
};
use crate::model::DeviceId;

/// The gateway's storage on PostgreSQL.
pub struct PgGatewayStore {
    bridge: Arc<Bridge>,
    outbox: PgEventStore,
}

type UserRow = (String, String, String, i64, Vec<u8>, i64);
type DeviceRow = (String, String, String, i64, i64);
type ResponseRow = (Vec<u8>, Option<i32>, Option<Vec<u8>>, i64);

const USER_COLUMNS: &str = "id, tenant_id, name, device_id, token_hash, created_at";

impl PgGatewayStore {
    /// The gateway store on `bridge`'s database (schema already migrated by the bridge).
    pub fn new(bridge: Arc<Bridge>) -> Self {
        PgGatewayStore {
            outbox: PgEventStore::new(bridge.clone()),
            bridge,
        }
    }

    fn call<T, F>(&self, op: &'static str, query: impl FnOnce(PgPool) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.bridge.run(op, query)
    }
}

/// Maps a sqlx error to the store's, naming what was being done.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| backend(op)(e).into()
}

/// Whether `e` is a unique-constraint violation (a duplicate id or token).
fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A stored integer that must fit `u64` (times, device ids, sequence numbers).
pub(crate) fn unsigned(value: i64, record: RecordKind, field: &'static str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::CorruptStore {
        record,
        source: RecordError::OutOfRange { field },
    })
}

/// A `u64` as PostgreSQL's `bigint`.
pub(crate) fn signed(value: u64, record: RecordKind, field: &'static str) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::CorruptStore {
        record,
        source: RecordError::OutOfRange { field },
    })
}

fn hash32(bytes: Vec<u8>, record: RecordKind) -> Result<[u8; 32], Error> {
    bytes.try_into().map_err(|_| Error::CorruptStore {
        record,
        source: RecordError::OutOfRange { field: "hash" },
    })
}

fn user_from(row: UserRow) -> Result<User, Error> {
    let (id, tenant, name, device, token, created_at) = row;
    Ok(User {
        id: UserId::new(id)?,
        tenant: TenantId::new(tenant)?,
        name,
        device: DeviceId::new(unsigned(device, RecordKind::User, "device id")?),
        token_hash: TokenHash::from_bytes(hash32(token, RecordKind::User)?),
        created_at: unsigned(created_at, RecordKind::User, "created at")?,
    })
}

fn device_from(row: DeviceRow) -> Result<GatewayDevice, Error> {
    let (id, user, name, device, created_at) = row;
    Ok(GatewayDevice {
        id: GatewayDeviceId::new(id)?,
        user: UserId::new(user)?,
        name,
        device: DeviceId::new(unsigned(device, RecordKind::GatewayDevice, "device id")?),
        created_at: unsigned(created_at, RecordKind::GatewayDevice, "created at")?,
    })
}

impl GatewayStore for PgGatewayStore {
    fn admin_token(&self) -> Result<Option<TokenHash>, Error> {
        let row: Option<(Vec<u8>,)> = self.call("read the admin token", |pool| async move {
            sqlx::query_as("SELECT token_hash FROM wuts_admin WHERE id = 1")
                .fetch_optional(&pool)
                .await
                .map_err(sql("read the admin token"))
        })?;
        row.map(|(h,)| hash32(h, RecordKind::AdminToken).map(TokenHash::from_bytes))
            .transpose()
    }

    fn set_admin_token(&self, hash: &TokenHash) -> Result<(), Error> {
        let hash = hash.as_bytes().to_vec();
        self.call("set the admin token", |pool| async move {
            sqlx::query(
                "INSERT INTO wuts_admin (id, token_hash) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash",
            )
            .bind(hash)
            .execute(&pool)
            .await
            .map_err(sql("set the admin token"))?;
            Ok(())
        })
    }

    fn create_tenant(&self, tenant: &Tenant) -> Result<(), Error> {
        let created = signed(tenant.created_at, RecordKind::Tenant, "created at")?;
        let (id, name) = (tenant.id.as_str().to_owned(), tenant.name.clone());
        self.call("create a tenant", move |pool| async move {
            match sqlx::query("INSERT INTO wuts_tenant (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(created)
                .execute(&pool)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if unique_violation(&e) => Err(Error::Duplicate { what: "tenant id" }),
                Err(e) => Err(sql("create a tenant")(e)),
            }
        })
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, Error> {
        let id = id.as_str().to_owned();
        let rows = self.call("read a tenant", move |pool| async move {
            sqlx::query_as("SELECT id, name, created_at FROM wuts_tenant WHERE id = $1")
                .bind(id)
                .fetch_all(&pool)
                .await
                .map_err(sql("read a tenant"))
        })?;
        Ok(tenants_from(rows)?.into_iter().next())
    }

    fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        let rows = self.call("list tenants", |pool| async move {
            sqlx::query_as("SELECT id, name, created_at FROM wuts_tenant ORDER BY id COLLATE \"C\"")
                .fetch_all(&pool)
                .await
                .map_err(sql("list tenants"))
        })?;
        tenants_from(rows)
    }

    fn create_user(&self, user: &User) -> Result<(), Error> {
        let u = user.clone();
        let device = signed(u.device.get(), RecordKind::User, "device id")?;
        let created = signed(u.created_at, RecordKind::User, "created at")?;
        self.call("create a user", move |pool| async move {
            let mut tx = pool.begin().await.map_err(sql("create a user"))?;
            let tenant: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM wuts_tenant WHERE id = $1")
                .bind(u.tenant.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql("create a user"))?;
            if tenant.is_none() {
                return Err(Error::UnknownTenant(u.tenant));
            }
            let taken: Option<(bool,)> = sqlx::query_as(
                "SELECT id = $1 FROM wuts_user WHERE id = $1 OR token_hash = $2 LIMIT 1",
            )
            .bind(u.id.as_str())
            .bind(u.token_hash.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql("create a user"))?;
            match taken {
                Some((true,)) => return Err(Error::Duplicate { what: "user id" }),
                Some((false,)) => return Err(Error::Duplicate { what: "token" }),
                None => {}
            }
            let inserted = sqlx::query(
                "INSERT INTO wuts_user (id, tenant_id, name, device_id, token_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(u.id.as_str())
            .bind(u.tenant.as_str())
            .bind(&u.name)
            .bind(device)
            .bind(u.token_hash.as_bytes().as_slice())
            .bind(created)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // A concurrent insert won the race the check above could not see.
                Err(e) if unique_violation(&e) => return Err(Error::Duplicate { what: "user id" }),
                Err(e) => return Err(sql("create a user")(e)),
            }
            tx.commit().await.map_err(sql("create a user"))
        })
    }

    fn user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let id = id.as_str().to_owned();
        let row: Option<UserRow> = self.call("read a user", move |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM wuts_user WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&pool)
            .await
            .map_err(sql("read a user"))
        })?;
        row.map(user_from).transpose()
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        let rows: Vec<UserRow> = self.call("list users", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM wuts_user ORDER BY id COLLATE \"C\""
            ))
            .fetch_all(&pool)
            .await
            .map_err(sql("list users"))
        })?;
        rows.into_iter().map(user_from).collect()
    }

    fn user_by_token(&self, hash: &TokenHash) -> Result<Option<User>, Error> {
        let hash = hash.as_bytes().to_vec();
        let row: Option<UserRow> = self.call("find a token", move |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM wuts_user WHERE token_hash = $1"
            ))
            .bind(hash)
            .fetch_optional(&pool)
            .await
            .map_err(sql("find a token"))
        })?;
        row.map(user_from).transpose()
    }

    fn set_user_token(&self, id: &UserId, hash: &TokenHash) -> Result<User, Error> {
        let (id, hash) = (id.clone(), hash.as_bytes().to_vec());
        let row: Option<UserRow> = self.call("rotate a token", move |pool| async move {
            let row = sqlx::query_as(&format!(
                "UPDATE wuts_user SET token_hash = $2 WHERE id = $1 RETURNING {USER_COLUMNS}"
            ))
            .bind(id.as_str())
            .bind(hash)
            .fetch_optional(&pool)
            .await;
            match row {
                Ok(None) => Err(Error::UnknownUser(id)),
                Ok(row) => Ok(row),
                Err(e) if unique_violation(&e) => Err(Error::Duplicate { what: "token" }),
                Err(e) => Err(sql("rotate a token")(e)),
            }
        })?;
        row.map(user_from)
            .transpose()?
            .ok_or(Error::Duplicate { what: "token" })
    }

    fn remove_user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let id = id.as_str().to_owned();
        let row: Option<UserRow> = self.call("remove a user", move |pool| async move {
            let mut tx = pool.begin().await.map_err(sql("remove a user"))?;
            let row = sqlx::query_as(&format!(
                "DELETE FROM wuts_user WHERE id = $1 RETURNING {USER_COLUMNS}"
            ))
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql("remove a user"))?;
            for table in [
                "wuts_event_seq",
                "wuts_event",
                "wuts_pending",
                "wuts_delivery",
                "wuts_webhook",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql("remove a user's events"))?;
            }
            tx.commit().await.map_err(sql("remove a user"))?;
            Ok(row)
        })?;
        row.map(user_from).transpose()
    }

    fn add_gateway_device(&self, device: &GatewayDevice) -> Result<(), Error> {
        let d = device.clone();
        let slot = signed(d.device.get(), RecordKind::GatewayDevice, "device id")?;
        let created = signed(d.created_at, RecordKind::GatewayDevice, "created at")?;
        self.call("add a device", move |pool| async move {
            let inserted = sqlx::query(
                "INSERT INTO wuts_gateway_device (id, user_id, name, device_id, created_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM wuts_user WHERE id = $2)",
            )
            .bind(d.id.as_str())
            .bind(d.user.as_str())
            .bind(&d.name)
            .bind(slot)
            .bind(created)
            .execute(&pool)
            .await;
            match inserted {
                Ok(done) if done.rows_affected() == 0 => Err(Error::UnknownUser(d.user)),
                Ok(_) => Ok(()),
                Err(e) if unique_violation(&e) => Err(Error::Duplicate { what: "device id" }),
                Err(e) => Err(sql("add a device")(e)),
            }
        })
    }

    fn gateway_devices(&self, user: &UserId) -> Result<Vec<GatewayDevice>, Error> {
        let user = user.as_str().to_owned();
        let rows: Vec<DeviceRow> = self.call("list a user's devices", move |pool| async move {
            sqlx::query_as(
                "SELECT id, user_id, name, device_id, created_at FROM wuts_gateway_device
                 WHERE user_id = $1 ORDER BY created_at, id COLLATE \"C\"",
            )
            .bind(user)
            .fetch_all(&pool)
            .await
            .map_err(sql("list a user's devices"))
        })?;
        rows.into_iter().map(device_from).collect()
    }

    fn remove_gateway_device(
        &self,
        user: &UserId,
        id: &GatewayDeviceId,
    ) -> Result<Option<GatewayDevice>, Error> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        let row: Option<DeviceRow> = self.call("remove a device", move |pool| async move {
            sqlx::query_as(
                "DELETE FROM wuts_gateway_device WHERE user_id = $1 AND id = $2
                 RETURNING id, user_id, name, device_id, created_at",
            )
            .bind(user)
            .bind(id)
            .fetch_optional(&pool)
            .await
            .map_err(sql("remove a device"))
        })?;
        row.map(device_from).transpose()
    }

    fn stored_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, Error> {
        let (user, key) = (user.as_str().to_owned(), key.as_str().to_owned());
        let row: Option<ResponseRow> =
            self.call("read a stored response", move |pool| async move {
                sqlx::query_as(
                    "SELECT request_hash, status, body, created_at FROM wuts_idempotency
                 WHERE user_id = $1 AND key = $2",
                )
                .bind(user)
                .bind(key)
                .fetch_optional(&pool)
                .await
                .map_err(sql("read a stored response"))
            })?;
        let Some((hash, status, body, created_at)) = row else {
            return Ok(None);
        };
        let kind = RecordKind::StoredResponse;
        let outcome = match (status, body) {
            (Some(status), Some(body)) => Outcome::Completed {
                status: u16::try_from(status).map_err(|_| Error::CorruptStore {
                    record: kind,
                    source: RecordError::OutOfRange { field: "status" },
                })?,
                body,
            },
            _ => Outcome::Pending,
        };
        Ok(Some(StoredResponse {
            request_hash: hash32(hash, kind)?,
            outcome,
            created_at: unsigned(created_at, kind, "created at")?,
        }))
    }

    fn save_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), Error> {
        let (user, key) = (user.clone(), key.as_str().to_owned());
        let hash = response.request_hash.to_vec();
        let created = signed(
            response.created_at,
            RecordKind::StoredResponse,
            "created at",
        )?;
        let (status, body) = match &response.outcome {
            Outcome::Pending => (None, None),
            Outcome::Completed { status, body } => (Some(i32::from(*status)), Some(body.clone())),
        };
        self.call("store a response", move |pool| async move {
            let done = sqlx::query(
                "INSERT INTO wuts_idempotency (user_id, key, request_hash, status, body, created_at)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM wuts_user WHERE id = $1)
                 ON CONFLICT (user_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                   status = excluded.status, body = excluded.body, created_at = excluded.created_at",
            )
            .bind(user.as_str())
            .bind(key)
            .bind(hash)
            .bind(status)
            .bind(body)
            .bind(created)
            .execute(&pool)
            .await
            .map_err(sql("store a response"))?;
            if done.rows_affected() == 0 {
                return Err(Error::UnknownUser(user));
            }
            Ok(())
        })
    }

    fn count_responses(&self, user: &UserId) -> Result<usize, Error> {
        let user = user.as_str().to_owned();
        let (n,): (i64,) = self.call("count stored responses", move |pool| async move {
            sqlx::query_as("SELECT count(*) FROM wuts_idempotency WHERE user_id = $1")
                .bind(user)
                .fetch_one(&pool)
                .await
                .map_err(sql("count stored responses"))
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn remove_response(&self, user: &UserId, key: &IdempotencyKey) -> Result<bool, Error> {
        let (user, key) = (user.as_str().to_owned(), key.as_str().to_owned());
        self.call("remove a stored response", move |pool| async move {
            let done = sqlx::query("DELETE FROM wuts_idempotency WHERE user_id = $1 AND key = $2")
                .bind(user)
                .bind(key)
                .execute(&pool)
                .await
                .map_err(sql("remove a stored response"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn sweep_responses(&self, created_before: u64) -> Result<usize, Error> {
        let before = signed(created_before, RecordKind::StoredResponse, "created at")?;
        self.call("sweep stored responses", move |pool| async move {
            let done = sqlx::query("DELETE FROM wuts_idempotency WHERE created_at < $1")
                .bind(before)
                .execute(&pool)
                .await
                .map_err(sql("sweep stored responses"))?;
            Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
        })
    }

    /// Every write committed before it returned: nothing to flush.
    fn flush_gateway(&self) -> Result<(), Error> {
        Ok(())
    }

    fn outbox(&self) -> &dyn EventStore {
        &self.outbox
    }

    /// Shared by every node, so a browser signed in through one node is signed in on all.
    fn console_sessions(&self) -> Result<Vec<ConsoleSession>, Error> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> =
            self.call("list console sessions", |pool| async move {
                sqlx::query_as("SELECT key, record FROM wuts_console_session")
                    .fetch_all(&pool)
                    .await
                    .map_err(sql("list console sessions"))
            })?;
        rows.into_iter()
            .map(|(key, record)| {
                Ok(ConsoleSession {
                    key: hash32(key, RecordKind::TokenIndex)?,
                    record,
                })
            })
            .collect()
    }

    fn save_console_session(&self, key: &[u8; 32], record: Option<&[u8]>) -> Result<(), Error> {
        let (key, record) = (key.to_vec(), record.map(<[u8]>::to_vec));
        self.call("save a console session", move |pool| async move {
            let query = match record {
                Some(record) => sqlx::query(
                    "INSERT INTO wuts_console_session (key, record) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET record = excluded.record",
                )
                .bind(key)
                .bind(record),
                None => sqlx::query("DELETE FROM wuts_console_session WHERE key = $1").bind(key),
            };
            query
                .execute(&pool)
                .await
                .map_err(sql("save a console session"))?;
            Ok(())
        })
    }
}

fn tenants_from(rows: Vec<(String, String, i64)>) -> Result<Vec<Tenant>, Error> {
    rows.into_iter()
        .map(|(id, name, created_at)| {
            Ok(Tenant {
                id: TenantId::new(id)?,
                name,
                created_at: unsigned(created_at, RecordKind::Tenant, "created at")?,
            })
        })
        .collect()
}
