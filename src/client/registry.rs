//! The devices of one process: created, restored at start-up, started, removed, shut down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::OsRng;
use tokio::sync::{Semaphore, broadcast, mpsc};
use wuts_store::{DeviceId, Store};

use super::api::{
    BoxFuture, DeviceEvent, DeviceStats, DeviceStatus, Devices, Error, Locator, PairCodeInfo,
    Placement, Reason,
};
use super::driver::{ClientConfig, Driver, Shared};
use super::handle::Client;
use super::jobs;
use crate::engine::lifecycle::{self, Lifecycle};
use crate::engine::{CloseReason, keys};
use crate::ops::groups::{CreateGroup, GroupAnswer, GroupCall, GroupInfo};
use crate::types::{Jid, UserJid};

/// How many devices may be connecting (websocket + handshake) at the same time.
pub const DEFAULT_CONNECT_CONCURRENCY: usize = 64;

/// Every device of the process. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: Arc<ClientConfig>,
    clients: Mutex<HashMap<DeviceId, Client>>,
    connect_slots: Arc<Semaphore>,
    reconnects: Arc<AtomicU64>,
    sink: crate::events::SinkSlot,
    /// Cluster mode: where the devices this node does not run live.
    locator: std::sync::OnceLock<Arc<dyn Locator>>,
}

impl Registry {
    /// A registry over `store`; call [`Registry::restore`] to bring back paired devices.
    pub fn new(store: Arc<dyn Store>, config: ClientConfig) -> Self {
        Registry {
            inner: Arc::new(Inner {
                store,
                config: Arc::new(config),
                clients: Mutex::new(HashMap::new()),
                connect_slots: Arc::new(Semaphore::new(DEFAULT_CONNECT_CONCURRENCY)),
                reconnects: Arc::new(AtomicU64::new(0)),
                sink: crate::events::SinkSlot::default(),
                locator: std::sync::OnceLock::new(),
            }),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Client>> {
        self.inner.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a task for every stored device; paired ones connect (a bounded number at a
    /// time). A device whose stored data cannot be read (a damaged record, a JID that does not
    /// read back) is started parked in `error`, naming what is wrong: it never takes the others
    /// down, and it still shows in every listing.
    pub fn restore(&self) -> Result<usize, Error> {
        let mut n = 0;
        for entry in self.inner.store.list_devices()? {
            match entry {
                Ok(info) => {
                    let jid = info.jid.as_ref().map(Jid::from);
                    let store = self.inner.store.as_ref();
                    let held = jid.is_some() && jobs::is_held_offline(store, info.id)?;
                    let lifecycle = if held {
                        Lifecycle::held_offline(self.lifecycle_settings())
                    } else {
                        Lifecycle::new(jid.is_some(), self.lifecycle_settings())
                    };
                    self.spawn(info.id, jid, lifecycle);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a device record is damaged");
                    let Some(id) = e.device() else { continue };
                    let reason = CloseReason::Store(Arc::new(e));
                    let lifecycle = Lifecycle::faulted(reason, self.lifecycle_settings());
                    self.spawn(id, None, lifecycle);
                }
            }
            n += 1;
        }
        Ok(n)
    }

    fn lifecycle_settings(&self) -> lifecycle::Settings {
        self.inner.config.lifecycle.clone()
    }

    fn spawn(&self, id: DeviceId, jid: Option<Jid>, lifecycle: Lifecycle) -> Client {
        let reason = lifecycle.reason().map(Reason::of);
        let mut shared = Shared::new(lifecycle.phase(), jid, reason);
        shared.sink = Some((id, self.inner.sink.clone()));
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(32);
        let client = Client {
            id,
            commands: tx,
            shared: shared.clone(),
        };
        let driver = Driver {
            id,
            store: self.inner.store.clone(),
            config: self.inner.config.clone(),
            shared,
            commands: rx,
            connect_slots: self.inner.connect_slots.clone(),
            reconnects: self.inner.reconnects.clone(),
            lifecycle,
        };
        tokio::spawn(driver.run());
        self.clients().insert(id, client.clone());
        client
    }

    /// A new device with fresh keys (saved before this returns), not yet paired.
    pub async fn create_device(&self) -> Result<Client, Error> {
        let store = self.inner.store.clone();
        let id =
            tokio::task::spawn_blocking(move || store.create_device(&keys::generate(&mut OsRng)))
                .await
                .map_err(|_| Error::Closed)??;
        let lifecycle = Lifecycle::new(false, self.lifecycle_settings());
        Ok(self.spawn(id, None, lifecycle))
    }

    /// Cluster mode: devices this registry does not run are answered by `locator` (their
    /// calls fail with [`Error::NotHere`], for the HTTP layer to forward). Set once.
    pub fn set_locator(&self, locator: Arc<dyn Locator>) {
        let _ = self.inner.locator.set(locator);
    }

    /// The handle of a device.
    pub fn client(&self, id: DeviceId) -> Result<Client, Error> {
        match self.clients().get(&id) {
            Some(client) => Ok(client.clone()),
            None if self.inner.locator.get().is_some() => Err(Error::NotHere(id)),
            None => Err(Error::UnknownDevice(id)),
        }
    }

    /// Every device's id.
    pub fn ids(&self) -> Vec<DeviceId> {
        self.clients().keys().copied().collect()
    }

    /// Logs a device out, wipes it and forgets it.
    pub async fn remove_device(&self, id: DeviceId) -> Result<(), Error> {
        let client = self.client(id)?;
        let r = client.logout().await;
        client.shutdown().await;
        self.clients().remove(&id);
        match r {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => return Err(e),
        }
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.remove_device(id))
            .await
            .map_err(|_| Error::Closed)??;
        Ok(())
    }

    /// Starts the task of one stored device this process did not start (cluster mode: a
    /// device claimed from a failed node or handed over). Nothing if it runs already.
    pub async fn adopt(&self, id: DeviceId) -> Result<(), Error> {
        if self.clients().contains_key(&id) {
            return Ok(());
        }
        let store = self.inner.store.clone();
        let (jid, held) = tokio::task::spawn_blocking(move || {
            let record = store.load_device(id)?;
            let jid = record.paired.as_ref().map(|p| Jid::from(&p.jid));
            let held = jid.is_some() && jobs::is_held_offline(store.as_ref(), id)?;
            Ok::<_, wuts_store::Error>((jid, held))
        })
        .await
        .map_err(|_| Error::Closed)??;
        let lifecycle = if held {
            Lifecycle::held_offline(self.lifecycle_settings())
        } else {
            Lifecycle::new(jid.is_some(), self.lifecycle_settings())
        };
        if !self.clients().contains_key(&id) {
            self.spawn(id, jid, lifecycle);
        }
        Ok(())
    }

    /// Stops one device's task and closes its connection, keeping everything stored (cluster
    /// mode: the device moved to another node, or this node lost its lease).
    pub async fn release(&self, id: DeviceId) {
        self.hand_over(id, Duration::ZERO).await;
    }

    /// [`Registry::release`] for a planned move: requests already sent to WhatsApp get their
    /// answers first (for at most `grace`); new ones find the device gone from here.
    pub async fn hand_over(&self, id: DeviceId, grace: Duration) {
        let client = self.clients().remove(&id);
        if let Some(client) = client {
            client.shutdown_within(grace).await;
        }
    }

    /// Closes every connection cleanly, then flushes the store.
    pub async fn shutdown_all(&self) {
        let clients: Vec<Client> = self.clients().values().cloned().collect();
        let stops = clients.iter().map(Client::shutdown);
        futures_util::future::join_all(stops).await;
        if let Err(e) = self.inner.store.flush() {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
    }
}

impl Devices for Registry {
    fn create(&self) -> BoxFuture<'_, Result<DeviceId, Error>> {
        Box::pin(async move { self.create_device().await.map(|c| c.id()) })
    }

    fn pair(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.client(id)?.pair().await })
    }

    fn pair_code(
        &self,
        id: DeviceId,
        phone: UserJid,
    ) -> BoxFuture<'_, Result<PairCodeInfo, Error>> {
        Box::pin(async move { self.client(id)?.pair_code(phone).await })
    }

    fn connect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.client(id)?.connect().await })
    }

    fn disconnect(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.client(id)?.disconnect().await })
    }

    fn logout(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.client(id)?.logout().await })
    }

    fn status(&self, id: DeviceId) -> Result<DeviceStatus, Error> {
        match (self.client(id), self.inner.locator.get()) {
            (Ok(client), _) => Ok(client.status()),
            (Err(Error::NotHere(_)), Some(locator)) => locator.status(id),
            (Err(e), _) => Err(e),
        }
    }

    fn runs_here(&self, id: DeviceId) -> bool {
        self.inner.locator.get().is_none() || self.clients().contains_key(&id)
    }

    fn locate(&self, id: DeviceId) -> BoxFuture<'_, Placement> {
        Box::pin(async move {
            match self.inner.locator.get() {
                Some(locator) if !self.clients().contains_key(&id) => locator.locate(id).await,
                _ => Placement::Here,
            }
        })
    }

    fn subscribe(&self, id: DeviceId) -> Result<broadcast::Receiver<DeviceEvent>, Error> {
        Ok(self.client(id)?.subscribe())
    }

    fn create_group(
        &self,
        id: DeviceId,
        req: CreateGroup,
    ) -> BoxFuture<'_, Result<GroupInfo, Error>> {
        Box::pin(async move { self.client(id)?.create_group(req).await })
    }

    fn group(&self, id: DeviceId, call: GroupCall) -> BoxFuture<'_, Result<GroupAnswer, Error>> {
        Box::pin(async move { self.client(id)?.group(call).await })
    }

    fn remove(&self, id: DeviceId) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.remove_device(id))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shutdown_all())
    }

    fn set_event_sink(&self, sink: Arc<dyn crate::events::EventSink>) {
        self.inner.sink.set(sink);
    }

    fn stats(&self) -> DeviceStats {
        DeviceStats {
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
        }
    }
}
