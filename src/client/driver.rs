//! The task that owns one device: one select loop around its [`Lifecycle`] (what to do) and,
//! while one is open, its engine [`Connection`] and websocket (how). Commands arrive over a
//! bounded channel; results leave through oneshots and a broadcast of [`DeviceEvent`]s. Store
//! work (loading, the pairing fsync, generating pre-keys, wiping) runs on tokio's blocking pool,
//! never on the async workers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use wuts_store::{DeviceId, Store};

use super::api::{DeviceEvent, DeviceState, DeviceStatus, Error, PairCodeInfo, QrCode, Reason};
use super::jobs;
use super::transport::{self, Socket};
use crate::binary::Node;
use crate::engine::lifecycle::{self, Action, Lifecycle};
use crate::engine::{CloseReason, Connection, EngineConfig, Event, IqId, NextStep};
use crate::ops::Iq;
use crate::types::{Jid, UserJid};
use outcome::{iq_error, transition_event};
use wait::{blocking, connected, next_message, sleep_until_opt, unix_now};

mod groups;
mod keys;
mod outcome;
mod wait;

/// Where and how devices connect.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `wss://web.whatsapp.com/ws/chat`, or a sandbox's `ws://127.0.0.1:PORT/ws/chat`.
    pub ws_url: String,
    /// The `Origin` header WhatsApp Web sends.
    pub origin: String,
    /// Engine settings (trusted root, client version, timeouts).
    pub engine: Arc<EngineConfig>,
    /// Websocket connect timeout.
    pub connect_timeout: Duration,
    /// Reconnect backoff and fault retries.
    pub lifecycle: lifecycle::Settings,
    /// Cluster mode: the node's fences. A device logs in only while this node holds a live
    /// fence for it (owned, lease deadline not passed); debug builds also present the fence's
    /// epoch in an `x-wuts-test-epoch` header, for the sandbox's records (WhatsApp never sees
    /// it).
    pub cluster_fences: Option<Arc<wuts_store::pg::Fences>>,
    /// The local address connections to WhatsApp leave from [default: the system's choice].
    pub source_address: Option<std::net::IpAddr>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ws_url: "wss://web.whatsapp.com/ws/chat".into(),
            origin: "https://web.whatsapp.com".into(),
            engine: Arc::new(EngineConfig::default()),
            connect_timeout: Duration::from_secs(20),
            lifecycle: lifecycle::Settings::default(),
            cluster_fences: None,
            source_address: None,
        }
    }
}

pub(super) enum Command {
    Lifecycle(lifecycle::Command, oneshot::Sender<Result<(), Error>>),
    PairCode(UserJid, oneshot::Sender<Result<PairCodeInfo, Error>>),
    Iq(Iq, oneshot::Sender<Result<Node, Error>>),
    /// Stop; with a grace, answer the requests already sent first (new ones are refused as
    /// not connected), for at most that long.
    Shutdown(oneshot::Sender<()>, Duration),
}

/// State the handle reads without asking the task.
pub(super) struct Shared {
    pub(super) status: Mutex<DeviceStatus>,
    pub(super) events: broadcast::Sender<DeviceEvent>,
    /// The event pipeline (webhooks, outbox), once the gateway has set one.
    pub(super) sink: Option<(DeviceId, crate::events::SinkSlot)>,
}

impl Shared {
    pub(super) fn new(state: DeviceState, jid: Option<Jid>, reason: Option<Reason>) -> Self {
        Shared {
            status: Mutex::new(DeviceStatus {
                state,
                jid,
                qr: None,
                pair_code: None,
                last_seen: None,
                reason,
            }),
            events: broadcast::channel(64).0,
            sink: None,
        }
    }

    pub(super) fn snapshot(&self) -> DeviceStatus {
        // A poisoned lock only means another thread panicked mid-update; the status is still a
        // plain value worth showing.
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut DeviceStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    fn emit(&self, ev: DeviceEvent) {
        if let Some(sink) = self
            .sink
            .as_ref()
            .and_then(|(id, slot)| Some((id, slot.get()?)))
        {
            sink.1.device_event(*sink.0, &ev);
        }
        let _ = self.events.send(ev);
    }
}

pub(super) struct Driver {
    pub(super) id: DeviceId,
    pub(super) store: Arc<dyn Store>,
    pub(super) config: Arc<ClientConfig>,
    pub(super) shared: Arc<Shared>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) connect_slots: Arc<Semaphore>,
    /// Logins after this device's first, counted across the registry (the reconnect metric).
    pub(super) reconnects: Arc<AtomicU64>,
    pub(super) lifecycle: Lifecycle,
}

/// An open connection.
struct Live {
    conn: Connection,
    socket: Socket,
}

type Connecting = Pin<Box<dyn Future<Output = Option<Socket>> + Send>>;

/// Loop state besides the lifecycle.
#[derive(Default)]
struct Pending {
    waiting: HashMap<IqId, oneshot::Sender<Result<Node, Error>>>,
    next_id: u64,
    logouts: Vec<oneshot::Sender<Result<(), Error>>>,
    logged_in_before: bool,
    /// Callers waiting for a pairing code, and the phone it is for.
    code_waiters: Vec<oneshot::Sender<Result<PairCodeInfo, Error>>>,
    code_phone: Option<UserJid>,
    /// A code asked for before the pairing connection was open.
    code_wanted: bool,
}

impl Pending {
    /// Answers every caller waiting for a code; a code not yet asked of a connection is
    /// dropped with them (a later pairing connection does not ask for it unbidden).
    fn answer_code(&mut self, answer: impl Fn() -> Result<PairCodeInfo, Error>) {
        self.code_wanted = false;
        for tx in self.code_waiters.drain(..) {
            let _ = tx.send(answer());
        }
    }
}

impl Driver {
    pub(super) async fn run(mut self) {
        let base = Instant::now();
        let mut rng = StdRng::from_entropy();
        let mut live: Option<Live> = None;
        let mut connecting: Option<Connecting> = None;
        let mut p = Pending::default();
        let mut last = self.shared.snapshot();
        // A graceful stop under way: until when, and who waits for it.
        let mut stopping: Option<(Duration, oneshot::Sender<()>)> = None;
        loop {
            let now = base.elapsed();
            if let Some((until, _)) = &stopping
                && (p.waiting.is_empty() || live.is_none() || now >= *until)
                && let Some((_, done)) = stopping.take()
            {
                return self.stop(live, Some(done)).await;
            }
            while let Some(action) = self.lifecycle.poll_action() {
                match action {
                    Action::Connect => connecting = Some(self.open_socket()),
                    Action::Close => match live.as_mut() {
                        Some(l) => l.conn.close(now, CloseReason::Local),
                        None => {
                            connecting = None;
                            self.lifecycle.closed(now, CloseReason::Local, rng.r#gen());
                        }
                    },
                    Action::Logout => match live.as_mut() {
                        Some(l) => l.conn.logout(now),
                        None => {
                            connecting = None;
                            let reason =
                                CloseReason::LoggedOut(crate::engine::LogoutReason::Requested);
                            self.lifecycle.closed(now, reason, rng.r#gen());
                        }
                    },
                    Action::HoldOffline(offline) => {
                        let (store, id) = (self.store.clone(), self.id);
                        let held =
                            blocking(move || jobs::hold_offline(store.as_ref(), id, offline));
                        if let Err(e) = held.await {
                            tracing::warn!(device = self.id.get(), error = %e, "offline mark not saved");
                        }
                    }
                    Action::ConfirmPairing => {
                        let (store, id) = (self.store.clone(), self.id);
                        if let Err(e) =
                            blocking(move || jobs::confirm_pairing(store.as_ref(), id)).await
                        {
                            tracing::warn!(device = self.id.get(), error = %e, "pairing not marked confirmed");
                        }
                    }
                    Action::Wipe(why) => {
                        let mut result = Some(self.wipe().await);
                        if let Some(Err(e)) = &result {
                            tracing::error!(device = self.id.get(), error = %e, "wiping failed");
                        }
                        self.lifecycle.wiped(why);
                        self.shared.update(|s| s.jid = None);
                        let ok = matches!(result, Some(Ok(())));
                        for reply in p.logouts.drain(..) {
                            // The first caller gets the store's error itself; concurrent ones
                            // learn only that it failed.
                            let answer = match result.take() {
                                Some(r) => r.map_err(Error::Store),
                                None if ok => Ok(()),
                                None => Err(Error::Closed),
                            };
                            let _ = reply.send(answer);
                        }
                    }
                }
            }
            last = self.publish(last);

            if let Some(l) = live.as_mut() {
                if let Some(reason) = self.drain(l, &mut p, base).await {
                    if let Some(mut l) = live.take() {
                        let _ = l.socket.close(None).await;
                    }
                    self.log_close(&reason);
                    p.answer_code(|| Err(Error::NotConnected));
                    self.lifecycle.closed(base.elapsed(), reason, rng.r#gen());
                    continue;
                }
            }

            let deadline = [
                self.lifecycle.poll_timeout(),
                live.as_ref().and_then(|l| l.conn.poll_timeout()),
                stopping.as_ref().map(|(until, _)| *until),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|d| base + d);
            tokio::select! {
                socket = connected(&mut connecting) => {
                    connecting = None;
                    let now = base.elapsed();
                    match socket {
                        Some(socket) => match self.start(now, &mut rng).await {
                            Ok(mut conn) => {
                                if let (true, Some(phone)) = (p.code_wanted, p.code_phone.clone()) {
                                    p.code_wanted = false;
                                    conn.request_pair_code(now, phone);
                                }
                                live = Some(Live { conn, socket });
                            }
                            Err(reason) => {
                                self.log_close(&reason);
                                self.lifecycle.closed(now, reason, rng.r#gen());
                            }
                        },
                        None => {
                            p.answer_code(|| Err(Error::NotConnected));
                            self.lifecycle.closed(now, CloseReason::ConnectFailed, rng.r#gen());
                        }
                    }
                }
                msg = next_message(&mut live) => {
                    let now = base.elapsed();
                    if let Some(l) = live.as_mut() {
                        match msg {
                            Some(Ok(Message::Binary(b))) => {
                                l.conn.handle_bytes(now, &b);
                                if l.conn.is_logged_in() {
                                    self.shared.update(|s| s.last_seen = Some(unix_now()));
                                }
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(())) => {
                                l.conn.handle_eof(now);
                            }
                            Some(Ok(_)) => {}
                        }
                    }
                }
                cmd = self.commands.recv() => {
                    let now = base.elapsed();
                    match cmd {
                        None => return self.stop(live, None).await,
                        Some(Command::Shutdown(done, grace)) => {
                            if grace.is_zero() || p.waiting.is_empty() || live.is_none() {
                                return self.stop(live, Some(done)).await;
                            }
                            stopping = Some((now + grace, done));
                        }
                        Some(Command::Iq(_, reply)) if stopping.is_some() => {
                            let _ = reply.send(Err(Error::NotConnected));
                        }
                        Some(Command::Lifecycle(cmd, reply)) => {
                            let r = self.lifecycle.command(now, cmd);
                            // Read-your-writes: the status shows the command before the reply.
                            last = self.publish(last);
                            if cmd == lifecycle::Command::Logout && r.is_ok() {
                                p.logouts.push(reply);
                            } else {
                                let _ = reply.send(r.map_err(Error::from));
                            }
                        }
                        Some(Command::PairCode(phone, reply)) => {
                            match self.lifecycle.command(now, lifecycle::Command::PairCode) {
                                Err(r) => { let _ = reply.send(Err(r.into())); }
                                Ok(()) => {
                                    last = self.publish(last);
                                    p.code_waiters.push(reply);
                                    p.code_phone = Some(phone.clone());
                                    match live.as_mut() {
                                        Some(l) => l.conn.request_pair_code(now, phone),
                                        None => p.code_wanted = true,
                                    }
                                }
                            }
                        }
                        Some(Command::Iq(iq, reply)) => match (self.lifecycle.iq_allowed(), live.as_mut()) {
                            (Ok(()), Some(l)) => {
                                p.next_id += 1;
                                p.waiting.insert(IqId(p.next_id), reply);
                                l.conn.send_iq(now, IqId(p.next_id), iq);
                            }
                            (Ok(()), None) => { let _ = reply.send(Err(Error::NotConnected)); }
                            (Err(r), _) => { let _ = reply.send(Err(r.into())); }
                        },
                    }
                }
                _ = sleep_until_opt(deadline) => {
                    let now = base.elapsed();
                    self.lifecycle.handle_timeout(now);
                    if let Some(l) = live.as_mut() {
                        l.conn.handle_timeout(now);
                    }
                }
            }
        }
    }

    /// Opens the websocket; a bounded number of devices connect at once, so a restart of
    /// thousands of devices is a steady stream rather than a stampede.
    fn open_socket(&self) -> Connecting {
        let slots = self.connect_slots.clone();
        let config = self.config.clone();
        let id = self.id;
        Box::pin(async move {
            let _slot = slots.acquire_owned().await;
            let c = &config;
            let fence = match &c.cluster_fences {
                None => None,
                Some(fences) => match fences.live(id) {
                    Some(fence) => Some(fence),
                    None => {
                        tracing::info!(device = id.get(), "no live fence here: not logging in");
                        return None;
                    }
                },
            };
            let epoch = fence
                .filter(|_| cfg!(debug_assertions))
                .map(|fence| fence.epoch.0);
            match transport::connect(
                &c.ws_url,
                &c.origin,
                c.connect_timeout,
                epoch,
                c.source_address,
            )
            .await
            {
                Ok(socket) => Some(socket),
                Err(e) => {
                    tracing::warn!(device = id.get(), error = %e, "connect failed");
                    None
                }
            }
        })
    }

    /// Loads the device and starts the engine's connection on the open socket.
    async fn start(&mut self, now: Duration, rng: &mut StdRng) -> Result<Connection, CloseReason> {
        let (store, id) = (self.store.clone(), self.id);
        let (record, unconfirmed, resume) = blocking(move || {
            let record = store.load_device(id)?;
            let unconfirmed = jobs::is_unconfirmed(store.as_ref(), id)?;
            let resume = jobs::resume(store.as_ref(), id)?;
            Ok::<_, wuts_store::Error>((record, unconfirmed, resume))
        })
        .await
        .map_err(|e| CloseReason::Store(Arc::new(e)))?;
        self.lifecycle.set_unconfirmed(unconfirmed);
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let engine = self.config.engine.clone();
        Connection::resume(record, engine, now, unix_now(), seed, resume).map_err(|e| match e {
            crate::engine::Error::Noise(n) => CloseReason::Handshake(Arc::new(n)),
            crate::engine::Error::Store(s) => CloseReason::Store(Arc::new(s)),
        })
    }

    /// Handles the connection's events and sends its bytes. Returns the close reason once it
    /// has closed.
    async fn drain(&mut self, l: &mut Live, p: &mut Pending, base: Instant) -> Option<CloseReason> {
        let mut closed = None;
        while let Some(ev) = l.conn.poll_event() {
            match ev {
                Event::Qr {
                    code,
                    ttl,
                    expires_at,
                } => {
                    let qr = QrCode {
                        code,
                        expires_at,
                        ttl,
                    };
                    self.shared.update(|s| s.qr = Some(qr.clone()));
                    self.shared.emit(DeviceEvent::Qr(qr));
                }
                Event::PairCode { code, expires_at } => {
                    let phone = p
                        .code_phone
                        .as_ref()
                        .map(|j| j.as_jid().user.to_string())
                        .unwrap_or_default();
                    let info = PairCodeInfo {
                        code,
                        phone,
                        expires_at,
                    };
                    self.shared.update(|s| s.pair_code = Some(info.clone()));
                    self.shared.emit(DeviceEvent::PairCode(info.clone()));
                    p.answer_code(|| Ok(info.clone()));
                }
                Event::PairCodeFailed(e) => {
                    tracing::warn!(device = self.id.get(), error = ?e, "pairing code refused");
                    p.answer_code(|| Err(iq_error(e.clone())));
                }
                Event::SavePairing(identity) => {
                    let (store, id) = (self.store.clone(), self.id);
                    let result =
                        blocking(move || jobs::save_pairing(store.as_ref(), id, &identity)).await;
                    l.conn.pairing_saved(base.elapsed(), result);
                }
                Event::Paired {
                    jid,
                    platform,
                    business_name,
                } => {
                    self.lifecycle.paired();
                    self.shared.update(|s| {
                        s.jid = Some(jid.clone());
                        s.qr = None;
                        s.pair_code = None;
                    });
                    self.shared.emit(DeviceEvent::Paired {
                        jid,
                        business_name,
                        platform,
                    });
                }
                ev @ (Event::NeedPreKeys(_)
                | Event::CheckDigest(_)
                | Event::SaveSignedPreKey(_)
                | Event::SignedPreKeyRotated { .. }
                | Event::DeriveCodeKey(_)) => self.key_job(l, ev, base).await,
                Event::LoggedIn { .. } => {
                    if p.logged_in_before {
                        self.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    p.logged_in_before = true;
                    self.lifecycle.logged_in();
                    let (store, id) = (self.store.clone(), self.id);
                    if let Err(e) = blocking(move || jobs::count_login(store.as_ref(), id)).await {
                        tracing::warn!(device = self.id.get(), error = %e, "login not counted");
                    }
                    self.shared.update(|s| s.last_seen = Some(unix_now()));
                }
                Event::RoutingInfo(info) => {
                    let (store, id) = (self.store.clone(), self.id);
                    let saved = blocking(move || jobs::save_routing(store.as_ref(), id, &info));
                    if let Err(e) = saved.await {
                        tracing::warn!(device = self.id.get(), error = %e, "routing info not kept");
                    }
                }
                Event::Group { events, ack } => {
                    let durable = self.record_groups(&events).await;
                    for event in events {
                        self.shared.emit(DeviceEvent::Group(Box::new(event)));
                    }
                    match ack {
                        Some(ack) if durable => l.conn.acknowledge(base.elapsed(), &ack),
                        // Unacknowledged, WhatsApp delivers it again (on the next connection).
                        _ => {}
                    }
                }
                Event::IqDone { id, result } => {
                    if let Some(tx) = p.waiting.remove(&id) {
                        let _ = tx.send(result.map_err(iq_error));
                    }
                }
                Event::OfflineSynced { .. } => {}
                Event::Closed(reason) => closed = Some(reason),
            }
        }
        while let Some(bytes) = l.conn.poll_transmit() {
            if l.socket.send(Message::Binary(bytes.into())).await.is_err() {
                // The server may have said why before closing (a `<stream:error>`, such as
                // `replaced`): read what has arrived already, then call it the end.
                wait::read_buffered(l, base.elapsed());
                l.conn.handle_eof(base.elapsed());
                break;
            }
        }
        if closed.is_none() && l.conn.is_closed() {
            // A send failure closed it just now; its event is next.
            closed = std::iter::from_fn(|| l.conn.poll_event()).find_map(|e| match e {
                Event::Closed(r) => Some(r),
                _ => None,
            });
        }
        closed
    }

    /// Mirrors the lifecycle into the shared status and emits an event per change of phase.
    fn publish(&self, last: DeviceStatus) -> DeviceStatus {
        let state = self.lifecycle.phase();
        let reason = self.lifecycle.reason().map(Reason::of);
        self.shared.update(|s| {
            s.state = state;
            s.reason = reason.clone();
            if state != DeviceState::Pairing {
                s.qr = None;
                s.pair_code = None;
            }
        });
        let now = self.shared.snapshot();
        if now.state != last.state || (now.reason != last.reason && now.reason.is_some()) {
            if let Some(ev) = transition_event(last.state, &now) {
                self.shared.emit(ev);
            }
        }
        now
    }

    fn log_close(&self, reason: &CloseReason) {
        let (device, code) = (self.id.get(), reason.code());
        match reason.next_step() {
            NextStep::Fault | NextStep::LoggedOut => {
                tracing::warn!(device, code, reason = %reason, "connection closed");
            }
            NextStep::Stop if !matches!(reason, CloseReason::Local) => {
                tracing::warn!(device, code, reason = %reason, "connection closed");
            }
            _ => tracing::info!(device, code, reason = %reason, "connection closed"),
        }
    }

    /// New keys and no pairing, durably.
    async fn wipe(&self) -> Result<(), wuts_store::Error> {
        let (store, id) = (self.store.clone(), self.id);
        blocking(move || jobs::reset(store.as_ref(), id)).await
    }

    /// Closes the connection cleanly and ends the task.
    async fn stop(self, live: Option<Live>, done: Option<oneshot::Sender<()>>) {
        if let Some(mut l) = live {
            l.conn.close(Duration::ZERO, CloseReason::Local);
            while let Some(bytes) = l.conn.poll_transmit() {
                let _ = l.socket.send(Message::Binary(bytes.into())).await;
            }
            let _ = l.socket.close(None).await;
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}
