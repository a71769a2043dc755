//! The task that owns one device: its engine connection and its websocket, one at a time. It
//! reconnects on 515 at once, backs off on 503 and lost links, wipes a logged-out device and
//! never fights a replacing session. Commands arrive over a bounded channel; results leave
//! through oneshots and a broadcast of [`DeviceEvent`]s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use wuts_store::{DeviceId, Store};

use super::api::{DeviceEvent, DeviceState, DeviceStatus, Error, QrCode};
use super::transport::{self, Socket};
use crate::binary::{Jid, Node, jid};
use crate::engine::{
    Backoff, CloseReason, Connection, EngineConfig, Event, IqError, IqId, IqRequest, NextStep,
};

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
    /// Reconnect backoff: first delay and cap.
    pub backoff: (Duration, Duration),
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ws_url: "wss://web.whatsapp.com/ws/chat".into(),
            origin: "https://web.whatsapp.com".into(),
            engine: Arc::new(EngineConfig::default()),
            connect_timeout: Duration::from_secs(20),
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}

pub(super) enum Command {
    Pair(oneshot::Sender<Result<(), Error>>),
    Iq(IqRequest, oneshot::Sender<Result<Node, Error>>),
    Logout(oneshot::Sender<Result<(), Error>>),
    Shutdown(oneshot::Sender<()>),
}

/// State the handle reads without asking the task.
pub(super) struct Shared {
    pub(super) status: Mutex<DeviceStatus>,
    pub(super) events: broadcast::Sender<DeviceEvent>,
}

impl Shared {
    pub(super) fn new(state: DeviceState, jid: Option<Jid>) -> Self {
        Shared {
            status: Mutex::new(DeviceStatus {
                state,
                jid,
                qr: None,
            }),
            events: broadcast::channel(64).0,
        }
    }

    fn update(&self, f: impl FnOnce(&mut DeviceStatus)) {
        // A poisoned lock only means another thread panicked mid-update; the status is
        // still a plain value worth showing.
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    fn set_state(&self, state: DeviceState) {
        self.update(|s| {
            s.state = state;
            if state != DeviceState::Pairing {
                s.qr = None;
            }
        });
    }

    fn emit(&self, ev: DeviceEvent) {
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
    pub(super) reconnects: Arc<std::sync::atomic::AtomicU64>,
    pub(super) logged_in_before: bool,
}

/// How one connection ended, from the driver's side.
enum Ended {
    Closed(CloseReason),
    Shutdown(oneshot::Sender<()>),
    Logout(oneshot::Sender<Result<(), Error>>),
}

/// What to do after waiting.
enum Flow {
    Go,
    Exit,
    Logout(oneshot::Sender<Result<(), Error>>),
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Driver {
    pub(super) async fn run(mut self) {
        let base = Instant::now();
        let mut rng = StdRng::from_entropy();
        let (b0, b1) = self.config.backoff;
        let mut backoff = Backoff::new(b0, b1);
        let mut want_pairing = false;
        loop {
            let record = match self.store.load_device(self.id) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(device = self.id.get(), error = %e, "cannot load device");
                    self.shared.set_state(DeviceState::Disconnected);
                    return self.idle(Error::Store(e)).await;
                }
            };
            let paired = record.paired.is_some();
            if !paired && !want_pairing {
                self.shared.set_state(DeviceState::Unpaired);
                match self.commands.recv().await {
                    None => return,
                    Some(Command::Shutdown(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::Pair(reply)) => {
                        want_pairing = true;
                        let _ = reply.send(Ok(()));
                    }
                    Some(Command::Iq(_, reply)) => {
                        let _ = reply.send(Err(Error::NotPaired));
                    }
                    Some(Command::Logout(reply)) => {
                        return self.wipe(reply, "deleted").await;
                    }
                }
                continue;
            }
            self.shared.set_state(if paired {
                DeviceState::Connecting
            } else {
                DeviceState::Pairing
            });

            let socket = {
                // A bounded number of devices connect at once, so a restart of thousands of
                // devices is a steady stream rather than a stampede.
                let _slot = self.connect_slots.clone().acquire_owned().await;
                let c = &self.config;
                transport::connect(&c.ws_url, &c.origin, c.connect_timeout).await
            };
            let ended = match socket {
                Ok(socket) => {
                    let mut seed = [0u8; 32];
                    rng.fill(&mut seed);
                    let now = base.elapsed();
                    match Connection::new(
                        record,
                        self.store.clone(),
                        self.config.engine.clone(),
                        now,
                        unix_now(),
                        seed,
                    ) {
                        Ok(conn) => self.drive(conn, socket, base, &mut backoff).await,
                        Err(e) => Ended::Closed(CloseReason::Handshake(e.to_string())),
                    }
                }
                Err(e) => {
                    tracing::warn!(device = self.id.get(), error = %e, "connect failed");
                    Ended::Closed(CloseReason::ServerClosed)
                }
            };
            let reason = match ended {
                Ended::Shutdown(done) => {
                    let _ = done.send(());
                    return;
                }
                Ended::Logout(reply) => return self.wipe(reply, "logged out").await,
                Ended::Closed(reason) => reason,
            };
            tracing::info!(device = self.id.get(), ?reason, "connection closed");
            match reason.next_step() {
                NextStep::ReconnectNow => continue,
                NextStep::LoggedOut => {
                    let (tx, _) = oneshot::channel();
                    return self.wipe(tx, &format!("{reason:?}")).await;
                }
                NextStep::Stop => {
                    match &reason {
                        CloseReason::PairingTimedOut => {
                            want_pairing = false;
                            self.shared.emit(DeviceEvent::PairingTimedOut);
                        }
                        CloseReason::PairingFailed(_) => {
                            want_pairing = false;
                            self.shared.emit(DeviceEvent::Disconnected {
                                reason: format!("{reason:?}"),
                            });
                        }
                        _ => {
                            self.shared.set_state(DeviceState::Disconnected);
                            self.shared.emit(DeviceEvent::Disconnected {
                                reason: format!("{reason:?}"),
                            });
                            if paired {
                                // Replaced or refused: do not fight; wait for a command.
                                match self.wait_for_pair().await {
                                    Flow::Go => {}
                                    Flow::Exit => return,
                                    Flow::Logout(reply) => {
                                        return self.wipe(reply, "deleted").await;
                                    }
                                }
                            }
                        }
                    }
                    continue;
                }
                NextStep::Backoff => {
                    if self
                        .store
                        .load_device(self.id)
                        .is_ok_and(|r| r.paired.is_some())
                    {
                        self.shared.set_state(DeviceState::Disconnected);
                        self.shared.emit(DeviceEvent::Disconnected {
                            reason: format!("{reason:?}"),
                        });
                    }
                    let delay = backoff.next_delay(rng.r#gen());
                    match self.sleep_serving(delay).await {
                        Flow::Go => {}
                        Flow::Exit => return,
                        Flow::Logout(reply) => return self.wipe(reply, "deleted").await,
                    }
                }
            }
        }
    }

    /// Runs one connection until it ends.
    async fn drive(
        &mut self,
        mut conn: Connection,
        mut socket: Socket,
        base: Instant,
        backoff: &mut Backoff,
    ) -> Ended {
        let mut waiting: HashMap<IqId, oneshot::Sender<Result<Node, Error>>> = HashMap::new();
        let mut next_id = 0u64;
        let mut pending_exit: Option<Ended> = None;
        loop {
            let mut closed = None;
            while let Some(ev) = conn.poll_event() {
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
                        self.shared.update(|s| {
                            s.state = DeviceState::Pairing;
                            s.qr = Some(qr.clone());
                        });
                        self.shared.emit(DeviceEvent::Qr(qr));
                    }
                    Event::Paired {
                        jid,
                        platform,
                        business_name,
                    } => {
                        self.shared.update(|s| {
                            s.jid = Some(jid.clone());
                            s.qr = None;
                            s.state = DeviceState::Connecting;
                        });
                        self.shared.emit(DeviceEvent::Paired {
                            jid,
                            business_name,
                            platform,
                        });
                    }
                    Event::LoggedIn { .. } => {
                        if self.logged_in_before {
                            self.reconnects
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.logged_in_before = true;
                        backoff.reset();
                        self.shared.set_state(DeviceState::Connected);
                        self.shared.emit(DeviceEvent::Connected);
                    }
                    Event::IqDone { id, result } => {
                        if let Some(tx) = waiting.remove(&id) {
                            let _ = tx.send(result.map_err(|e| iq_error(e, &conn)));
                        }
                    }
                    Event::Closed(reason) => closed = Some(reason),
                }
            }
            while let Some(bytes) = conn.poll_transmit() {
                if socket.send(Message::Binary(bytes.into())).await.is_err() {
                    conn.handle_eof(base.elapsed());
                    break;
                }
            }
            if let Some(reason) = closed {
                let _ = socket.close(None).await;
                return pending_exit.unwrap_or(Ended::Closed(reason));
            }
            let deadline = conn.poll_timeout().map(|d| base + d);
            tokio::select! {
                msg = socket.next() => match msg {
                    Some(Ok(Message::Binary(b))) => conn.handle_bytes(base.elapsed(), &b),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        conn.handle_eof(base.elapsed());
                    }
                    Some(Ok(_)) => {}
                },
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Iq(req, reply)) => {
                        next_id += 1;
                        waiting.insert(IqId(next_id), reply);
                        conn.send_iq(base.elapsed(), IqId(next_id), req);
                    }
                    Some(Command::Pair(reply)) => {
                        let _ = reply.send(if conn.is_logged_in() {
                            Err(Error::Invalid("device is already paired".into()))
                        } else {
                            Ok(())
                        });
                    }
                    Some(Command::Logout(reply)) => {
                        if conn.is_logged_in() {
                            // Tell WhatsApp first, best effort (whatsmeow `Logout`).
                            next_id += 1;
                            let (tx, _rx) = oneshot::channel();
                            waiting.insert(IqId(next_id), tx);
                            conn.send_iq(base.elapsed(), IqId(next_id), remove_companion(&self.shared));
                        }
                        while let Some(bytes) = conn.poll_transmit() {
                            let _ = socket.send(Message::Binary(bytes.into())).await;
                        }
                        pending_exit = Some(Ended::Logout(reply));
                        conn.close(base.elapsed(), CloseReason::Local);
                    }
                    Some(Command::Shutdown(done)) => {
                        pending_exit = Some(Ended::Shutdown(done));
                        conn.close(base.elapsed(), CloseReason::Local);
                    }
                    None => conn.close(base.elapsed(), CloseReason::Local),
                },
                _ = sleep_until_opt(deadline) => conn.handle_timeout(base.elapsed()),
            }
        }
    }

    /// Sleeps `delay` while answering commands.
    async fn sleep_serving(&mut self, delay: Duration) -> Flow {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Flow::Go,
                cmd = self.commands.recv() => match cmd {
                    None => return Flow::Exit,
                    Some(Command::Shutdown(done)) => { let _ = done.send(()); return Flow::Exit; }
                    Some(Command::Iq(_, reply)) => { let _ = reply.send(Err(Error::NotConnected)); }
                    Some(Command::Pair(reply)) => {
                        let _ = reply.send(Err(Error::Invalid("device is already paired".into())));
                    }
                    Some(Command::Logout(reply)) => return Flow::Logout(reply),
                },
            }
        }
    }

    /// After a refused or replaced session: waits for `pair` (reconnect) or shutdown.
    async fn wait_for_pair(&mut self) -> Flow {
        loop {
            match self.commands.recv().await {
                None => return Flow::Exit,
                Some(Command::Shutdown(done)) => {
                    let _ = done.send(());
                    return Flow::Exit;
                }
                Some(Command::Pair(reply)) => {
                    let _ = reply.send(Ok(()));
                    return Flow::Go;
                }
                Some(Command::Iq(_, reply)) => {
                    let _ = reply.send(Err(Error::NotConnected));
                }
                Some(Command::Logout(reply)) => return Flow::Logout(reply),
            }
        }
    }

    /// Logged out: wipe the keys, say so, and answer commands until shutdown.
    async fn wipe(self, reply: oneshot::Sender<Result<(), Error>>, reason: &str) {
        let r = self.store.remove_device(self.id).map(|_| ());
        self.shared.update(|s| {
            s.state = DeviceState::LoggedOut;
            s.qr = None;
        });
        self.shared.emit(DeviceEvent::LoggedOut {
            reason: reason.to_owned(),
        });
        let _ = reply.send(r.map_err(Error::Store));
        self.idle(Error::NotPaired).await;
    }

    async fn idle(mut self, err: Error) {
        let text = err.to_string();
        while let Some(cmd) = self.commands.recv().await {
            match cmd {
                Command::Shutdown(done) => {
                    let _ = done.send(());
                    return;
                }
                Command::Iq(_, reply) => {
                    let _ = reply.send(Err(Error::NotPaired));
                }
                Command::Pair(reply) => {
                    let _ = reply.send(Err(Error::Invalid(text.clone())));
                }
                Command::Logout(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn iq_error(e: IqError, conn: &Connection) -> Error {
    match e {
        IqError::Rejected { code, text } => Error::Rejected { code, text },
        IqError::Timeout => Error::Timeout(Duration::ZERO),
        IqError::Disconnected if conn.is_closed() => Error::NotConnected,
        IqError::Disconnected => Error::NotConnected,
    }
}

/// `remove-companion-device`: tells WhatsApp this companion logs out (whatsmeow `Logout`).
fn remove_companion(shared: &Shared) -> IqRequest {
    let own = shared
        .status
        .lock()
        .map(|s| s.jid.clone())
        .unwrap_or_else(|p| p.into_inner().jid.clone());
    let mut node = Node::new("remove-companion-device").with_attr("reason", "user_initiated");
    if let Some(j) = own {
        node = node.with_attr("jid", j);
    }
    IqRequest {
        xmlns: "md",
        kind: "set",
        to: Jid::server_only(jid::SERVER_PN),
        children: vec![node],
        timeout: Some(Duration::from_secs(5)),
    }
}
