//! One websocket connection, from the intro header to the close: the Noise handshake as
//! responder, the `ClientPayload` decision (register or log in), then stanzas both ways.
//!
//! The task owns the socket, the transport ciphers and the pairing in progress. Others reach
//! it through [`Command`]s on its channel (pair-success to send, faults, a replaced session);
//! `Command` lives in `state`, beside the connection table, so this module is not imported
//! back by the operations that send it.
//! A failed decrypt, bad framing or an undecodable stanza ends the connection, as on the real
//! server.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use super::codes::FinishOutcome;
use super::keys;
use super::model::{PairedDevice, SimEvent, StreamError};
use super::offline;
use super::paircode;
use super::pairing::{self, PairingError, PendingSign};
use super::payload::{self, Hello, Registration};
use super::session;
use super::shared::{Shared, unix_now};
use super::stanzas;
use super::state::{CodeWait, Command, ConnId, Device, IqAction};
use crate::binary::{self, Node};
use crate::noise::{self, FrameDecoder, FrameError, RecvCipher, Responder, SecretKey, SendCipher};

/// Commands queued per connection; a full queue makes senders wait (backpressure).
const COMMAND_QUEUE: usize = 32;

/// Why a connection ended early.
#[derive(Debug, Error)]
enum ConnError {
    #[error("websocket: {0}")]
    Ws(#[from] axum::Error),
    #[error("noise: {0}")]
    Noise(#[from] noise::Error),
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    #[error("stanza: {0}")]
    Stanza(#[from] binary::Error),
    #[error("client closed the connection")]
    Closed,
    #[error("client sent a text message")]
    Text,
    #[error("handshake timed out")]
    HandshakeTimeout,
}

/// Serves one upgraded websocket until it closes.
pub(crate) async fn serve(
    shared: std::sync::Arc<Shared>,
    ws: WebSocket,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let id = shared.next_conn_id();
    let result = tokio::select! {
        r = run(&shared, id, ws) => r,
        _ = stop.wait_for(|s| *s) => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(conn = id, error = %e, "connection ended");
    }
    shared.unregister(id);
}

/// The encrypted stanza channel after the handshake.
struct Link {
    ws: WebSocket,
    frames: FrameDecoder,
    send: SendCipher,
    recv: RecvCipher,
}

impl Link {
    async fn send(&mut self, node: &Node) -> Result<(), ConnError> {
        tracing::trace!(stanza = %node, "send");
        let mut plain = Vec::with_capacity(128);
        binary::encode(node, &mut plain)?;
        let mut out = Vec::with_capacity(plain.len() + 19);
        self.send.seal_frame(&plain, &mut out)?;
        self.ws.send(Message::Binary(out.into())).await?;
        Ok(())
    }

    /// The next complete stanza already received, if any.
    fn next_node(&mut self) -> Result<Option<Node>, ConnError> {
        let Some(frame) = self.frames.next_frame()? else {
            return Ok(None);
        };
        let plain = self.recv.open_in_place(frame)?;
        let node = binary::decode_owned(plain)?;
        tracing::trace!(stanza = %node, "recv");
        Ok(Some(node))
    }

    /// Sends a closing stanza (if any) and a close frame.
    async fn close(mut self, last: Option<Node>) -> Result<(), ConnError> {
        if let Some(node) = last {
            self.send(&node).await?;
        }
        self.ws.send(Message::Close(None)).await?;
        Ok(())
    }
}

/// Reads websocket messages into `frames` until one frame is complete; returns a copy.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn read_frame(ws: &mut WebSocket, frames: &mut FrameDecoder) -> Result<Vec<u8>, ConnError> {
    loop {
        if let Some(f) = frames.next_frame()? {
            return Ok(f.to_vec());
        }
        match ws.recv().await {
            Some(Ok(Message::Binary(b))) => frames.feed(&b),
            Some(Ok(Message::Text(_))) => return Err(ConnError::Text),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => return Err(ConnError::Closed),
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

async fn run(shared: &Shared, id: ConnId, mut ws: WebSocket) -> Result<(), ConnError> {
    let mut frames = FrameDecoder::expecting_intro();
    let deadline = Instant::now() + shared.timing.handshake;
    // From the seed when there is one, so a seeded sandbox's server hello is reproducible.
    let ephemeral = SecretKey::generate(&mut keys::conn_rng(shared.lock().seed, id));
    let handshake = async {
        let hello = read_frame(&mut ws, &mut frames).await?;
        let responder = Responder::new(shared.identity.clone());
        let (awaiting, reply) = responder.read_client_hello(&hello, ephemeral)?;
        ws.send(Message::Binary(reply.into())).await?;
        let finish = read_frame(&mut ws, &mut frames).await?;
        Ok::<_, ConnError>(awaiting.read_client_finish(&finish)?)
    };
    let established = tokio::time::timeout_at(deadline, handshake)
        .await
        .map_err(|_| ConnError::HandshakeTimeout)??;
    let (send, recv) = established.transport.split();
    let presented = frames.routing_info().map(<[u8]>::to_vec);
    let mut link = Link {
        ws,
        frames,
        send,
        recv,
    };
    let noise_key = established.client_static;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    match payload::read(&established.client_payload) {
        Err(reason) => link.close(Some(stanzas::failure(reason))).await,
        Ok(Hello::Register(reg)) => {
            let (iq_id, refs) = shared.begin_registration(id, tx.clone(), noise_key, reg.clone());
            link.send(&stanzas::pair_device(&iq_id, &refs)).await?;
            shared.emit(SimEvent::PairingOffered { refs });
            let conn = Conn {
                shared,
                link,
                rx,
                tx,
                id,
                mode: Mode::Registering {
                    registration: reg,
                    started: Instant::now(),
                    pending: None,
                    code_until: None,
                    code_wait: None,
                },
            };
            conn.run().await
        }
        Ok(Hello::Login {
            user,
            device,
            login_count,
            ..
        }) => match shared.login(id, tx.clone(), noise_key, &user, device) {
            Err(reason) => link.close(Some(stanzas::failure(reason))).await,
            Ok(ok) => {
                if let Some(old) = ok.replaced {
                    let node = stanzas::stream_error(StreamError::Replaced);
                    let _ = old.send(Command::Close(Some(node))).await;
                }
                link.send(&ok.success).await?;
                let routing = shared.edge_routing(&ok.jid, presented);
                shared
                    .lock()
                    .login_counts
                    .entry(ok.jid.clone())
                    .or_default()
                    .push(login_count);
                link.send(&stanzas::edge_routing(&routing)).await?;
                shared.emit(SimEvent::LoggedIn {
                    jid: ok.jid.clone(),
                });
                let conn = Conn {
                    shared,
                    link,
                    rx,
                    tx,
                    id,
                    mode: Mode::LoggedIn {
                        jid: ok.jid,
                        ping: ServerPing {
                            next: Instant::now() + shared.timing.server_ping.0,
                            waiting: None,
                        },
                    },
                };
                conn.run().await
            }
        },
    }
}

/// What the connection is doing after the handshake.
enum Mode {
    Registering {
        registration: Registration,
        /// When `pair-device` was sent: the refs' schedule runs from here.
        started: Instant,
        pending: Option<Box<Pending>>,
        /// While a pairing code it asked for is valid, the connection stays open.
        code_until: Option<Instant>,
        /// The phone's hello sent for a typed code, waiting for the companion's finish.
        code_wait: Option<Box<CodeWait>>,
    },
    LoggedIn {
        jid: String,
        ping: ServerPing,
    },
}

/// The server's pings of a logged-in device: when the next goes out, and the one waiting for
/// its answer (id, deadline).
struct ServerPing {
    next: Instant,
    waiting: Option<(String, Instant)>,
}

/// A `pair-success` sent and not yet answered.
struct Pending {
    sign: PendingSign,
    draft: Box<Device>,
    reply: oneshot::Sender<Result<PairedDevice, PairingError>>,
}

/// Whether to keep serving after a stanza or command.
enum Flow {
    Continue,
    /// Close cleanly after sending this stanza, if any.
    Close(Option<Node>),
    /// Close abruptly.
    Drop,
}

struct Conn<'a> {
    shared: &'a Shared,
    link: Link,
    rx: mpsc::Receiver<Command>,
    /// Our own sender, for replies delivered late by the delay fault.
    tx: mpsc::Sender<Command>,
    id: ConnId,
    mode: Mode,
}

impl Conn<'_> {
    async fn run(mut self) -> Result<(), ConnError> {
        let mut deadline = self.deadline();
        loop {
            while let Some(node) = self.link.next_node()? {
                deadline = self.deadline();
                match self.on_stanza(node).await? {
                    Flow::Continue => {}
                    Flow::Close(last) => return self.link.close(last).await,
                    Flow::Drop => return Ok(()),
                }
            }
            let ping_at = self.ping_at();
            let flow = tokio::select! {
                msg = self.link.ws.recv() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        self.link.frames.feed(&b);
                        Flow::Continue
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Text(_))) => return Err(ConnError::Text),
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                },
                Some(cmd) = self.rx.recv() => {
                    let flow = self.on_command(cmd).await?;
                    // A pairing that started changes a registering connection's deadline; a
                    // logged-in one only counts the client's own traffic.
                    if matches!(self.mode, Mode::Registering { .. }) {
                        deadline = self.deadline();
                    }
                    flow
                }
                () = sleep_until(deadline) => {
                    tracing::debug!("connection idle or pairing window over; closing");
                    Flow::Close(None)
                }
                () = sleep_until_opt(ping_at) => self.on_ping_timer().await?,
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(last) => return self.link.close(last).await,
                Flow::Drop => return Ok(()),
            }
        }
    }

    /// When the server's ping timer fires next: the answer's deadline while one is awaited,
    /// else the next ping.
    fn ping_at(&self) -> Option<Instant> {
        match &self.mode {
            Mode::LoggedIn { ping, .. } => Some(ping.waiting.as_ref().map_or(ping.next, |w| w.1)),
            Mode::Registering { .. } => None,
        }
    }

    /// Sends the next ping, or drops a device that left the last one unanswered.
    async fn on_ping_timer(&mut self) -> Result<Flow, ConnError> {
        let Mode::LoggedIn { ping, jid } = &mut self.mode else {
            return Ok(Flow::Continue);
        };
        if ping.waiting.is_some() {
            tracing::info!(%jid, "server ping unanswered; dropping the connection");
            return Ok(Flow::Drop);
        }
        let id = self.shared.lock().next_iq_id();
        let (every, answer_within) = self.shared.timing.server_ping;
        let now = Instant::now();
        ping.waiting = Some((id.clone(), now + answer_within));
        ping.next = now + every;
        self.link.send(&stanzas::server_ping(&id)).await?;
        Ok(Flow::Continue)
    }

    /// When the connection is closed for silence: logged in, after the idle limit; while
    /// registering, when the last ref has expired (plus one ref period of grace, or the reply
    /// window while a pairing is in progress).
    fn deadline(&self) -> Instant {
        let t = &self.shared.timing;
        match &self.mode {
            Mode::LoggedIn { .. } => Instant::now() + t.idle,
            Mode::Registering {
                pending: Some(_), ..
            } => Instant::now() + t.pair_reply,
            Mode::Registering {
                started,
                pending: None,
                code_until,
                ..
            } => {
                let last = t.ref_expiry(t.ref_count.saturating_sub(1));
                let refs = *started + last + t.next_ref;
                code_until.map_or(refs, |c| refs.max(c))
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) -> Result<Flow, ConnError> {
        match cmd {
            Command::Send(node) => {
                self.link.send(&node).await?;
                Ok(Flow::Continue)
            }
            Command::Close(last) => Ok(Flow::Close(last)),
            Command::Drop => Ok(Flow::Drop),
            Command::CodeHello { node, wait } => {
                let Mode::Registering { code_wait, .. } = &mut self.mode else {
                    let _ = wait.reply.send(Err(PairingError::ConnectionClosed));
                    return Ok(Flow::Continue);
                };
                *code_wait = Some(wait);
                self.link.send(&node).await?;
                Ok(Flow::Continue)
            }
            Command::Pair {
                node,
                pending,
                draft,
                reply,
            } => {
                let Mode::Registering { pending: slot, .. } = &mut self.mode else {
                    let _ = reply.send(Err(PairingError::UnknownRef));
                    return Ok(Flow::Continue);
                };
                self.link.send(&node).await?;
                *slot = Some(Box::new(Pending {
                    sign: pending,
                    draft,
                    reply,
                }));
                Ok(Flow::Continue)
            }
        }
    }

    async fn on_stanza(&mut self, node: Node) -> Result<Flow, ConnError> {
        if node.tag == "xmlstreamend" {
            return Ok(Flow::Close(None));
        }
        if let (true, Mode::LoggedIn { jid, .. }) = (node.tag == "ib", &self.mode) {
            for out in offline::on_ib(self.shared, jid, &node) {
                self.link.send(&out).await?;
            }
        }
        if node.tag != "iq" {
            // Acks, receipts, presence and telemetry (<ib><unified_session/>) need no answer.
            return Ok(Flow::Continue);
        }
        let ty = stanzas::attr(&node, "type").unwrap_or_default();
        let id = stanzas::attr(&node, "id").unwrap_or_default();
        let registering = matches!(self.mode, Mode::Registering { .. });
        if registering && ty == "set" && paircode::stage(&node).is_some() {
            return self.on_link_code(&node, &id).await;
        }
        match &mut self.mode {
            Mode::Registering {
                pending,
                registration,
                ..
            } => {
                if ty == "result" || ty == "error" {
                    let answers_pairing = pending.as_ref().is_some_and(|p| p.sign.iq_id == id);
                    if let Some(p) = pending.take_if(|_| answers_pairing) {
                        let identity = registration.identity;
                        return Ok(self.finish_pairing(*p, &node, identity));
                    }
                    // The acknowledgement of pair-device, or of nothing we track.
                    return Ok(Flow::Continue);
                }
                let reply = match stanzas::attr(&node, "xmlns").as_deref() {
                    Some("w:p") => stanzas::pong(&id, unix_now()),
                    Some("md") => stanzas::iq_error(
                        &id,
                        stanzas::server_jid(),
                        stanzas::IqError::NOT_IMPLEMENTED,
                    ),
                    _ => stanzas::iq_error(
                        &id,
                        stanzas::server_jid(),
                        stanzas::IqError::NOT_AUTHORIZED,
                    ),
                };
                self.link.send(&reply).await?;
                Ok(Flow::Continue)
            }
            Mode::LoggedIn { jid, ping } => {
                if ty != "get" && ty != "set" {
                    let answers_ping = ping.waiting.as_ref().is_some_and(|(p, _)| *p == id);
                    if answers_ping && ty == "result" {
                        ping.waiting = None;
                        *self.shared.lock().pongs.entry(jid.clone()).or_default() += 1;
                    }
                    return Ok(Flow::Continue);
                }
                let jid = jid.clone();
                let replies = session::handle_iq(self.shared, &jid, &node, unix_now());
                let xmlns = stanzas::attr(&node, "xmlns");
                let action = self.shared.lock().faults.iq_action(&jid, xmlns.as_deref());
                match action {
                    None => {
                        for r in &replies {
                            self.link.send(r).await?;
                        }
                    }
                    Some(IqAction::Withhold) => {
                        tracing::debug!(%jid, id, "withholding IQ reply (fault)");
                    }
                    Some(IqAction::Delay(d)) => self.send_later(d, replies),
                }
                Ok(Flow::Continue)
            }
        }
    }

    /// The companion's side of pairing by code: its hello registers a code; its finish is
    /// acknowledged, then checked against the phone's hello (a wrong code leaves the
    /// connection waiting for another try; a right one is answered with `pair-success`).
    async fn on_link_code(&mut self, node: &Node, id: &str) -> Result<Flow, ConnError> {
        let Some((stage, reg)) = paircode::stage(node) else {
            return Ok(Flow::Continue);
        };
        let Mode::Registering {
            pending,
            code_until,
            code_wait,
            ..
        } = &mut self.mode
        else {
            return Ok(Flow::Continue);
        };
        match stage.as_str() {
            "companion_hello" => {
                let registered = paircode::read_hello(reg)
                    .and_then(|hello| self.shared.register_code(self.id, hello));
                let reply = match registered {
                    Ok((reference, until)) => {
                        *code_until = Some(until);
                        paircode::hello_result(id, &reference)
                    }
                    Err(part) => {
                        tracing::info!(part, "companion_hello refused");
                        let bad = stanzas::IqError::BAD_REQUEST;
                        stanzas::iq_error(id, stanzas::server_jid(), bad)
                    }
                };
                self.link.send(&reply).await?;
            }
            "companion_finish" => {
                let finish = paircode::read_finish(reg);
                let outcome = self.shared.code_finished(self.id, code_wait.take(), finish);
                let ack = stanzas::iq_result(id, stanzas::server_jid(), Vec::new());
                if let FinishOutcome::PairSuccess(success) = outcome {
                    let success = *success;
                    *pending = Some(Box::new(Pending {
                        sign: success.pending,
                        draft: success.draft,
                        reply: success.reply,
                    }));
                    self.link.send(&ack).await?;
                    self.link.send(&success.node).await?;
                } else {
                    self.link.send(&ack).await?;
                }
            }
            _ => {
                let reply =
                    stanzas::iq_error(id, stanzas::server_jid(), stanzas::IqError::NOT_IMPLEMENTED);
                self.link.send(&reply).await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Checks the companion's answer to pair-success. Verified: the device is registered, the
    /// client is told to restart (515) and the connection closes. Anything else fails the
    /// pairing and closes the connection, as the real phone gives up.
    fn finish_pairing(&self, p: Pending, reply: &Node, identity: noise::PublicKey) -> Flow {
        if p.reply.is_closed() {
            // The scan gave up waiting; the pairing is abandoned.
            return Flow::Close(None);
        }
        let outcome = pairing::verify_sign(&p.sign, reply);
        match outcome {
            Ok(signed_identity) => {
                let device = Device {
                    signed_identity,
                    identity_key: identity,
                    ..*p.draft
                };
                let paired = self.shared.finish_pairing(device);
                let _ = p.reply.send(Ok(paired));
                Flow::Close(Some(stanzas::stream_error(StreamError::RestartRequired)))
            }
            Err(e) => {
                tracing::info!(error = %e, "pairing failed");
                let _ = p.reply.send(Err(e));
                Flow::Close(None)
            }
        }
    }

    fn send_later(&self, delay: Duration, replies: Vec<Node>) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for r in replies {
                if tx.send(Command::Send(r)).await.is_err() {
                    return;
                }
            }
        });
    }
}
