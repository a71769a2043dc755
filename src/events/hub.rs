//! [`EventHub`]: the pipeline's centre. Device tasks hand it events through [`EventSink`]; one
//! writer task names each event's owner, appends batches to the durable outbox (one fsync per
//! batch), saves a delivery record for each one a webhook wants, then wakes the live streams
//! and the delivery lanes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{broadcast, mpsc, oneshot};
use wuts_store::gateway::outbox::{NewEvent, StoredEvent, WebhookScope};
use wuts_store::gateway::{GatewayStore, UserId};

use super::EventSink;
use super::deliver::{self, DeliveryRecord, DeliveryStatus, Lanes, WebhookSettings};
use super::group::GroupEvent;
use super::model::{
    ConnectedData, Envelope, EventData, EventName, PairCodeData, PairedData, QrData, ReasonData,
};
use super::webhook::WebhookConfig;
use crate::client::api::{BoxFuture, DeviceEvent, DeviceId, Devices, Reason};

/// Most events written in one batch (one fsync).
const BATCH: usize = 256;
/// Events waiting for the writer, at most: past it device events are dropped (and counted) and
/// group events refused, so their notification is not acknowledged and WhatsApp sends it again.
const MAX_BACKLOG: usize = 100_000;
/// Old events are pruned each time a user's sequence passes a multiple of this.
const PRUNE_EVERY: u64 = 1000;

/// A new event in the outbox: wakes the streams of its user.
#[derive(Clone, Debug)]
pub struct Live {
    /// Whose.
    pub user: UserId,
    /// Its sequence number.
    pub seq: u64,
}

/// Who a device belongs to, as events name it.
#[derive(Clone, Debug)]
pub(super) struct Owner {
    pub(super) user: UserId,
    pub(super) device_id: Option<String>,
}

struct Write {
    device: DeviceId,
    name: EventName,
    data: EventData,
    done: Option<oneshot::Sender<Result<(), wuts_store::Error>>>,
}

/// Shared by the writer, the lanes and the handlers.
pub(super) struct Inner {
    pub(super) store: Arc<dyn GatewayStore>,
    pub(super) devices: Arc<dyn Devices>,
    pub(super) settings: WebhookSettings,
    pub(super) lanes: Lanes,
    owners: Mutex<HashMap<DeviceId, Owner>>,
    keepalive_lost: Mutex<HashSet<DeviceId>>,
    writes: mpsc::UnboundedSender<Write>,
    queued: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    live: broadcast::Sender<Live>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Events queued for the writer.
    backlog: std::sync::atomic::AtomicUsize,
}

/// What the device registry holds: the hub, weakly.
struct WeakSink(std::sync::Weak<Inner>);

impl EventSink for WeakSink {
    fn device_event(&self, device: DeviceId, event: &DeviceEvent) {
        if let Some(inner) = self.0.upgrade() {
            EventHub { inner }.device_event(device, event);
        }
    }

    fn group_event(
        &self,
        device: DeviceId,
        event: GroupEvent,
    ) -> BoxFuture<'_, Result<(), wuts_store::Error>> {
        let inner = self.0.upgrade();
        Box::pin(async move {
            match inner {
                Some(inner) => EventHub { inner }.group_event(device, event).await,
                None => Err(stopped()),
            }
        })
    }
}

fn stopped() -> wuts_store::Error {
    wuts_store::Error::Io {
        path: std::path::PathBuf::from("event outbox"),
        source: std::io::Error::other("the event writer has stopped"),
    }
}

/// The event pipeline of one gateway.
#[derive(Clone)]
pub struct EventHub {
    pub(super) inner: Arc<Inner>,
}

impl EventHub {
    /// A hub over `store`; it receives the devices' events from now on. Nothing is written or
    /// delivered before [`EventHub::start`].
    pub fn new(
        store: Arc<dyn GatewayStore>,
        devices: Arc<dyn Devices>,
        settings: WebhookSettings,
    ) -> Self {
        let (writes, queued) = mpsc::unbounded_channel();
        let hub = EventHub {
            inner: Arc::new(Inner {
                store,
                devices: devices.clone(),
                settings,
                lanes: Lanes::default(),
                owners: Mutex::default(),
                keepalive_lost: Mutex::default(),
                writes,
                queued: Mutex::new(Some(queued)),
                live: broadcast::channel(1024).0,
                tasks: Mutex::default(),
                backlog: std::sync::atomic::AtomicUsize::new(0),
            }),
        };
        // The registry holds only a weak reference: the hub (and with it the store) goes when
        // the gateway drops it.
        devices.set_event_sink(Arc::new(WeakSink(Arc::downgrade(&hub.inner))));
        hub
    }

    /// Writes what is queued, then stops the writer and the lanes (owed deliveries stay in the
    /// outbox for the next start).
    pub async fn stop(&self) {
        let (done, written) = oneshot::channel();
        let flush = Write {
            device: DeviceId::new(0),
            name: EventName::DeviceConnected,
            data: EventData::Connected(ConnectedData { jid: None }),
            done: Some(done),
        };
        let started = !self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        // Counted like any write: the writer takes every batch off the backlog.
        self.inner.backlog.fetch_add(1, Ordering::Relaxed);
        if started && self.inner.writes.send(flush).is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), written).await;
        }
        let mut tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        tasks.extend(deliver::stop(&self.inner));
        for task in &tasks {
            task.abort();
        }
        // An aborted task is dropped only when polled again: await each, so none still holds
        // the store once this returns (the data directory can be reopened at once).
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Starts the outbox writer and the delivery lanes (every delivery still owed from before a
    /// restart resumes). Runs until the runtime stops; call once.
    pub fn start(&self) {
        let queued = self
            .inner
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(queued) = queued {
            let writer = tokio::spawn(write_forever(self.inner.clone(), queued));
            self.inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(writer);
            deliver::resume(self.inner.clone());
        }
    }

    /// Wakes on every new event (of every user).
    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.inner.live.subscribe()
    }

    /// The store the hub writes.
    pub fn store(&self) -> &Arc<dyn GatewayStore> {
        &self.inner.store
    }

    /// The webhook settings.
    pub fn settings(&self) -> &WebhookSettings {
        &self.inner.settings
    }

    /// Up to `limit` of the user's events after `after` (blocking: call off the async workers).
    pub fn events_after(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, wuts_store::Error> {
        self.inner.store.outbox().events_after(user, after, limit)
    }

    /// Queues a delivery again (a dead letter too). `None` if the user has no such delivery.
    pub fn redeliver(
        &self,
        user: &UserId,
        id: &str,
    ) -> Result<Option<DeliveryRecord>, wuts_store::Error> {
        deliver::redeliver(&self.inner, user, id)
    }

    /// Appends `/metrics` lines.
    pub fn render_metrics(&self, out: &mut String) {
        self.inner.lanes.stats.render(out);
    }

    /// Takes a place in the writer's queue, or says it is full.
    fn admit(&self) -> bool {
        let before = self.inner.backlog.fetch_add(1, Ordering::Relaxed);
        if before < MAX_BACKLOG {
            return true;
        }
        self.inner.backlog.fetch_sub(1, Ordering::Relaxed);
        self.inner
            .lanes
            .stats
            .dropped
            .fetch_add(1, Ordering::Relaxed);
        false
    }

    fn queue(&self, device: DeviceId, name: EventName, data: EventData) {
        if !self.admit() {
            tracing::error!(
                device = device.get(),
                event = name.as_str(),
                "event dropped: the outbox writer is behind"
            );
            return;
        }
        let write = Write {
            device,
            name,
            data,
            done: None,
        };
        if self.inner.writes.send(write).is_err() {
            tracing::warn!(
                device = device.get(),
                "event dropped: the writer has stopped"
            );
        }
    }

    /// What a device event means to operators: its own event, and the ones derived from its
    /// reason (stream replaced, keep-alive lost and back, connection failures).
    fn translate(&self, device: DeviceId, event: &DeviceEvent) -> Vec<(EventName, EventData)> {
        let reason = |r: &Reason| {
            EventData::Reason(ReasonData {
                reason: r.code.to_owned(),
                message: r.message.clone(),
            })
        };
        let mut lost = self
            .inner
            .keepalive_lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match event {
            DeviceEvent::Qr(qr) => vec![(
                EventName::QrGenerated,
                EventData::Qr(QrData {
                    code: qr.code.clone(),
                    expires_at: qr.expires_at,
                    ttl: qr.ttl.as_secs(),
                }),
            )],
            DeviceEvent::PairCode(code) => vec![(
                EventName::PairCode,
                EventData::PairCode(PairCodeData {
                    code: code.code.clone(),
                    phone: code.phone.clone(),
                    expires_at: code.expires_at,
                }),
            )],
            DeviceEvent::PairingTimedOut => vec![(
                EventName::PairError,
                EventData::Reason(ReasonData {
                    reason: "pairing_timed_out".into(),
                    message: "no phone scanned a code in time".into(),
                }),
            )],
            DeviceEvent::PairingFailed { reason: r } => vec![(EventName::PairError, reason(r))],
            DeviceEvent::Paired {
                jid,
                business_name,
                platform,
            } => vec![(
                EventName::PairSuccess,
                EventData::Paired(PairedData {
                    jid: jid.to_string(),
                    business_name: business_name.clone(),
                    platform: platform.clone(),
                }),
            )],
            DeviceEvent::Connected => {
                let jid = self
                    .inner
                    .devices
                    .status(device)
                    .ok()
                    .and_then(|s| s.jid)
                    .map(|j| j.to_string());
                let data = EventData::Connected(ConnectedData { jid });
                let mut out = vec![(EventName::DeviceConnected, data.clone())];
                if lost.remove(&device) {
                    out.push((EventName::ConnectionKeepaliveRestored, data));
                }
                out
            }
            DeviceEvent::Disconnected { reason: r } | DeviceEvent::Error { reason: r } => {
                let mut out = vec![(EventName::DeviceDisconnected, reason(r))];
                match r.code {
                    "replaced" => out.push((EventName::ConnectionStreamReplaced, reason(r))),
                    "keepalive_timeout" => {
                        lost.insert(device);
                        out.push((EventName::ConnectionKeepaliveTimeout, reason(r)));
                    }
                    _ if matches!(event, DeviceEvent::Error { .. }) => {
                        out.push((EventName::ConnectionFailure, reason(r)));
                    }
                    _ => {}
                }
                out
            }
            DeviceEvent::LoggedOut { reason: r } => {
                lost.remove(&device);
                let mut out = vec![(EventName::DeviceLoggedOut, reason(r))];
                if r.code == "credentials_refused" {
                    out.push((EventName::ConnectionFailure, reason(r)));
                }
                out
            }
            // Group events come in through `group_event`, durably, before their notification
            // is acknowledged (the driver calls it); not a second time here.
            DeviceEvent::Group(_) => Vec::new(),
        }
    }
}

impl EventSink for EventHub {
    fn device_event(&self, device: DeviceId, event: &DeviceEvent) {
        for (name, data) in self.translate(device, event) {
            self.queue(device, name, data);
        }
    }

    fn group_event(
        &self,
        device: DeviceId,
        event: GroupEvent,
    ) -> BoxFuture<'_, Result<(), wuts_store::Error>> {
        Box::pin(async move {
            if !self.admit() {
                return Err(stopped());
            }
            let (done, written) = oneshot::channel();
            let write = Write {
                device,
                name: event.name(),
                data: EventData::Group(event),
                done: Some(done),
            };
            if self.inner.writes.send(write).is_err() {
                return Err(stopped());
            }
            written.await.unwrap_or_else(|_| Err(stopped()))
        })
    }
}

/// The writer: batches, appends durably, then wakes streams and lanes.
async fn write_forever(inner: Arc<Inner>, mut queued: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queued.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        inner.backlog.fetch_sub(batch.len(), Ordering::Relaxed);
        let mut replies = Vec::new();
        let mut prepared = Vec::new();
        for write in batch {
            replies.push(write.done);
            prepared.push((write.device, write.name, write.data));
        }
        let worker = inner.clone();
        let written = tokio::task::spawn_blocking(move || append(&worker, prepared)).await;
        let written = match written {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return,
        };
        match written {
            Ok(appended) => {
                for a in &appended {
                    let _ = inner.live.send(Live {
                        user: a.user.clone(),
                        seq: a.seq,
                    });
                    if a.pending {
                        inner.lanes.stats.queue.fetch_add(1, Ordering::Relaxed);
                        deliver::wake(&inner, &a.user, a.lane);
                    }
                }
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "events could not be written to the outbox");
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(stopped()));
                }
            }
        }
    }
}

struct Appended {
    user: UserId,
    seq: u64,
    lane: u64,
    pending: bool,
}

/// Names owners, builds envelopes, appends (durable), saves delivery records.
fn append(
    inner: &Inner,
    batch: Vec<(DeviceId, EventName, EventData)>,
) -> Result<Vec<Appended>, wuts_store::Error> {
    let now = super::unix_now();
    let mut events = Vec::new();
    let mut records = Vec::new();
    for (device, name, data) in batch {
        let Some(owner) = owner(inner, device)? else {
            tracing::debug!(
                device = device.get(),
                event = name.as_str(),
                "event of a device nobody owns"
            );
            continue;
        };
        let envelope = Envelope {
            id: uuid::Uuid::new_v4().to_string(),
            event: name,
            timestamp: now,
            device_id: owner.device_id.clone(),
            user_id: owner.user.as_str().to_owned(),
            data,
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let config = webhook_for(inner, &owner.user, device)?;
        let pending = config.as_ref().is_some_and(|c| c.wants(name));
        if pending {
            records.push(DeliveryRecord::new(&envelope, device.get(), now));
        } else {
            records.push(DeliveryRecord::none());
        }
        events.push(NewEvent {
            user: owner.user,
            lane: device.get(),
            pending,
            body,
        });
    }
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let outbox = inner.store.outbox();
    let seqs = outbox.append_events(&events)?;
    let mut out = Vec::with_capacity(events.len());
    let retain = inner.settings.retain_events.max(1);
    for ((event, seq), mut record) in events.into_iter().zip(seqs).zip(records) {
        if seq % PRUNE_EVERY == 0 && seq > retain {
            // Not flushed: a crash only leaves old events a little longer.
            outbox.prune_events(&event.user, seq - retain)?;
        }
        if event.pending {
            record.seq = seq;
            outbox.save_delivery(&event.user, seq, &record.encode())?;
        }
        out.push(Appended {
            user: event.user,
            seq,
            lane: event.lane,
            pending: event.pending,
        });
    }
    Ok(out)
}

/// The device's owner: cached, else found among the users' devices.
pub(super) fn owner(inner: &Inner, device: DeviceId) -> Result<Option<Owner>, wuts_store::Error> {
    let cached = inner
        .owners
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&device)
        .cloned();
    if let Some(owner) = cached.filter(|o| o.device_id.is_some()) {
        return Ok(Some(owner));
    }
    let mut found = None;
    for user in inner.store.users()? {
        let listed = inner.store.gateway_devices(&user.id)?;
        if let Some(d) = listed.iter().find(|d| d.device == device) {
            found = Some(Owner {
                user: user.id.clone(),
                device_id: Some(d.id.as_str().to_owned()),
            });
            break;
        }
        if user.device == device {
            // The user's first slot, not listed yet: it is listed under the user's own id
            // when it is (`http::devices::devices_of`), so name it that already.
            found = Some(Owner {
                user: user.id.clone(),
                device_id: Some(user.id.as_str().to_owned()),
            });
            break;
        }
    }
    if let Some(owner) = &found {
        inner
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(device, owner.clone());
    }
    Ok(found)
}

/// The webhook that applies to a device: its own, else its user's.
pub(super) fn webhook_for(
    inner: &Inner,
    user: &UserId,
    device: DeviceId,
) -> Result<Option<WebhookConfig>, wuts_store::Error> {
    let outbox = inner.store.outbox();
    for scope in [WebhookScope::Device(device), WebhookScope::User] {
        if let Some(bytes) = outbox.webhook(user, scope)? {
            if let Some(config) = WebhookConfig::decode(&bytes) {
                return Ok(Some(config));
            }
        }
    }
    Ok(None)
}

impl DeliveryRecord {
    fn none() -> Self {
        DeliveryRecord {
            status: DeliveryStatus::Pending,
            ..DeliveryRecord::default()
        }
    }
}
