//! On-disk layouts of the gateway's records, on the same codec and version rules as the device
//! records (`record.rs`): a version byte, then fixed-order fields.

use super::{
    GatewayDevice, GatewayDeviceId, Outcome, StoredResponse, Tenant, TenantId, TokenHash, User,
    UserId,
};
use crate::codec::{Reader, RecordError, Writer};
use crate::model::DeviceId;
use crate::record::open_v1;

const TENANT_VERSION: u8 = 1;
const USER_VERSION: u8 = 1;
const RESPONSE_VERSION: u8 = 2;
const TOKEN_HASH_VERSION: u8 = 1;
const INDEX_VERSION: u8 = 1;
const DEVICE_VERSION: u8 = 1;

fn read_id<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    make: impl FnOnce(String) -> Result<T, crate::Error>,
) -> Result<T, RecordError> {
    make(r.str(field)?).map_err(|_| RecordError::OutOfRange { field })
}

/// `Tenant` v1: id, name, created_at.
pub(crate) fn encode_tenant(tenant: &Tenant) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(TENANT_VERSION);
    w.bytes("id", tenant.id.as_str().as_bytes())?;
    w.bytes("name", tenant.name.as_bytes())?;
    w.u64(tenant.created_at);
    Ok(w.finish())
}

pub(crate) fn decode_tenant(record: &[u8]) -> Result<Tenant, RecordError> {
    let mut r = open_v1(record, TENANT_VERSION)?;
    let tenant = Tenant {
        id: read_id(&mut r, "id", TenantId::new)?,
        name: r.str("name")?,
        created_at: r.u64("created_at")?,
    };
    r.finish()?;
    Ok(tenant)
}

/// `User` v1: id, tenant, name, device, token hash, created_at.
pub(crate) fn encode_user(user: &User) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(USER_VERSION);
    w.bytes("id", user.id.as_str().as_bytes())?;
    w.bytes("tenant", user.tenant.as_str().as_bytes())?;
    w.bytes("name", user.name.as_bytes())?;
    w.u64(user.device.get());
    w.fixed(user.token_hash.as_bytes());
    w.u64(user.created_at);
    Ok(w.finish())
}

pub(crate) fn decode_user(record: &[u8]) -> Result<User, RecordError> {
    let mut r = open_v1(record, USER_VERSION)?;
    let user = User {
        id: read_id(&mut r, "id", UserId::new)?,
        tenant: read_id(&mut r, "tenant", TenantId::new)?,
        name: r.str("name")?,
        device: DeviceId::new(r.u64("device")?),
        token_hash: TokenHash::from_bytes(r.array("token_hash")?),
        created_at: r.u64("created_at")?,
    };
    r.finish()?;
    Ok(user)
}

/// `GatewayDevice` v1: id, user, name, registry device id, created_at.
pub(crate) fn encode_gateway_device(device: &GatewayDevice) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(DEVICE_VERSION);
    w.bytes("id", device.id.as_str().as_bytes())?;
    w.bytes("user", device.user.as_str().as_bytes())?;
    w.bytes("name", device.name.as_bytes())?;
    w.u64(device.device.get());
    w.u64(device.created_at);
    Ok(w.finish())
}

pub(crate) fn decode_gateway_device(record: &[u8]) -> Result<GatewayDevice, RecordError> {
    let mut r = open_v1(record, DEVICE_VERSION)?;
    let device = GatewayDevice {
        id: read_id(&mut r, "id", GatewayDeviceId::new)?,
        user: read_id(&mut r, "user", UserId::new)?,
        name: r.str("name")?,
        device: DeviceId::new(r.u64("device")?),
        created_at: r.u64("created_at")?,
    };
    r.finish()?;
    Ok(device)
}

/// Storage key of a user's device: user id, a 0 byte, the creation time (so a user's devices
/// list oldest first), the device id.
pub(crate) fn gateway_device_key(device: &GatewayDevice) -> Vec<u8> {
    let mut out = response_prefix(&device.user);
    out.extend_from_slice(&device.created_at.to_be_bytes());
    out.extend_from_slice(device.id.as_str().as_bytes());
    out
}

/// A token hash on its own (the admin token) v1: 32 bytes.
pub(crate) fn encode_token_hash(hash: &TokenHash) -> Vec<u8> {
    let mut w = Writer::new(TOKEN_HASH_VERSION);
    w.fixed(hash.as_bytes());
    w.finish()
}

pub(crate) fn decode_token_hash(record: &[u8]) -> Result<TokenHash, RecordError> {
    let mut r = open_v1(record, TOKEN_HASH_VERSION)?;
    let hash = TokenHash::from_bytes(r.array("token_hash")?);
    r.finish()?;
    Ok(hash)
}

/// Token index entry v1: the user id the hash belongs to.
pub(crate) fn encode_index(user: &UserId) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(INDEX_VERSION);
    w.bytes("user", user.as_str().as_bytes())?;
    Ok(w.finish())
}

pub(crate) fn decode_index(record: &[u8]) -> Result<UserId, RecordError> {
    let mut r = open_v1(record, INDEX_VERSION)?;
    let user = read_id(&mut r, "user", UserId::new)?;
    r.finish()?;
    Ok(user)
}

/// `StoredResponse` v2: request hash, a state byte (0 pending, 1 completed), status, body,
/// created_at. v1 (no state byte) records are completed responses.
pub(crate) fn encode_response(response: &StoredResponse) -> Result<Vec<u8>, RecordError> {
    let mut w = Writer::new(RESPONSE_VERSION);
    w.fixed(&response.request_hash);
    let (state, status, body) = match &response.outcome {
        Outcome::Pending => (0, 0, &[][..]),
        Outcome::Completed { status, body } => (1, *status, body.as_slice()),
    };
    w.u8(state);
    w.u32(u32::from(status));
    w.bytes("body", body)?;
    w.u64(response.created_at);
    Ok(w.finish())
}

pub(crate) fn decode_response(record: &[u8]) -> Result<StoredResponse, RecordError> {
    let version = record.first().copied();
    let mut r = open_v1(record, RESPONSE_VERSION)?;
    let request_hash = r.array("request_hash")?;
    let state = if version == Some(1) {
        1
    } else {
        r.u8("state")?
    };
    let status =
        u16::try_from(r.u32("status")?).map_err(|_| RecordError::OutOfRange { field: "status" })?;
    let body = r.bytes("body")?.to_vec();
    let outcome = match state {
        0 => Outcome::Pending,
        1 => Outcome::Completed { status, body },
        value => {
            return Err(RecordError::InvalidTag {
                field: "state",
                value,
            });
        }
    };
    let response = StoredResponse {
        request_hash,
        outcome,
        created_at: r.u64("created_at")?,
    };
    r.finish()?;
    Ok(response)
}

/// Storage key of a stored response: user id, a 0 byte (which neither ids nor keys contain, so
/// one user's keys are one prefix), the idempotency key.
pub(crate) fn response_key(user: &UserId, key: &super::IdempotencyKey) -> Vec<u8> {
    let mut out = response_prefix(user);
    out.extend_from_slice(key.as_str().as_bytes());
    out
}

/// The prefix of every stored response of `user`.
pub(crate) fn response_prefix(user: &UserId) -> Vec<u8> {
    let mut out = user.as_str().as_bytes().to_vec();
    out.push(0);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_user(id: &str, tenant: &str, hash: u8) -> Result<User, crate::Error> {
        Ok(User {
            id: UserId::new(id)?,
            tenant: TenantId::new(tenant)?,
            name: "Ana".to_owned(),
            device: DeviceId::new(7),
            token_hash: TokenHash::from_bytes([hash; 32]),
            created_at: 1_700_000_000,
        })
    }

    #[test]
    fn records_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let tenant = Tenant {
            id: TenantId::new("t1")?,
            name: "Padaria".to_owned(),
            created_at: 5,
        };
        assert_eq!(decode_tenant(&encode_tenant(&tenant)?)?, tenant);
        let user = sample_user("u1", "t1", 3)?;
        assert_eq!(decode_user(&encode_user(&user)?)?, user);
        let response = StoredResponse {
            request_hash: [9; 32],
            outcome: Outcome::Completed {
                status: 201,
                body: b"{}".to_vec(),
            },
            created_at: 6,
        };
        assert_eq!(decode_response(&encode_response(&response)?)?, response);
        let pending = StoredResponse {
            outcome: Outcome::Pending,
            ..response.clone()
        };
        assert_eq!(decode_response(&encode_response(&pending)?)?, pending);
        // A v1 record (no state byte) reads as a completed response.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&[9; 32]);
        v1.extend_from_slice(&201u32.to_be_bytes());
        v1.extend_from_slice(&2u32.to_be_bytes());
        v1.extend_from_slice(b"{}");
        v1.extend_from_slice(&6u64.to_be_bytes());
        assert_eq!(decode_response(&v1)?, response);
        let device = GatewayDevice {
            id: GatewayDeviceId::new("d1")?,
            user: user.id.clone(),
            name: "Vendas".into(),
            device: DeviceId::new(7),
            created_at: 9,
        };
        assert_eq!(
            decode_gateway_device(&encode_gateway_device(&device)?)?,
            device
        );
        let hash = TokenHash::from_bytes([1; 32]);
        assert_eq!(decode_token_hash(&encode_token_hash(&hash))?, hash);
        assert_eq!(decode_index(&encode_index(&user.id)?)?, user.id);
        Ok(())
    }

    #[test]
    fn damaged_records_are_errors_not_panics() -> Result<(), Box<dyn std::error::Error>> {
        let user = encode_user(&sample_user("u1", "t1", 3)?)?;
        for len in 0..user.len() {
            let cut = user.get(..len).ok_or("slice")?;
            assert!(decode_user(cut).is_err(), "{len}");
        }
        let mut bad_id = encode_index(&UserId::new("u1")?)?;
        if let Some(last) = bad_id.last_mut() {
            *last = b'/';
        }
        assert!(decode_index(&bad_id).is_err());
        Ok(())
    }

    #[test]
    fn response_keys_of_one_user_share_a_prefix() -> Result<(), crate::Error> {
        let user = UserId::new("u1")?;
        let other = UserId::new("u10")?;
        let key = response_key(&user, &super::super::IdempotencyKey::new("k")?);
        assert!(key.starts_with(&response_prefix(&user)));
        assert!(!key.starts_with(&response_prefix(&other)));
        Ok(())
    }
}
