//! One connection of one device: the Noise handshake, then stanzas, until it closes.
//!
//! Storage: the connection reads and writes through the synchronous store traits (pairing
//! results in one flushed transaction before `Paired` is reported or the phone is answered;
//! pre-keys before they are uploaded). sled is synchronous and fast, and tests run the same
//! code over `MemStore`, so this replaces "persist" intents without losing replayability.
//!
//! Call order for a driver (quinn-proto's): after every `handle_*` or `send_iq`, drain
//! [`Connection::poll_event`], then [`Connection::poll_transmit`], then re-arm the timer from
//! [`Connection::poll_timeout`]. Events never depend on transmits having been sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use wuts_store::{self as store, DeviceId, Store};

use super::config::EngineConfig;
use super::event::{Event, IqRequest};
use super::iq::{Internal, IqError, IqId, IqTable, Waiter};
use super::pair::{self, PairError};
use super::payload;
use super::{CloseReason, Error};
use super::{keys, prekeys};
use crate::binary::{self, AttrValue, Jid, Node, jid};
use crate::noise::{FrameDecoder, Initiator, InitiatorConfig, RecvCipher, SendCipher};

enum Phase {
    Handshake(Option<Box<Initiator>>),
    Open(Box<Open>),
    Closed,
}

struct Open {
    send: SendCipher,
    recv: RecvCipher,
    logged_in: bool,
}

struct Qr {
    refs: VecDeque<String>,
    first: bool,
    next_at: Duration,
}

/// One websocket connection's protocol state.
pub struct Connection {
    device: DeviceId,
    store: Arc<dyn Store>,
    keys: store::DeviceKeys,
    paired: Option<store::PairedIdentity>,
    config: Arc<EngineConfig>,
    rng: StdRng,
    phase: Phase,
    decoder: FrameDecoder,
    iq: IqTable,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    start: Duration,
    unix_start: u64,
    setup_deadline: Option<Duration>,
    next_ping: Option<Duration>,
    qr: Option<Qr>,
}

impl Connection {
    /// Starts a connection for a stored device: queues the intro and client hello. `now` is
    /// the driver's monotonic clock, `unix_now` wall time for certificates and QR expiry, `seed`
    /// fresh randomness for the ephemeral key, ids, jitter and signatures.
    pub fn new(
        record: store::DeviceRecord,
        store: Arc<dyn Store>,
        config: Arc<EngineConfig>,
        now: Duration,
        unix_now: u64,
        seed: [u8; 32],
    ) -> Result<Self, Error> {
        let mut rng = StdRng::from_seed(seed);
        let ephemeral = crate::noise::SecretKey::generate(&mut rng);
        let init = InitiatorConfig {
            static_keypair: keys::to_noise(&record.keys.noise),
            trusted_root: config.trusted_root,
            now: unix_now,
            routing_info: None,
        };
        let (initiator, hello) = Initiator::new(init, ephemeral)?;
        let iq = IqTable::new(rng.r#gen());
        Ok(Connection {
            device: record.id,
            store,
            keys: record.keys,
            paired: record.paired,
            phase: Phase::Handshake(Some(Box::new(initiator))),
            decoder: FrameDecoder::new(),
            iq,
            transmit: VecDeque::from([hello]),
            events: VecDeque::new(),
            start: now,
            unix_start: unix_now,
            setup_deadline: Some(now + config.setup_timeout),
            next_ping: None,
            qr: None,
            config,
            rng,
        })
    }

    /// Whether `success` arrived on this connection.
    pub fn is_logged_in(&self) -> bool {
        matches!(&self.phase, Phase::Open(o) if o.logged_in)
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Bytes to send, one websocket message each.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Connection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_closed() {
            return None;
        }
        [
            self.setup_deadline,
            self.next_ping,
            self.qr.as_ref().map(|q| q.next_at),
            self.iq.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn unix(&self, now: Duration) -> u64 {
        self.unix_start + now.saturating_sub(self.start).as_secs()
    }

    /// Bytes from the socket.
    pub fn handle_bytes(&mut self, now: Duration, data: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.decoder.feed(data);
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(f)) => f.to_vec(),
                Ok(None) => break,
                Err(e) => return self.close(now, CloseReason::Protocol(format!("framing: {e}"))),
            };
            if let Err(reason) = self.handle_frame(now, frame) {
                return self.close(now, reason);
            }
            if self.is_closed() {
                return;
            }
        }
    }

    /// The socket closed under us.
    pub fn handle_eof(&mut self, now: Duration) {
        self.close(now, CloseReason::ServerClosed);
    }

    /// Timers: setup deadline, keepalive, QR rotation, IQ deadlines.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_closed() {
            return;
        }
        if self.setup_deadline.is_some_and(|d| d <= now) {
            return self.close(now, CloseReason::SetupTimeout);
        }
        for w in self.iq.expire(now) {
            match w {
                Waiter::Caller(id) => self.events.push_back(Event::IqDone {
                    id,
                    result: Err(IqError::Timeout),
                }),
                Waiter::Internal(Internal::Ping) => {
                    return self.close(now, CloseReason::KeepaliveTimeout);
                }
                Waiter::Internal(_) => {}
            }
        }
        if self.qr.as_ref().is_some_and(|q| q.next_at <= now) {
            self.show_next_qr(now);
            if self.is_closed() {
                return;
            }
        }
        if self.next_ping.is_some_and(|p| p <= now) {
            self.next_ping = None;
            if !self.iq.has_internal(Internal::Ping) {
                let ping = Node::new("iq")
                    .with_attr("to", Jid::server_only(jid::SERVER_PN))
                    .with_attr("type", "get")
                    .with_attr("xmlns", "w:p");
                let deadline = now + self.config.keepalive_timeout;
                self.send_internal(now, ping, Internal::Ping, deadline);
            }
        }
    }

    /// Sends a caller's IQ. Refused (with an `IqDone` carrying `Disconnected`) unless logged in.
    pub fn send_iq(&mut self, now: Duration, id: IqId, req: IqRequest) {
        if !self.is_logged_in() {
            self.events.push_back(Event::IqDone {
                id,
                result: Err(IqError::Disconnected),
            });
            return;
        }
        let iq_id = self.iq.next_id();
        let node = Node::new("iq")
            .with_attr("id", iq_id.as_str())
            .with_attr("xmlns", req.xmlns)
            .with_attr("type", req.kind)
            .with_attr("to", req.to)
            .with_children(req.children);
        let deadline = now + req.timeout.unwrap_or(self.config.iq_timeout);
        self.iq.insert(iq_id, Waiter::Caller(id), deadline);
        self.send_node(now, &node);
    }

    /// Ends the connection from our side (shutdown, logout).
    pub fn close(&mut self, _now: Duration, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed;
        self.qr = None;
        for w in self.iq.drain() {
            if let Waiter::Caller(id) = w {
                self.events.push_back(Event::IqDone {
                    id,
                    result: Err(IqError::Disconnected),
                });
            }
        }
        self.events.push_back(Event::Closed(reason));
    }

    fn handle_frame(&mut self, now: Duration, mut frame: Vec<u8>) -> Result<(), CloseReason> {
        match &mut self.phase {
            Phase::Handshake(init) => {
                let init = init
                    .take()
                    .ok_or_else(|| CloseReason::Protocol("handshake state lost".into()))?;
                let server = init
                    .read_server_hello(&frame)
                    .map_err(|e| CloseReason::Handshake(e.to_string()))?;
                let payload = self.client_payload()?;
                let (transport, finish) = server
                    .finish(&payload)
                    .map_err(|e| CloseReason::Handshake(e.to_string()))?;
                let (send, recv) = transport.split();
                self.transmit.push_back(finish);
                self.phase = Phase::Open(Box::new(Open {
                    send,
                    recv,
                    logged_in: false,
                }));
                Ok(())
            }
            Phase::Open(open) => {
                let plain = open
                    .recv
                    .open_in_place(&mut frame)
                    .map_err(|e| CloseReason::Protocol(format!("transport: {e}")))?;
                let body = binary::unpack(plain, binary::DEFAULT_MAX_INFLATED)
                    .map_err(|e| CloseReason::Protocol(format!("frame: {e}")))?;
                let node = binary::Tree::decode(&body)
                    .map_err(|e| CloseReason::Protocol(format!("stanza: {e}")))?
                    .root()
                    .to_owned();
                self.dispatch(now, node);
                Ok(())
            }
            Phase::Closed => Ok(()),
        }
    }

    fn client_payload(&self) -> Result<Vec<u8>, CloseReason> {
        let v = self.config.version;
        match &self.paired {
            None => Ok(payload::registration(&self.keys, v, &self.config.os)),
            Some(p) => {
                let j: Jid = p
                    .jid
                    .parse()
                    .map_err(|_| CloseReason::Protocol("stored JID is malformed".into()))?;
                let user = j
                    .user
                    .parse()
                    .map_err(|_| CloseReason::Protocol("stored JID user is not a number".into()))?;
                Ok(payload::login(user, u32::from(j.device.unwrap_or(0)), v))
            }
        }
    }

    fn dispatch(&mut self, now: Duration, node: Node) {
        tracing::trace!(device = self.device.get(), stanza = %node, "recv");
        match node.tag.as_str() {
            "iq" => self.handle_iq(now, node),
            "success" => self.handle_success(now, &node),
            "failure" => {
                let reason = node
                    .attr("reason")
                    .and_then(|r| r.as_str().parse().ok())
                    .unwrap_or(0);
                self.close(now, CloseReason::LoginFailed(reason));
            }
            "stream:error" => {
                let reason = stream_error(&node);
                self.close(now, reason);
            }
            "xmlstreamend" => self.close(now, CloseReason::ServerClosed),
            "ack" => {
                if let Some((w, r)) = self.iq.complete(&node) {
                    self.finish_iq(now, w, r);
                }
            }
            "notification" => {
                self.ack(now, &node);
                self.handle_notification(now, &node);
            }
            "receipt" | "message" | "call" => self.ack(now, &node),
            _ => {}
        }
    }

    fn handle_iq(&mut self, now: Duration, node: Node) {
        let kind = node.attr("type").map(|t| t.as_str().into_owned());
        match kind.as_deref() {
            Some("result") | Some("error") => {
                if let Some((w, r)) = self.iq.complete(&node) {
                    self.finish_iq(now, w, r);
                }
            }
            Some("get") | Some("set") => {
                let xmlns = node.attr("xmlns").map(|x| x.as_str().into_owned());
                if node.child("pair-device").is_some() {
                    self.handle_pair_device(now, &node);
                } else if node.child("pair-success").is_some() {
                    self.handle_pair_success(now, &node);
                } else if xmlns.as_deref() == Some("urn:xmpp:ping") {
                    let reply = result_to(&node);
                    self.send_node(now, &reply);
                }
            }
            _ => {}
        }
    }

    fn handle_pair_device(&mut self, now: Duration, node: &Node) {
        if self.paired.is_some() {
            return;
        }
        self.setup_deadline = None;
        let reply = result_to(node);
        self.send_node(now, &reply);
        let refs: VecDeque<String> = node
            .child("pair-device")
            .map(|p| {
                p.children()
                    .iter()
                    .filter(|c| c.tag == "ref")
                    .filter_map(|c| c.content_bytes())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        self.qr = Some(Qr {
            refs,
            first: true,
            next_at: now,
        });
        self.show_next_qr(now);
    }

    fn show_next_qr(&mut self, now: Duration) {
        let Some(qr) = self.qr.as_mut() else { return };
        let Some(reference) = qr.refs.pop_front() else {
            return self.close(now, CloseReason::PairingTimedOut);
        };
        let ttl = if qr.first {
            self.config.qr_ttl.0
        } else {
            self.config.qr_ttl.1
        };
        qr.first = false;
        qr.next_at = now + ttl;
        let code = pair::qr_string(&reference, &self.keys);
        let expires_at = self.unix(now) + ttl.as_secs();
        self.events.push_back(Event::Qr {
            code,
            ttl,
            expires_at,
        });
    }

    fn handle_pair_success(&mut self, now: Duration, node: &Node) {
        self.qr = None;
        let mut z = [0u8; 64];
        self.rng.fill_bytes(&mut z);
        match pair::handle_pair_success(node, &self.keys, &z) {
            Ok(paired) => {
                // Saved and flushed before anyone hears of it, and before the phone does.
                if let Err(e) = self.store.save_pairing(self.device, &paired.identity) {
                    let err = PairError::Malformed("could not save the pairing");
                    let id = node.attr("id").map(AttrValue::as_str).unwrap_or_default();
                    let reply = pair::error_reply(&id, &err);
                    self.send_node(now, &reply);
                    return self.close(now, CloseReason::Store(e.to_string()));
                }
                let jid = paired
                    .identity
                    .jid
                    .parse()
                    .unwrap_or_else(|_| Jid::new("", ""));
                self.events.push_back(Event::Paired {
                    jid,
                    platform: paired.identity.platform.clone(),
                    business_name: paired.identity.business_name.clone(),
                });
                self.paired = Some(paired.identity);
                self.send_node(now, &paired.reply);
                // The server now ends the stream with 515; we wait for it.
                self.setup_deadline = Some(now + self.config.setup_timeout);
            }
            Err(err) => {
                let id = node.attr("id").map(AttrValue::as_str).unwrap_or_default();
                let reply = pair::error_reply(&id, &err);
                self.send_node(now, &reply);
                self.close(now, CloseReason::PairingFailed(err));
            }
        }
    }

    fn handle_success(&mut self, now: Duration, node: &Node) {
        if self.paired.is_none() {
            return; // whatsmeow ignores a success before pairing finished
        }
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        if open.logged_in {
            return;
        }
        open.logged_in = true;
        self.setup_deadline = None;
        let lid = node.attr("lid").and_then(AttrValue::to_jid);
        self.events.push_back(Event::LoggedIn { lid });
        let deadline = now + self.config.iq_timeout;
        let active = Node::new("iq")
            .with_attr("to", Jid::server_only(jid::SERVER_PN))
            .with_attr("type", "set")
            .with_attr("xmlns", "passive")
            .with_children(vec![Node::new("active")]);
        self.send_internal(now, active, Internal::Active, deadline);
        let count = Node::new("iq")
            .with_attr("to", Jid::server_only(jid::SERVER_PN))
            .with_attr("type", "get")
            .with_attr("xmlns", "encrypt")
            .with_children(vec![Node::new("count")]);
        self.send_internal(now, count, Internal::PreKeyCount, deadline);
        self.schedule_ping(now);
    }

    /// The server asks for pre-keys with `<notification type="encrypt"><count value=N/>` when
    /// its stock runs low (whatsmeow `handleEncryptNotification`).
    fn handle_notification(&mut self, now: Duration, node: &Node) {
        let is_encrypt = node.attr("type").is_some_and(|t| t.as_str() == "encrypt");
        let count = node
            .child("count")
            .and_then(|c| c.attr("value"))
            .and_then(|v| v.as_str().parse::<u32>().ok());
        if let (true, Some(count), true) = (is_encrypt, count, self.is_logged_in()) {
            if count < self.config.min_pre_keys && !self.iq.has_internal(Internal::PreKeyUpload) {
                if let Err(e) = self.upload_pre_keys(now, self.config.pre_key_batch.1) {
                    tracing::warn!(device = self.device.get(), error = %e, "pre-key upload");
                }
            }
        }
    }

    fn schedule_ping(&mut self, now: Duration) {
        let (lo, hi) = self.config.keepalive_interval;
        let span = hi.saturating_sub(lo).as_millis() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.gen_range(0..span)
        };
        self.next_ping = Some(now + lo + Duration::from_millis(jitter));
    }

    fn finish_iq(&mut self, now: Duration, w: Waiter, r: Result<Node, IqError>) {
        match w {
            Waiter::Caller(id) => self.events.push_back(Event::IqDone { id, result: r }),
            Waiter::Internal(Internal::Ping) => self.schedule_ping(now),
            Waiter::Internal(Internal::PreKeyCount) => {
                let count = r
                    .ok()
                    .and_then(|n| {
                        n.child("count")
                            .and_then(|c| c.attr("value"))
                            .and_then(|v| v.as_str().parse::<u32>().ok())
                    })
                    .unwrap_or(0);
                if count < self.config.min_pre_keys {
                    let n = if count == 0 {
                        self.config.pre_key_batch.0
                    } else {
                        self.config.pre_key_batch.1
                    };
                    if let Err(e) = self.upload_pre_keys(now, n) {
                        tracing::warn!(device = self.device.get(), error = %e, "pre-key upload");
                    }
                }
            }
            Waiter::Internal(Internal::PreKeyUpload) => {
                if let Err(e) = r {
                    tracing::warn!(device = self.device.get(), error = ?e, "pre-keys refused");
                }
            }
            Waiter::Internal(Internal::Active) => {}
        }
    }

    /// Generates, stores and uploads `n` one-time pre-keys (facts §5.5).
    fn upload_pre_keys(&mut self, now: Duration, n: usize) -> Result<(), store::Error> {
        let mut pending = self.store.pre_keys_to_upload(self.device, n)?;
        if pending.len() < n {
            let first = self.store.next_pre_key_id(self.device)?;
            let fresh = keys::one_time_pre_keys(&mut self.rng, first, n - pending.len());
            self.store.add_pre_keys(self.device, &fresh)?;
            pending.extend(fresh);
        }
        let upload = prekeys::upload(&self.keys, &pending);
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, upload, Internal::PreKeyUpload, deadline);
        let ids: Vec<_> = pending.iter().map(|k| k.id).collect();
        self.store.mark_pre_keys_uploaded(self.device, &ids)?;
        Ok(())
    }

    fn ack(&mut self, now: Duration, node: &Node) {
        let (Some(id), Some(from)) = (node.attr("id"), node.attr("from")) else {
            return;
        };
        let mut ack = Node::new("ack")
            .with_attr("class", node.tag.as_str())
            .with_attr("id", id.clone())
            .with_attr("to", from.clone());
        if node.tag != "message" {
            if let Some(t) = node.attr("type") {
                ack = ack.with_attr("type", t.clone());
            }
        }
        if let Some(p) = node.attr("participant") {
            ack = ack.with_attr("participant", p.clone());
        }
        self.send_node(now, &ack);
    }

    fn send_internal(&mut self, now: Duration, node: Node, kind: Internal, deadline: Duration) {
        let id = self.iq.next_id();
        let mut node = node;
        node.attrs
            .insert(0, ("id".into(), AttrValue::Str(id.clone())));
        self.iq.insert(id, Waiter::Internal(kind), deadline);
        self.send_node(now, &node);
    }

    fn send_node(&mut self, now: Duration, node: &Node) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        tracing::trace!(device = self.device.get(), stanza = %node, "send");
        let plain = match binary::encode_to_vec(node) {
            Ok(p) => p,
            Err(e) => return self.close(now, CloseReason::Protocol(format!("encode: {e}"))),
        };
        let mut out = Vec::with_capacity(plain.len() + 32);
        if let Err(e) = open.send.seal_frame(&plain, &mut out) {
            return self.close(now, CloseReason::Protocol(format!("seal: {e}")));
        }
        self.transmit.push_back(out);
    }
}

/// `<iq to=FROM id=ID type="result"/>` answering a server request.
fn result_to(req: &Node) -> Node {
    let mut reply = Node::new("iq");
    if let Some(from) = req.attr("from") {
        reply = reply.with_attr("to", from.clone());
    }
    if let Some(id) = req.attr("id") {
        reply = reply.with_attr("id", id.clone());
    }
    reply.with_attr("type", "result")
}

/// Reads a `<stream:error>` (facts §5.4).
fn stream_error(node: &Node) -> CloseReason {
    let code: Option<u16> = node.attr("code").and_then(|c| c.as_str().parse().ok());
    let conflict = node
        .child("conflict")
        .and_then(|c| c.attr("type"))
        .map(|t| t.as_str().into_owned());
    match (code, conflict.as_deref()) {
        (_, Some("replaced")) => CloseReason::Replaced,
        (_, Some(other)) => CloseReason::LoggedOut(format!("conflict {other}")),
        (Some(515), _) => CloseReason::RestartRequired,
        (Some(401), _) => CloseReason::LoggedOut("stream error 401".into()),
        (code, None) => CloseReason::StreamError(code),
    }
}
