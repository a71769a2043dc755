//! [`GatewayStore`] on the sled database of a [`SledStore`]: trees of its own beside the device
//! trees, so the gateway shares the data directory, its lock and its flushes.
//!
//! | tree           | key                         | value                  |
//! |----------------|-----------------------------|------------------------|
//! | `gw-admin`     | `admin-token`               | token hash record      |
//! | `gw-tenants`   | tenant id                   | `Tenant` record        |
//! | `gw-users`     | user id                     | `User` record          |
//! | `gw-tokens`    | token hash (32 B)           | user id record         |
//! | `gw-responses` | user id ‖ 0 ‖ idempotency key | `StoredResponse` record |
//! | `gw-devices`   | user id ‖ 0 ‖ created_at ‖ device id | `GatewayDevice` record |
//! | `gw-console-sessions` | SHA-256 of a session id (32 B) | the HTTP layer's session record |

use ::sled::transaction::Transactional;
use ::sled::{Batch, Db, IVec, Tree};

use super::{SledStore, abort, backend, transaction};
use crate::codec::RecordError;
use crate::error::{Error, RecordKind};
use crate::gateway::record::{
    decode_gateway_device, decode_index, decode_response, decode_tenant, decode_token_hash,
    decode_user, encode_gateway_device, encode_index, encode_response, encode_tenant,
    encode_token_hash, encode_user, gateway_device_key, response_key, response_prefix,
};
use crate::gateway::{
    GatewayDevice, GatewayDeviceId, GatewayStore, IdempotencyKey, StoredResponse, Tenant, TenantId,
    TokenHash, User, UserId,
};

const ADMIN_TOKEN_KEY: &[u8] = b"admin-token";

/// The gateway's trees, opened with the store.
pub(super) struct Trees {
    admin: Tree,
    tenants: Tree,
    users: Tree,
    tokens: Tree,
    responses: Tree,
    devices: Tree,
    console_sessions: Tree,
}

impl Trees {
    pub(super) fn open(db: &Db) -> Result<Self, Error> {
        let tree = |name: &str| db.open_tree(name).map_err(backend("open tree"));
        Ok(Self {
            admin: tree("gw-admin")?,
            tenants: tree("gw-tenants")?,
            users: tree("gw-users")?,
            tokens: tree("gw-tokens")?,
            responses: tree("gw-responses")?,
            devices: tree("gw-devices")?,
            console_sessions: tree("gw-console-sessions")?,
        })
    }
}

impl Trees {
    /// The idempotency records, for the export.
    pub(super) fn responses_tree(&self) -> &Tree {
        &self.responses
    }

    /// The users tree, for writes elsewhere that must check the user exists.
    pub(super) fn users_tree(&self) -> &Tree {
        &self.users
    }
}

fn corrupt(record: RecordKind) -> impl Fn(RecordError) -> Error {
    move |source| Error::CorruptStore { record, source }
}

fn encode_error(record: RecordKind) -> impl Fn(RecordError) -> Error {
    // Only over-long fields fail to encode; they are not tied to a device.
    move |source| Error::CorruptStore { record, source }
}

fn user_from(bytes: &IVec) -> Result<User, Error> {
    decode_user(bytes).map_err(corrupt(RecordKind::User))
}

impl GatewayStore for SledStore {
    fn backup_to(&self, dest: &std::path::Path) -> Result<(), Error> {
        self.copy_to(dest)
    }

    fn admin_token(&self) -> Result<Option<TokenHash>, Error> {
        let stored = self
            .gateway
            .admin
            .get(ADMIN_TOKEN_KEY)
            .map_err(backend("read admin token"))?;
        stored
            .map(|bytes| decode_token_hash(&bytes))
            .transpose()
            .map_err(corrupt(RecordKind::AdminToken))
    }

    fn set_admin_token(&self, hash: &TokenHash) -> Result<(), Error> {
        self.gateway
            .admin
            .insert(ADMIN_TOKEN_KEY, encode_token_hash(hash))
            .map_err(backend("write admin token"))?;
        self.flush_for("write admin token")
    }

    fn create_tenant(&self, tenant: &Tenant) -> Result<(), Error> {
        let value = encode_tenant(tenant).map_err(encode_error(RecordKind::Tenant))?;
        let inserted = self
            .gateway
            .tenants
            .compare_and_swap(tenant.id.as_str(), None as Option<&[u8]>, Some(value))
            .map_err(backend("create tenant"))?;
        if inserted.is_err() {
            return Err(Error::Duplicate { what: "tenant id" });
        }
        self.flush_for("create tenant")
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, Error> {
        let stored = self
            .gateway
            .tenants
            .get(id.as_str())
            .map_err(backend("read tenant"))?;
        stored
            .map(|bytes| decode_tenant(&bytes))
            .transpose()
            .map_err(corrupt(RecordKind::Tenant))
    }

    fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        let mut out = Vec::new();
        for entry in self.gateway.tenants.iter() {
            let (_, value) = entry.map_err(backend("list tenants"))?;
            out.push(decode_tenant(&value).map_err(corrupt(RecordKind::Tenant))?);
        }
        Ok(out)
    }

    fn create_user(&self, user: &User) -> Result<(), Error> {
        let value = encode_user(user).map_err(encode_error(RecordKind::User))?;
        let index = encode_index(&user.id).map_err(encode_error(RecordKind::TokenIndex))?;
        let trees = (
            &self.gateway.tenants,
            &self.gateway.users,
            &self.gateway.tokens,
        );
        let result = trees.transaction(|(tenants, users, tokens)| {
            if tenants.get(user.tenant.as_str())?.is_none() {
                return abort(Error::UnknownTenant(user.tenant.clone()));
            }
            if users.get(user.id.as_str())?.is_some() {
                return abort(Error::Duplicate { what: "user id" });
            }
            if tokens.get(user.token_hash.as_bytes())?.is_some() {
                return abort(Error::Duplicate { what: "token" });
            }
            users.insert(user.id.as_str(), value.as_slice())?;
            tokens.insert(user.token_hash.as_bytes(), index.as_slice())?;
            Ok(())
        });
        transaction("create user", result)?;
        self.flush_for("create user")
    }

    fn user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let stored = self
            .gateway
            .users
            .get(id.as_str())
            .map_err(backend("read user"))?;
        stored.map(|bytes| user_from(&bytes)).transpose()
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        let mut out = Vec::new();
        for entry in self.gateway.users.iter() {
            let (_, value) = entry.map_err(backend("list users"))?;
            out.push(user_from(&value)?);
        }
        Ok(out)
    }

    fn user_by_token(&self, hash: &TokenHash) -> Result<Option<User>, Error> {
        let trees = (&self.gateway.tokens, &self.gateway.users);
        // One snapshot, so a rotation in between cannot pair an old index entry with a new user.
        let result = trees.transaction(|(tokens, users)| {
            let Some(index) = tokens.get(hash.as_bytes())? else {
                return Ok(None);
            };
            let id = match decode_index(&index) {
                Ok(id) => id,
                Err(source) => return abort(corrupt(RecordKind::TokenIndex)(source)),
            };
            Ok(users.get(id.as_str())?)
        });
        let stored = transaction("find user by token", result)?;
        stored.map(|bytes| user_from(&bytes)).transpose()
    }

    fn set_user_token(&self, id: &UserId, hash: &TokenHash) -> Result<User, Error> {
        let index = encode_index(id).map_err(encode_error(RecordKind::TokenIndex))?;
        let trees = (&self.gateway.users, &self.gateway.tokens);
        let result = trees.transaction(|(users, tokens)| {
            let Some(bytes) = users.get(id.as_str())? else {
                return abort(Error::UnknownUser(id.clone()));
            };
            let mut user = match user_from(&bytes) {
                Ok(user) => user,
                Err(error) => return abort(error),
            };
            if tokens.get(hash.as_bytes())?.is_some() {
                return abort(Error::Duplicate { what: "token" });
            }
            tokens.remove(user.token_hash.as_bytes())?;
            tokens.insert(hash.as_bytes(), index.as_slice())?;
            user.token_hash = *hash;
            let value = match encode_user(&user) {
                Ok(value) => value,
                Err(source) => return abort(encode_error(RecordKind::User)(source)),
            };
            users.insert(id.as_str(), value)?;
            Ok(user)
        });
        let user = transaction("rotate token", result)?;
        self.flush_for("rotate token")?;
        Ok(user)
    }

    fn remove_user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let trees = (&self.gateway.users, &self.gateway.tokens);
        let result = trees.transaction(|(users, tokens)| {
            let Some(bytes) = users.remove(id.as_str())? else {
                return Ok(None);
            };
            let user = match user_from(&bytes) {
                Ok(user) => user,
                Err(error) => return abort(error),
            };
            tokens.remove(user.token_hash.as_bytes())?;
            Ok(Some(user))
        });
        let removed = transaction("remove user", result)?;
        // Range deletes cannot run inside a transaction; a crash here leaves stored responses of
        // a user that no longer exists, which nobody can read and the TTL sweep removes.
        let mut batch = Batch::default();
        for entry in self.gateway.responses.scan_prefix(response_prefix(id)) {
            let (key, _) = entry.map_err(backend("remove user responses"))?;
            batch.remove(key);
        }
        self.gateway
            .responses
            .apply_batch(batch)
            .map_err(backend("remove user responses"))?;
        let mut batch = Batch::default();
        for entry in self.gateway.devices.scan_prefix(response_prefix(id)) {
            let (key, _) = entry.map_err(backend("remove user devices"))?;
            batch.remove(key);
        }
        self.gateway
            .devices
            .apply_batch(batch)
            .map_err(backend("remove user devices"))?;
        super::outbox::remove_user(&self.events, id)?;
        self.flush_for("remove user")?;
        Ok(removed)
    }

    fn add_gateway_device(&self, device: &GatewayDevice) -> Result<(), Error> {
        let value =
            encode_gateway_device(device).map_err(encode_error(RecordKind::GatewayDevice))?;
        let key = gateway_device_key(device);
        let trees = (&self.gateway.users, &self.gateway.devices);
        let result = trees.transaction(|(users, devices)| {
            if users.get(device.user.as_str())?.is_none() {
                return abort(Error::UnknownUser(device.user.clone()));
            }
            if devices.get(key.as_slice())?.is_some() {
                return abort(Error::Duplicate { what: "device id" });
            }
            devices.insert(key.as_slice(), value.as_slice())?;
            Ok(())
        });
        transaction("add device", result)?;
        self.flush_for("add device")
    }

    fn gateway_devices(&self, user: &UserId) -> Result<Vec<GatewayDevice>, Error> {
        let mut out = Vec::new();
        for entry in self.gateway.devices.scan_prefix(response_prefix(user)) {
            let (_, value) = entry.map_err(backend("list devices"))?;
            out.push(decode_gateway_device(&value).map_err(corrupt(RecordKind::GatewayDevice))?);
        }
        Ok(out)
    }

    fn remove_gateway_device(
        &self,
        user: &UserId,
        id: &GatewayDeviceId,
    ) -> Result<Option<GatewayDevice>, Error> {
        let Some(device) = self
            .gateway_devices(user)?
            .into_iter()
            .find(|d| &d.id == id)
        else {
            return Ok(None);
        };
        self.gateway
            .devices
            .remove(gateway_device_key(&device))
            .map_err(backend("remove device"))?;
        self.flush_for("remove device")?;
        Ok(Some(device))
    }

    fn stored_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, Error> {
        let stored = self
            .gateway
            .responses
            .get(response_key(user, key))
            .map_err(backend("read stored response"))?;
        stored
            .map(|bytes| decode_response(&bytes))
            .transpose()
            .map_err(corrupt(RecordKind::StoredResponse))
    }

    fn save_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), Error> {
        let value = encode_response(response).map_err(encode_error(RecordKind::StoredResponse))?;
        let storage_key = response_key(user, key);
        let trees = (&self.gateway.users, &self.gateway.responses);
        let result = trees.transaction(|(users, responses)| {
            if users.get(user.as_str())?.is_none() {
                return abort(Error::UnknownUser(user.clone()));
            }
            responses.insert(storage_key.as_slice(), value.as_slice())?;
            Ok(())
        });
        transaction("save response", result)
    }

    fn count_responses(&self, user: &UserId) -> Result<usize, Error> {
        let mut n = 0;
        for entry in self.gateway.responses.scan_prefix(response_prefix(user)) {
            entry.map_err(backend("count responses"))?;
            n += 1;
        }
        Ok(n)
    }

    fn remove_response(&self, user: &UserId, key: &IdempotencyKey) -> Result<bool, Error> {
        let removed = self
            .gateway
            .responses
            .remove(response_key(user, key))
            .map_err(backend("remove response"))?;
        Ok(removed.is_some())
    }

    fn sweep_responses(&self, created_before: u64) -> Result<usize, Error> {
        let mut batch = Batch::default();
        let mut swept = 0;
        for entry in self.gateway.responses.iter() {
            let (key, value) = entry.map_err(backend("sweep responses"))?;
            // A damaged record is only a lost cache entry: sweep it too.
            let expired = decode_response(&value)
                .map(|response| response.created_at < created_before)
                .unwrap_or(true);
            if expired {
                batch.remove(key);
                swept += 1;
            }
        }
        self.gateway
            .responses
            .apply_batch(batch)
            .map_err(backend("sweep responses"))?;
        Ok(swept)
    }

    fn flush_gateway(&self) -> Result<(), Error> {
        self.flush_for("flush")
    }

    fn outbox(&self) -> &dyn crate::gateway::outbox::EventStore {
        self
    }

    fn console_sessions(&self) -> Result<Vec<crate::gateway::ConsoleSession>, Error> {
        let mut out = Vec::new();
        for entry in self.gateway.console_sessions.iter() {
            let (key, value) = entry.map_err(backend("read console sessions"))?;
            // A key of another length is not ours to read; it is skipped, not trusted.
            if let Ok(key) = <[u8; 32]>::try_from(key.as_ref()) {
                out.push(crate::gateway::ConsoleSession {
                    key,
                    record: value.to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn save_console_session(&self, key: &[u8; 32], record: Option<&[u8]>) -> Result<(), Error> {
        let sessions = &self.gateway.console_sessions;
        match record {
            Some(record) => sessions
                .insert(key, record)
                .map(drop)
                .map_err(backend("write console session")),
            None => sessions
                .remove(key)
                .map(drop)
                .map_err(backend("remove console session")),
        }
    }
}
