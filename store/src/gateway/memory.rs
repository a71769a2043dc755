//! `MemGatewayStore`: [`GatewayStore`] over in-memory maps, for the gateway's HTTP tests. Same
//! rules as the sled implementation (checked by `tests/gateway_conformance.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    GatewayDevice, GatewayDeviceId, GatewayStore, IdempotencyKey, StoredResponse, Tenant, TenantId,
    TokenHash, User, UserId,
};
use crate::error::Error;

/// In-memory gateway store; one per test.
#[derive(Debug, Default)]
pub struct MemGatewayStore {
    state: Mutex<State>,
    outbox: super::outbox::MemEventStore,
}

#[derive(Debug, Default)]
struct State {
    admin: Option<TokenHash>,
    tenants: BTreeMap<TenantId, Tenant>,
    users: BTreeMap<UserId, User>,
    tokens: HashMap<TokenHash, UserId>,
    responses: HashMap<(UserId, IdempotencyKey), StoredResponse>,
    devices: Vec<GatewayDevice>,
    console_sessions: BTreeMap<[u8; 32], Vec<u8>>,
}

impl MemGatewayStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update checks before it writes, so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GatewayStore for MemGatewayStore {
    fn admin_token(&self) -> Result<Option<TokenHash>, Error> {
        Ok(self.state().admin)
    }

    fn set_admin_token(&self, hash: &TokenHash) -> Result<(), Error> {
        self.state().admin = Some(*hash);
        Ok(())
    }

    fn create_tenant(&self, tenant: &Tenant) -> Result<(), Error> {
        let mut state = self.state();
        if state.tenants.contains_key(&tenant.id) {
            return Err(Error::Duplicate { what: "tenant id" });
        }
        state.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, Error> {
        Ok(self.state().tenants.get(id).cloned())
    }

    fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        Ok(self.state().tenants.values().cloned().collect())
    }

    fn create_user(&self, user: &User) -> Result<(), Error> {
        let mut state = self.state();
        if !state.tenants.contains_key(&user.tenant) {
            return Err(Error::UnknownTenant(user.tenant.clone()));
        }
        if state.users.contains_key(&user.id) {
            return Err(Error::Duplicate { what: "user id" });
        }
        if state.tokens.contains_key(&user.token_hash) {
            return Err(Error::Duplicate { what: "token" });
        }
        state.tokens.insert(user.token_hash, user.id.clone());
        state.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    fn user(&self, id: &UserId) -> Result<Option<User>, Error> {
        Ok(self.state().users.get(id).cloned())
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        Ok(self.state().users.values().cloned().collect())
    }

    fn user_by_token(&self, hash: &TokenHash) -> Result<Option<User>, Error> {
        let state = self.state();
        Ok(state
            .tokens
            .get(hash)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    fn set_user_token(&self, id: &UserId, hash: &TokenHash) -> Result<User, Error> {
        let mut state = self.state();
        let Some(old) = state.users.get(id).map(|user| user.token_hash) else {
            return Err(Error::UnknownUser(id.clone()));
        };
        if state.tokens.contains_key(hash) {
            return Err(Error::Duplicate { what: "token" });
        }
        state.tokens.remove(&old);
        state.tokens.insert(*hash, id.clone());
        let user = state
            .users
            .get_mut(id)
            .ok_or_else(|| Error::UnknownUser(id.clone()))?;
        user.token_hash = *hash;
        Ok(user.clone())
    }

    fn remove_user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let mut state = self.state();
        let Some(user) = state.users.remove(id) else {
            return Ok(None);
        };
        state.tokens.remove(&user.token_hash);
        state.responses.retain(|(owner, _), _| owner != id);
        state.devices.retain(|d| &d.user != id);
        drop(state);
        self.outbox.remove_user(id);
        Ok(Some(user))
    }

    fn add_gateway_device(&self, device: &GatewayDevice) -> Result<(), Error> {
        let mut state = self.state();
        if !state.users.contains_key(&device.user) {
            return Err(Error::UnknownUser(device.user.clone()));
        }
        if state.devices.iter().any(|d| d.id == device.id) {
            return Err(Error::Duplicate { what: "device id" });
        }
        state.devices.push(device.clone());
        Ok(())
    }

    fn gateway_devices(&self, user: &UserId) -> Result<Vec<GatewayDevice>, Error> {
        let mut mine: Vec<GatewayDevice> = self
            .state()
            .devices
            .iter()
            .filter(|d| &d.user == user)
            .cloned()
            .collect();
        mine.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(mine)
    }

    fn remove_gateway_device(
        &self,
        user: &UserId,
        id: &GatewayDeviceId,
    ) -> Result<Option<GatewayDevice>, Error> {
        let mut state = self.state();
        let at = state
            .devices
            .iter()
            .position(|d| &d.user == user && &d.id == id);
        Ok(at.map(|i| state.devices.remove(i)))
    }

    fn stored_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, Error> {
        Ok(self
            .state()
            .responses
            .get(&(user.clone(), key.clone()))
            .cloned())
    }

    fn save_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), Error> {
        let mut state = self.state();
        if !state.users.contains_key(user) {
            return Err(Error::UnknownUser(user.clone()));
        }
        state
            .responses
            .insert((user.clone(), key.clone()), response.clone());
        Ok(())
    }

    fn count_responses(&self, user: &UserId) -> Result<usize, Error> {
        Ok(self
            .state()
            .responses
            .keys()
            .filter(|(u, _)| u == user)
            .count())
    }

    fn remove_response(&self, user: &UserId, key: &IdempotencyKey) -> Result<bool, Error> {
        Ok(self
            .state()
            .responses
            .remove(&(user.clone(), key.clone()))
            .is_some())
    }

    fn sweep_responses(&self, created_before: u64) -> Result<usize, Error> {
        let mut state = self.state();
        let before = state.responses.len();
        state
            .responses
            .retain(|_, response| response.created_at >= created_before);
        Ok(before - state.responses.len())
    }

    fn flush_gateway(&self) -> Result<(), Error> {
        Ok(())
    }

    fn outbox(&self) -> &dyn super::outbox::EventStore {
        &self.outbox
    }

    fn console_sessions(&self) -> Result<Vec<super::ConsoleSession>, Error> {
        let state = self.state();
        Ok(state
            .console_sessions
            .iter()
            .map(|(key, record)| super::ConsoleSession {
                key: *key,
                record: record.clone(),
            })
            .collect())
    }

    fn save_console_session(&self, key: &[u8; 32], record: Option<&[u8]>) -> Result<(), Error> {
        let mut state = self.state();
        match record {
            Some(record) => state.console_sessions.insert(*key, record.to_vec()),
            None => state.console_sessions.remove(key),
        };
        Ok(())
    }
}
