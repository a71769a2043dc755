//! What the HTTP gateway keeps: tenants, users with their hashed API tokens and device slots,
//! the hashed admin token, and idempotency records (a stored response per user and key).
//!
//! The gateway holds this as `Arc<dyn GatewayStore>`; [`SledStore`](crate::SledStore) implements
//! it on trees of its own (so one data directory, one lock, one process) and
//! [`MemGatewayStore`] backs the HTTP tests. Tokens never reach the store: only their SHA-256
//! ([`TokenHash`]), computed by the caller. This module does no cryptography and knows nothing of
//! HTTP; the responses it stores are opaque bytes.
//!
//! Durability: tenant, user, token and admin-token writes are **durable** (they return once on
//! disk), because a user who was shown a token must be able to use it after a crash. Stored
//! responses are written without a flush; the gateway flushes before it relies on one (a
//! pending record before the request goes to WhatsApp, the response before it is sent).

mod memory;
pub mod outbox;
pub(crate) mod record;

use std::fmt;

pub use self::memory::MemGatewayStore;
use crate::error::Error;
use crate::model::DeviceId;

/// Longest tenant or user id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Checks an id: 1 to [`MAX_ID_LEN`] bytes of `[A-Za-z0-9_-]`. Ids are chosen by the gateway (UUIDs),
/// but also arrive in URL paths, so they are checked before they become storage keys.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// Validates `id` (1 to [`MAX_ID_LEN`] bytes of `[A-Za-z0-9_-]`).
            pub fn new(id: impl Into<String>) -> Result<Self, Error> {
                let id = id.into();
                if valid_id(&id) {
                    Ok(Self(id))
                } else {
                    Err(Error::InvalidId { kind: $kind, id })
                }
            }

            /// The id text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Identifies a tenant (the gateway uses UUID v4 text).
    TenantId,
    "tenant"
);
string_id!(
    /// Identifies a user (the gateway uses UUID v4 text).
    UserId,
    "user"
);
string_id!(
    /// Identifies one of a user's devices in the API (UUID v4 text); the device registry knows
    /// it by its [`DeviceId`].
    GatewayDeviceId,
    "device"
);

/// One of a user's devices: the API's name for a device slot of the registry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GatewayDevice {
    /// Its id in the API.
    pub id: GatewayDeviceId,
    /// The user it belongs to.
    pub user: UserId,
    /// A human-readable name.
    pub name: String,
    /// Its slot in the device registry.
    pub device: DeviceId,
    /// Creation time, unix seconds.
    pub created_at: u64,
}

/// The SHA-256 of an API or admin token. The token itself is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Wraps a digest the caller computed.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    /// Redacted: even a hash of a guessable token should not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A client's `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let visible = |b: u8| (0x21..=0x7E).contains(&b);
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.bytes().all(visible) {
            return Err(Error::InvalidId {
                kind: "idempotency key",
                id: key,
            });
        }
        Ok(Self(key))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant: an organisation owning users.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// A display name.
    pub name: String,
    /// Creation time, unix seconds.
    pub created_at: u64,
}

/// A user: one API token and one device slot, inside a tenant.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// A display name.
    pub name: String,
    /// Its device slot in the device registry.
    pub device: DeviceId,
    /// SHA-256 of its current API token.
    pub token_hash: TokenHash,
    /// Creation time, unix seconds.
    pub created_at: u64,
}

/// What the gateway knows of a request carrying an `Idempotency-Key`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredResponse {
    /// A digest of the request, so reusing the key with another request can be refused.
    pub request_hash: [u8; 32],
    /// Where the request got to.
    pub outcome: Outcome,
    /// When it was stored, unix seconds (records expire after the gateway's TTL).
    pub created_at: u64,
}

/// Where a keyed request got to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Written before the request went to WhatsApp and still there: it is running, or it ended
    /// without a known outcome (a timeout, a crash). Never sent again blindly.
    Pending,
    /// Answered: the response, as sent.
    Completed {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: Vec<u8>,
    },
}

/// One stored console session: the SHA-256 of its id (the id itself is never stored) and the
/// HTTP layer's record of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsoleSession {
    /// SHA-256 of the session id.
    pub key: [u8; 32],
    /// The record, in the HTTP layer's encoding.
    pub record: Vec<u8>,
}

/// The gateway's storage.
///
/// Methods are synchronous and short; callers on an async runtime may call them directly (sled
/// answers reads from memory) and should use `spawn_blocking` only for the durable writes if
/// their latency matters.
pub trait GatewayStore: Send + Sync {
    /// The hash of the admin token, if one was set.
    fn admin_token(&self) -> Result<Option<TokenHash>, Error>;

    /// Sets or replaces the admin token's hash. **Durable.**
    fn set_admin_token(&self, hash: &TokenHash) -> Result<(), Error>;

    /// Stores a new tenant. **Durable.** Fails with [`Error::Duplicate`] if the id exists.
    fn create_tenant(&self, tenant: &Tenant) -> Result<(), Error>;

    /// Loads a tenant.
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, Error>;

    /// Every tenant, in id order.
    fn tenants(&self) -> Result<Vec<Tenant>, Error>;

    /// Stores a new user. **Durable.** Fails with [`Error::UnknownTenant`] if its tenant does
    /// not exist and with [`Error::Duplicate`] if the id or the token hash is taken.
    fn create_user(&self, user: &User) -> Result<(), Error>;

    /// Loads a user.
    fn user(&self, id: &UserId) -> Result<Option<User>, Error>;

    /// Every user, in id order.
    fn users(&self) -> Result<Vec<User>, Error>;

    /// The user whose current token has this hash.
    ///
    /// The lookup goes through an index keyed by the hash, so its timing depends only on the
    /// hash, which an attacker cannot steer towards a real token; callers still compare the
    /// returned user's hash in constant time before trusting it.
    fn user_by_token(&self, hash: &TokenHash) -> Result<Option<User>, Error>;

    /// Replaces a user's token hash; the old token stops working at once. **Durable.**
    /// Fails with [`Error::UnknownUser`] or [`Error::Duplicate`] (hash already in use).
    fn set_user_token(&self, id: &UserId, hash: &TokenHash) -> Result<User, Error>;

    /// Removes a user, its token and its stored responses. **Durable.** Returns the removed
    /// user, or `None` if there was none.
    fn remove_user(&self, id: &UserId) -> Result<Option<User>, Error>;

    /// Records one of a user's devices. **Durable.** Fails with [`Error::UnknownUser`] if the
    /// user does not exist and with [`Error::Duplicate`] if the id is taken.
    fn add_gateway_device(&self, device: &GatewayDevice) -> Result<(), Error>;

    /// A user's devices, oldest first.
    fn gateway_devices(&self, user: &UserId) -> Result<Vec<GatewayDevice>, Error>;

    /// Forgets one of a user's devices. **Durable.** Returns it, or `None` if there was none.
    fn remove_gateway_device(
        &self,
        user: &UserId,
        id: &GatewayDeviceId,
    ) -> Result<Option<GatewayDevice>, Error>;

    /// The response stored for `user`'s `key`, if any (expired ones included: the caller
    /// applies its TTL).
    fn stored_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, Error>;

    /// Stores (or replaces) the record for `user`'s `key`. Not durable by itself: callers that
    /// promise something on it call [`GatewayStore::flush_gateway`] before they do.
    fn save_response(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), Error>;

    /// How many records `user` holds (expired ones included until swept).
    fn count_responses(&self, user: &UserId) -> Result<usize, Error>;

    /// Removes the record for `user`'s `key` (a request that failed before reaching
    /// WhatsApp); returns whether there was one.
    fn remove_response(&self, user: &UserId, key: &IdempotencyKey) -> Result<bool, Error>;

    /// Deletes stored responses created before `created_before` (unix seconds); returns how
    /// many went.
    fn sweep_responses(&self, created_before: u64) -> Result<usize, Error>;

    /// Makes every earlier write durable.
    fn flush_gateway(&self) -> Result<(), Error>;

    /// The event outbox, delivery records and webhook configurations ([`outbox`]).
    fn outbox(&self) -> &dyn outbox::EventStore;

    /// Every console session record, by the SHA-256 of its session id (the id itself is never
    /// stored). The records are the HTTP layer's own encoding. Stores that keep none answer
    /// an empty list: sessions then end with the process.
    fn console_sessions(&self) -> Result<Vec<ConsoleSession>, Error> {
        Ok(Vec::new())
    }

    /// Stores (`Some`) or removes (`None`) the console session record under `key`. Not durable
    /// by itself: a removal that must survive a crash (sign-out) is followed by
    /// [`GatewayStore::flush_gateway`].
    fn save_console_session(&self, key: &[u8; 32], record: Option<&[u8]>) -> Result<(), Error> {
        let _ = (key, record);
        Ok(())
    }

    /// Writes an openable copy of the whole store into `dest` (absent or an empty directory)
    /// while it stays in use: one snapshot of the whole store (every tree as at one moment),
    /// holding every write acknowledged before the call. Stores without a directory of their
    /// own cannot.
    fn backup_to(&self, dest: &std::path::Path) -> Result<(), Error> {
        Err(Error::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this store has no files to back up",
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_uuids_and_refuse_separators() {
        assert!(UserId::new("8c3f1f2e-6b9b-4a55-9d42-1f0f8e2d7a10").is_ok());
        for bad in ["", "a/b", "a b", "ä", &"x".repeat(MAX_ID_LEN + 1)] {
            assert!(
                matches!(TenantId::new(bad), Err(Error::InvalidId { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::new("order-42:retry").is_ok());
        for bad in [
            "",
            "with space",
            "tab\t",
            "ü",
            &"k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1),
        ] {
            assert!(IdempotencyKey::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_hash_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", TokenHash::from_bytes([7; 32])),
            "TokenHash(..)"
        );
    }
}
