//! Behaviour every `GatewayStore` must share, run against `MemGatewayStore`, `SledStore` and
//! `PgGatewayStore` (on a throw-away PostgreSQL).

mod pg_support;

use std::error::Error as StdError;
use std::sync::Arc;

use wuts_store::gateway::{
    ConsoleSession, GatewayDevice, GatewayDeviceId, GatewayStore, IdempotencyKey, Outcome,
    StoredResponse, Tenant, TenantId, TokenHash, User, UserId,
};
use wuts_store::{DeviceId, Error};

type TestResult = Result<(), Box<dyn StdError>>;

macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod mem {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    super::$name(std::sync::Arc::new(wuts_store::gateway::MemGatewayStore::new()))
                }
            )*
        }
        mod sled {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    let dir = tempfile::tempdir()?;
                    super::$name(std::sync::Arc::new(wuts_store::SledStore::open(dir.path())?))
                }
            )*
        }
        /// One PostgreSQL for all cases (starting one takes seconds), a fresh database each.
        mod pg {
            #[test]
            fn every_behaviour() -> super::TestResult {
                let Some(pg) = super::pg_support::TempPostgres::start("gateway_conformance::pg")
                else {
                    return Ok(());
                };
                $(
                    let url = pg.database(stringify!($name));
                    let bridge = wuts_store::pg::Bridge::connect(
                        &url, 4, wuts_store::pg::DEFAULT_CALL_TIMEOUT)?;
                    super::$name(std::sync::Arc::new(wuts_store::pg::PgGatewayStore::new(
                        std::sync::Arc::new(bridge))))
                        .map_err(|e| format!("{}: {}", stringify!($name), super::chain(&*e)))?;
                )*
                Ok(())
            }
        }
    };
}

for_each_backend!(
    admin_token_is_set_and_replaced,
    tenants_are_unique_and_listed,
    users_need_a_tenant_and_unique_ids_and_tokens,
    token_lookup_follows_rotation,
    removing_a_user_forgets_token_and_responses,
    responses_are_per_user_and_swept_by_age,
    a_users_devices_are_listed_oldest_first_and_go_with_the_user,
    the_outbox_orders_marks_prunes_and_goes_with_the_user,
    console_sessions_are_stored_replaced_and_removed,
);

/// An error with its causes, one per line: a backend failure says what PostgreSQL said.
fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

fn session(key: u8, record: &[u8]) -> ConsoleSession {
    ConsoleSession {
        key: [key; 32],
        record: record.to_vec(),
    }
}

fn console_sessions_are_stored_replaced_and_removed(store: Arc<dyn GatewayStore>) -> TestResult {
    assert!(store.console_sessions()?.is_empty());
    store.save_console_session(&[1; 32], Some(b"one"))?;
    store.save_console_session(&[2; 32], Some(b"two"))?;
    store.save_console_session(&[1; 32], Some(b"uno"))?;
    let mut all = store.console_sessions()?;
    all.sort();
    assert_eq!(all, vec![session(1, b"uno"), session(2, b"two")]);
    store.save_console_session(&[1; 32], None)?;
    store.save_console_session(&[9; 32], None)?;
    assert_eq!(store.console_sessions()?, vec![session(2, b"two")]);
    store.flush_gateway()?;
    Ok(())
}

fn tenant(id: &str) -> Result<Tenant, Error> {
    Ok(Tenant {
        id: TenantId::new(id)?,
        name: format!("tenant {id}"),
        created_at: 10,
    })
}

fn user(id: &str, tenant: &str, token: u8) -> Result<User, Error> {
    Ok(User {
        id: UserId::new(id)?,
        tenant: TenantId::new(tenant)?,
        name: format!("user {id}"),
        device: DeviceId::new(u64::from(token)),
        token_hash: TokenHash::from_bytes([token; 32]),
        created_at: 20,
    })
}

fn response(created_at: u64, body: &[u8]) -> StoredResponse {
    StoredResponse {
        request_hash: [1; 32],
        outcome: Outcome::Completed {
            status: 201,
            body: body.to_vec(),
        },
        created_at,
    }
}

fn admin_token_is_set_and_replaced(store: Arc<dyn GatewayStore>) -> TestResult {
    assert_eq!(store.admin_token()?, None);
    store.set_admin_token(&TokenHash::from_bytes([1; 32]))?;
    store.set_admin_token(&TokenHash::from_bytes([2; 32]))?;
    assert_eq!(store.admin_token()?, Some(TokenHash::from_bytes([2; 32])));
    Ok(())
}

fn tenants_are_unique_and_listed(store: Arc<dyn GatewayStore>) -> TestResult {
    store.create_tenant(&tenant("b")?)?;
    store.create_tenant(&tenant("a")?)?;
    assert!(matches!(
        store.create_tenant(&tenant("a")?),
        Err(Error::Duplicate { .. })
    ));
    let ids: Vec<_> = store
        .tenants()?
        .into_iter()
        .map(|t| t.id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(store.tenant(&TenantId::new("a")?)?, Some(tenant("a")?));
    assert_eq!(store.tenant(&TenantId::new("zz")?)?, None);
    Ok(())
}

fn users_need_a_tenant_and_unique_ids_and_tokens(store: Arc<dyn GatewayStore>) -> TestResult {
    assert!(matches!(
        store.create_user(&user("u1", "t", 1)?),
        Err(Error::UnknownTenant(_))
    ));
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("u1", "t", 1)?)?;
    assert!(matches!(
        store.create_user(&user("u1", "t", 2)?),
        Err(Error::Duplicate { what: "user id" })
    ));
    assert!(matches!(
        store.create_user(&user("u2", "t", 1)?),
        Err(Error::Duplicate { what: "token" })
    ));
    store.create_user(&user("u2", "t", 2)?)?;
    assert_eq!(store.users()?.len(), 2);
    assert_eq!(store.user(&UserId::new("u2")?)?, Some(user("u2", "t", 2)?));
    Ok(())
}

fn token_lookup_follows_rotation(store: Arc<dyn GatewayStore>) -> TestResult {
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("u1", "t", 1)?)?;
    store.create_user(&user("u2", "t", 2)?)?;
    let id = UserId::new("u1")?;
    let (old, new) = (
        TokenHash::from_bytes([1; 32]),
        TokenHash::from_bytes([9; 32]),
    );
    assert_eq!(store.user_by_token(&old)?.map(|u| u.id), Some(id.clone()));
    assert!(matches!(
        store.set_user_token(&id, &TokenHash::from_bytes([2; 32])),
        Err(Error::Duplicate { .. })
    ));
    let rotated = store.set_user_token(&id, &new)?;
    assert_eq!(rotated.token_hash, new);
    assert_eq!(store.user_by_token(&old)?, None);
    assert_eq!(store.user_by_token(&new)?.map(|u| u.id), Some(id));
    assert!(matches!(
        store.set_user_token(&UserId::new("ghost")?, &TokenHash::from_bytes([5; 32])),
        Err(Error::UnknownUser(_))
    ));
    Ok(())
}

fn removing_a_user_forgets_token_and_responses(store: Arc<dyn GatewayStore>) -> TestResult {
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("u1", "t", 1)?)?;
    store.create_user(&user("u2", "t", 2)?)?;
    let (u1, u2, key) = (
        UserId::new("u1")?,
        UserId::new("u2")?,
        IdempotencyKey::new("k")?,
    );
    store.save_response(&u1, &key, &response(5, b"one"))?;
    store.save_response(&u2, &key, &response(5, b"two"))?;
    assert_eq!(store.remove_user(&u1)?.map(|u| u.id), Some(u1.clone()));
    assert_eq!(store.remove_user(&u1)?, None);
    assert_eq!(store.user_by_token(&TokenHash::from_bytes([1; 32]))?, None);
    assert_eq!(store.stored_response(&u1, &key)?, None);
    assert_eq!(store.stored_response(&u2, &key)?, Some(response(5, b"two")));
    assert_eq!(store.count_responses(&u2)?, 1);
    assert!(store.remove_response(&u2, &key)?);
    assert_eq!(store.count_responses(&u2)?, 0);
    assert!(!store.remove_response(&u2, &key)?);
    assert_eq!(store.stored_response(&u2, &key)?, None);
    assert!(matches!(
        store.save_response(&u1, &key, &response(5, b"late")),
        Err(Error::UnknownUser(_))
    ));
    Ok(())
}

fn responses_are_per_user_and_swept_by_age(store: Arc<dyn GatewayStore>) -> TestResult {
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("u1", "t", 1)?)?;
    let u1 = UserId::new("u1")?;
    let (old, new) = (IdempotencyKey::new("old")?, IdempotencyKey::new("new")?);
    store.save_response(&u1, &old, &response(100, b"a"))?;
    store.save_response(&u1, &new, &response(200, b"b"))?;
    assert_eq!(store.sweep_responses(150)?, 1);
    assert_eq!(store.stored_response(&u1, &old)?, None);
    assert_eq!(store.stored_response(&u1, &new)?, Some(response(200, b"b")));
    store.flush_gateway()?;
    Ok(())
}

#[test]
fn sled_gateway_records_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = wuts_store::SledStore::open(dir.path())?;
        store.create_tenant(&tenant("t")?)?;
        store.create_user(&user("u1", "t", 1)?)?;
        store.set_admin_token(&TokenHash::from_bytes([3; 32]))?;
        store.save_console_session(&[4; 32], Some(b"session"))?;
        store.save_response(
            &UserId::new("u1")?,
            &IdempotencyKey::new("k")?,
            &response(1, b"x"),
        )?;
    }
    let store = wuts_store::SledStore::open(dir.path())?;
    assert_eq!(store.admin_token()?, Some(TokenHash::from_bytes([3; 32])));
    assert_eq!(store.console_sessions()?, vec![session(4, b"session")]);
    assert_eq!(
        store
            .user_by_token(&TokenHash::from_bytes([1; 32]))?
            .map(|u| u.device),
        Some(DeviceId::new(1))
    );
    assert!(
        store
            .stored_response(&UserId::new("u1")?, &IdempotencyKey::new("k")?)?
            .is_some()
    );
    Ok(())
}

fn a_users_devices_are_listed_oldest_first_and_go_with_the_user(
    store: Arc<dyn GatewayStore>,
) -> TestResult {
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("u1", "t", 1)?)?;
    store.create_user(&user("u2", "t", 2)?)?;
    let (u1, u2) = (UserId::new("u1")?, UserId::new("u2")?);
    let device = |id: &str, user: &UserId, at: u64| -> Result<GatewayDevice, Error> {
        Ok(GatewayDevice {
            id: GatewayDeviceId::new(id)?,
            user: user.clone(),
            name: format!("device {id}"),
            device: DeviceId::new(at),
            created_at: at,
        })
    };
    store.add_gateway_device(&device("b", &u1, 20)?)?;
    store.add_gateway_device(&device("a", &u1, 10)?)?;
    store.add_gateway_device(&device("c", &u2, 5)?)?;
    assert!(matches!(
        store.add_gateway_device(&device("a", &u1, 10)?),
        Err(Error::Duplicate { .. })
    ));
    assert!(matches!(
        store.add_gateway_device(&device("x", &UserId::new("ghost")?, 1)?),
        Err(Error::UnknownUser(_))
    ));
    let ids = |user: &UserId| -> Result<Vec<String>, Error> {
        Ok(store
            .gateway_devices(user)?
            .into_iter()
            .map(|d| d.id.to_string())
            .collect())
    };
    assert_eq!(ids(&u1)?, ["a", "b"]);
    assert_eq!(ids(&u2)?, ["c"]);
    let removed = store.remove_gateway_device(&u1, &GatewayDeviceId::new("a")?)?;
    assert_eq!(removed.map(|d| d.device), Some(DeviceId::new(10)));
    // A device of another user is not found through this user.
    assert_eq!(
        store.remove_gateway_device(&u1, &GatewayDeviceId::new("c")?)?,
        None
    );
    assert_eq!(ids(&u1)?, ["b"]);
    store.remove_user(&u1)?;
    assert!(ids(&u1)?.is_empty());
    assert_eq!(ids(&u2)?, ["c"]);
    Ok(())
}

fn the_outbox_orders_marks_prunes_and_goes_with_the_user(
    store: Arc<dyn GatewayStore>,
) -> TestResult {
    use wuts_store::gateway::outbox::{NewEvent, PendingDelivery, WebhookScope};
    store.create_tenant(&tenant("t")?)?;
    store.create_user(&user("a", "t", 1)?)?;
    store.create_user(&user("b", "t", 2)?)?;
    let (a, b) = (UserId::new("a")?, UserId::new("b")?);
    let new = |user: &UserId, lane: u64, pending: bool, n: u8| NewEvent {
        user: user.clone(),
        lane,
        pending,
        body: vec![n],
    };
    let outbox = store.outbox();
    assert_eq!(
        outbox.append_events(&[
            new(&a, 1, true, 1),
            new(&b, 1, true, 2),
            new(&a, 2, false, 3)
        ])?,
        [1, 1, 2]
    );
    assert_eq!(outbox.append_events(&[new(&a, 1, true, 4)])?, [3]);
    assert_eq!(outbox.last_seq(&a)?, 3);
    let bodies: Vec<_> = outbox
        .events_after(&a, 0, 10)?
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(bodies, [vec![1], vec![3], vec![4]]);
    assert_eq!(outbox.events_after(&a, 1, 1)?[0].seq, 2);
    assert_eq!(outbox.first_pending(&a, 1)?, Some(1));
    assert_eq!(outbox.first_pending(&a, 2)?, None);
    let owed: Vec<_> = outbox
        .pending_deliveries()?
        .into_iter()
        .map(|p| (p.user.as_str().to_owned(), p.lane, p.seq))
        .collect();
    assert_eq!(
        owed,
        [("a".into(), 1, 1), ("a".into(), 1, 3), ("b".into(), 1, 1)]
    );
    let first = PendingDelivery {
        user: a.clone(),
        lane: 1,
        seq: 1,
    };
    outbox.set_pending(&first, false)?;
    assert_eq!(outbox.first_pending(&a, 1)?, Some(3));
    outbox.save_delivery(&a, 1, b"one")?;
    outbox.save_delivery(&a, 3, b"three")?;
    assert_eq!(outbox.delivery(&a, 3)?, Some(b"three".to_vec()));
    let newest: Vec<_> = outbox
        .deliveries(&a, u64::MAX, 10)?
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(newest, [3, 1]);
    assert_eq!(
        outbox.deliveries(&a, 3, 10)?.len(),
        1,
        "before is exclusive"
    );
    // Pruning spares what is still owed (3).
    assert_eq!(outbox.prune_events(&a, 3)?, 2);
    let left: Vec<_> = outbox
        .events_after(&a, 0, 10)?
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, [3]);
    assert_eq!(outbox.delivery(&a, 1)?, None);
    outbox.save_webhook(&a, WebhookScope::User, Some(b"u"))?;
    outbox.save_webhook(&a, WebhookScope::Device(DeviceId::new(1)), Some(b"d"))?;
    assert_eq!(outbox.webhook(&a, WebhookScope::User)?, Some(b"u".to_vec()));
    assert_eq!(
        outbox.webhook(&a, WebhookScope::Device(DeviceId::new(2)))?,
        None
    );
    outbox.save_webhook(&a, WebhookScope::User, None)?;
    assert_eq!(outbox.webhook(&a, WebhookScope::User)?, None);
    store.remove_user(&a)?;
    assert!(outbox.events_after(&a, 0, 10)?.is_empty());
    assert_eq!(
        outbox.webhook(&a, WebhookScope::Device(DeviceId::new(1)))?,
        None
    );
    assert_eq!(outbox.pending_deliveries()?.len(), 1, "b's mark stays");
    Ok(())
}
