//! Reading the whole sled store into a [`Snapshot`] for `wuts store migrate`.

use super::{LAST_DEVICE_ID_KEY, SledStore, backend};
use crate::DeviceId;
use crate::codec::RecordError;
use crate::error::{Error, RecordKind};
use crate::gateway::GatewayStore;
use crate::gateway::UserId;
use crate::gateway::outbox::WebhookScope;
use crate::gateway::record::decode_response;
use crate::keyspace::{DEVICE_KEY_LEN, parse_device_prefix};
use crate::migrate::Snapshot;
use crate::pg::devices::{DEVICE_KEYS, META, PAIRED, PRE_KEY_COUNTER, PRE_KEYS};
use crate::record;

impl SledStore {
    /// Every record of the store. Reads one tree after another: take it while nobody writes
    /// (the CLI opens the store itself, so the gateway is not running).
    pub(crate) fn snapshot(&self) -> Result<Snapshot, Error> {
        let mut out = Snapshot::default();
        for (tree, number) in [
            (&self.device_keys, DEVICE_KEYS),
            (&self.paired, PAIRED),
            (&self.pre_key_counter, PRE_KEY_COUNTER),
            (&self.pre_keys, PRE_KEYS),
            (&self.meta, META),
        ] {
            for entry in tree.iter() {
                let (key, value) = entry.map_err(backend("export device records"))?;
                let device = parse_device_prefix(&key).map_err(|source| Error::CorruptStore {
                    record: RecordKind::DeviceKeys,
                    source,
                })?;
                let rest = key.get(DEVICE_KEY_LEN..).unwrap_or_default().to_vec();
                if number == DEVICE_KEYS {
                    out.devices.push(device.get());
                }
                out.kv.push((device.get(), number, rest, value.to_vec()));
            }
        }
        out.last_device_id = match self
            .store
            .get(LAST_DEVICE_ID_KEY)
            .map_err(backend("export the device counter"))?
        {
            Some(bytes) => {
                record::decode_counter(&bytes).map_err(|source| Error::CorruptStore {
                    record: RecordKind::DeviceCounter,
                    source,
                })?
            }
            None => 0,
        };
        out.admin = self.admin_token()?.map(|h| *h.as_bytes());
        out.tenants = self.tenants()?;
        out.users = self.users()?;
        for entry in self.gateway.responses_tree().iter() {
            let (key, value) = entry.map_err(backend("export idempotency records"))?;
            let bad = |source| Error::CorruptStore {
                record: RecordKind::StoredResponse,
                source,
            };
            let at = key
                .iter()
                .position(|b| *b == 0)
                .ok_or(bad(RecordError::OutOfRange { field: "key" }))?;
            let (user, rest) = key.split_at(at);
            let user = UserId::new(String::from_utf8_lossy(user).into_owned())?;
            let text = String::from_utf8_lossy(rest.get(1..).unwrap_or_default()).into_owned();
            out.responses
                .push((user, text, decode_response(&value).map_err(bad)?));
        }
        let outbox = self.outbox();
        for user in &out.users {
            let slots = self.gateway_devices(&user.id)?;
            let mut devices: Vec<DeviceId> = slots.iter().map(|d| d.device).collect();
            devices.push(user.device);
            devices.sort();
            devices.dedup();
            out.gateway_devices.extend(slots);
            out.event_seqs
                .push((user.id.clone(), outbox.last_seq(&user.id)?));
            for e in outbox.events_after(&user.id, 0, usize::MAX)? {
                out.events.push((user.id.clone(), e.seq, e.body));
            }
            for (seq, record) in outbox.deliveries(&user.id, u64::MAX, usize::MAX)? {
                out.deliveries.push((user.id.clone(), seq, record));
            }
            let scopes = std::iter::once(WebhookScope::User)
                .chain(devices.into_iter().map(WebhookScope::Device));
            for scope in scopes {
                if let Some(config) = outbox.webhook(&user.id, scope)? {
                    out.webhooks.push((user.id.clone(), scope, config));
                }
            }
        }
        out.pending = outbox.pending_deliveries()?;
        out.console_sessions = self.console_sessions()?;
        Ok(out)
    }
}
