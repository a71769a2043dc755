//! One connection of one device: the Noise handshake, then stanzas, until it closes.
//!
//! Storage: the connection never touches the store. It asks for store work as events
//! ([`Event::SavePairing`], [`Event::NeedPreKeys`]) that the driver runs off the async workers
//! (an fsync, 812 fresh pre-keys) and answers with [`Connection::pairing_saved`] and
//! [`Connection::pre_keys_ready`]; nobody hears of a pairing before it is durable.
//!
//! Call order for a driver (quinn-proto's): after every `handle_*` or `send_iq`, drain
//! [`Connection::poll_event`], then [`Connection::poll_transmit`], then re-arm the timer from
//! [`Connection::poll_timeout`]. Events never depend on transmits having been sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wuts_store::{self as store, DeviceId};

use super::config::EngineConfig;
use super::event::Event;
use super::iq::{Internal, IqError, IqId, IqTable, Waiter};
use super::keys;

use super::payload;
use super::{CloseReason, Error, LogoutReason, ProtocolError};
use crate::binary::{self, AttrValue, Node};
use crate::noise::{FrameDecoder, Initiator, InitiatorConfig, RecvCipher, SendCipher};
use crate::ops::companion::RemoveCompanion;
use crate::ops::keepalive::{self, Ping};
use crate::ops::passive::SetPassive;
use crate::ops::{Iq, IqSpec, stanzas};
use crate::types::Jid;

mod ib;
mod paircode;
mod pairing;
mod prekeys;

pub use prekeys::{Rotation, rotation};

use ib::stream_error;

/// Longest edge routing info kept (real ones are a few dozen bytes).
const MAX_ROUTING_INFO: usize = 1024;

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

/// A verified pairing waiting for the driver to make it durable.
struct PendingPair {
    jid: Jid,
    identity: store::PairedIdentity,
    reply: Node,
    iq_id: String,
}

/// What a connection carries over from earlier ones of the same device.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// The server's edge routing info, from [`Event::RoutingInfo`].
    pub routing_info: Option<Vec<u8>>,
    /// Successful logins since the device paired.
    pub login_count: u32,
    /// When the server got the current signed pre-key, unix seconds
    /// ([`Event::SignedPreKeyRotated`]); `None` if never recorded.
    pub signed_pre_key_rotated_at: Option<u64>,
}

/// One websocket connection's protocol state.
pub struct Connection {
    device: DeviceId,
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
    pending_pair: Option<PendingPair>,
    /// Pairing by code: the code asked for and its exchange.
    code: Option<Box<paircode::CodePairing>>,
    /// A code asked for before `pair-device` came.
    code_wanted: Option<crate::types::UserJid>,
    login_count: u32,
    /// Pre-key count, digest and signed pre-key rotation.
    upkeep: prekeys::Upkeep,
    offline: Option<ib::OfflineSync>,
    /// The latest `now` any input carried.
    now: Duration,
}

impl Connection {
    /// Starts a connection for a stored device: queues the intro and client hello. `now` is
    /// the driver's monotonic clock, `unix_now` wall time for certificates and QR expiry, `seed`
    /// fresh randomness for the ephemeral key, ids, jitter and signatures.
    pub fn new(
        record: store::DeviceRecord,
        config: Arc<EngineConfig>,
        now: Duration,
        unix_now: u64,
        seed: [u8; 32],
    ) -> Result<Self, Error> {
        Self::resume(record, config, now, unix_now, seed, Resume::default())
    }

    /// As [`Connection::new`], with what earlier connections left: the edge routing info
    /// ([`Event::RoutingInfo`]) presented in the intro header (`ED 00 01`), and the login
    /// counter sent in the login payload, as WhatsApp Web does.
    pub fn resume(
        record: store::DeviceRecord,
        config: Arc<EngineConfig>,
        now: Duration,
        unix_now: u64,
        seed: [u8; 32],
        resume: Resume,
    ) -> Result<Self, Error> {
        let Resume {
            routing_info,
            login_count,
            signed_pre_key_rotated_at,
        } = resume;
        let mut rng = StdRng::from_seed(seed);
        let ephemeral = crate::noise::SecretKey::generate(&mut rng);
        let init = InitiatorConfig {
            static_keypair: keys::to_noise(&record.keys.noise),
            trusted_root: config.trusted_root,
            now: unix_now,
            routing_info,
        };
        let (initiator, hello) = Initiator::new(init, ephemeral)?;
        let iq = IqTable::new(rng.r#gen());
        Ok(Connection {
            device: record.id,
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
            pending_pair: None,
            code: None,
            code_wanted: None,
            login_count,
            upkeep: prekeys::Upkeep::new(signed_pre_key_rotated_at),
            offline: None,
            now,
            config,
            rng,
        })
    }

    /// The latest time an input carried: what to pass with an answer to a store job that has
    /// no clock of its own.
    pub fn now(&self) -> Duration {
        self.now
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
            self.code_deadline(),
            self.iq.next_deadline(),
            self.upkeep.deadline(),
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
        self.now = self.now.max(now);
        if self.is_closed() {
            return;
        }
        self.decoder.feed(data);
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(f)) => f.to_vec(),
                Ok(None) => break,
                Err(e) => return self.close(now, CloseReason::Protocol(ProtocolError::Framing(e))),
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
        self.now = self.now.max(now);
        if self.is_closed() {
            return;
        }
        if self.setup_deadline.is_some_and(|d| d <= now) {
            return self.close(now, CloseReason::SetupTimeout);
        }
        for (w, waited) in self.iq.expire(now) {
            match w {
                Waiter::Caller(id) => self.events.push_back(Event::IqDone {
                    id,
                    result: Err(IqError::Timeout(waited)),
                }),
                Waiter::Internal(Internal::Ping) => {
                    return self.close(now, CloseReason::KeepaliveTimeout);
                }
                Waiter::Internal(Internal::PairCodeHello) => {
                    self.hello_answered(now, Err(IqError::Timeout(waited)));
                }
                Waiter::Internal(_) => {}
            }
        }
        self.expire_code(now);
        self.key_upkeep_timeout(now);
        if self.qr.as_ref().is_some_and(|q| q.next_at <= now) {
            self.show_next_qr(now);
            if self.is_closed() {
                return;
            }
        }
        if self.next_ping.is_some_and(|p| p <= now) {
            self.next_ping = None;
            if !self.iq.has_internal(Internal::Ping) {
                let deadline = now + self.config.keepalive_timeout;
                self.send_internal(now, Ping.iq(), Internal::Ping, deadline);
            }
        }
    }

    /// Sends a caller's IQ (a spec's [`Iq`]). Refused (with an `IqDone` carrying
    /// `Disconnected`) unless logged in.
    pub fn send_iq(&mut self, now: Duration, id: IqId, req: Iq) {
        if !self.is_logged_in() {
            self.events.push_back(Event::IqDone {
                id,
                result: Err(IqError::Disconnected),
            });
            return;
        }
        let deadline = now + req.timeout.unwrap_or(self.config.iq_timeout);
        let iq_id = self.iq.next_id();
        let node = req.into_node(&iq_id);
        self.iq.insert(iq_id, Waiter::Caller(id), now, deadline);
        self.send_node(now, &node);
    }

    /// Logs out from our side: tells WhatsApp first when logged in (best effort: the keys go
    /// either way), then closes with [`LogoutReason::Requested`]. Drain the transmits before
    /// closing the socket.
    pub fn logout(&mut self, now: Duration) {
        if let (true, Some(p)) = (self.is_logged_in(), &self.paired) {
            let deadline = now + crate::ops::companion::LOGOUT_TIMEOUT;
            let iq = RemoveCompanion {
                own: Jid::from(&p.jid),
            }
            .iq();
            self.send_internal(now, iq, Internal::Logout, deadline);
        }
        self.close(now, CloseReason::LoggedOut(LogoutReason::Requested));
    }

    /// Ends the connection from our side (shutdown, disconnect).
    pub fn close(&mut self, _now: Duration, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed;
        self.qr = None;
        self.pending_pair = None;
        self.code = None;
        for w in self.iq.drain() {
            if let Waiter::Caller(id) = w {
                self.events.push_back(Event::IqDone {
                    id,
                    result: Err(IqError::Lost),
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
                    .ok_or(CloseReason::Protocol(ProtocolError::UnexpectedHandshake))?;
                let server = init
                    .read_server_hello(&frame)
                    .map_err(|e| CloseReason::Handshake(Arc::new(e)))?;
                let payload = self.client_payload()?;
                let (transport, finish) = server
                    .finish(&payload)
                    .map_err(|e| CloseReason::Handshake(Arc::new(e)))?;
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
                    .map_err(|e| CloseReason::Protocol(ProtocolError::Transport(Arc::new(e))))?;
                let stanza = |e| CloseReason::Protocol(ProtocolError::Stanza(Arc::new(e)));
                let body = binary::unpack(plain, binary::DEFAULT_MAX_INFLATED).map_err(stanza)?;
                let node = binary::Tree::decode(&body)
                    .map_err(stanza)?
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
                let user = p
                    .jid
                    .user()
                    .parse()
                    .map_err(|_| CloseReason::Protocol(ProtocolError::StoredIdentity))?;
                Ok(payload::login(
                    user,
                    u32::from(p.jid.device()),
                    v,
                    self.login_count,
                ))
            }
        }
    }

    fn dispatch(&mut self, now: Duration, node: Node) {
        tracing::trace!(device = self.device.get(), stanza = %node, "recv");
        self.note_offline(now, &node);
        match node.tag.as_str() {
            "iq" => self.handle_iq(now, node),
            "success" => self.handle_success(now, &node),
            "failure" => {
                let reason = node
                    .attr("reason")
                    .and_then(|r| r.as_str().parse().ok())
                    .unwrap_or(0);
                let reason = match reason {
                    401 | 403 | 406 => CloseReason::LoggedOut(LogoutReason::LoginRefused(reason)),
                    other => CloseReason::LoginFailed(other),
                };
                self.close(now, reason);
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
                if self.held_group_notification(&node) {
                    return; // acknowledged by the driver once its events are durable
                }
                self.ack(now, &node);
                self.handle_notification(&node);
                if node.child("link_code_companion_reg").is_some() {
                    self.handle_link_code(now, &node);
                }
            }
            "receipt" | "message" | "call" => self.ack(now, &node),
            "ib" => self.handle_ib(now, &node),
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
                if node.child("pair-device").is_some() {
                    self.handle_pair_device(now, &node);
                } else if node.child("pair-success").is_some() {
                    self.handle_pair_success(now, &node);
                } else if keepalive::is_server_ping(&node) {
                    let reply = stanzas::result_to(&node);
                    self.send_node(now, &reply);
                }
            }
            _ => {}
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
        self.send_internal(now, SetPassive(false).iq(), Internal::Active, deadline);
        self.start_key_upkeep(now);
        self.schedule_ping(now);
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
            Waiter::Internal(
                k @ (Internal::PreKeyCount
                | Internal::PreKeyUpload
                | Internal::Digest
                | Internal::Rotate),
            ) => self.finish_key_iq(now, k, r),
            Waiter::Internal(Internal::PairCodeHello) => self.hello_answered(now, r),
            Waiter::Internal(Internal::PairCodeFinish) => {
                if let Err(e) = r {
                    tracing::warn!(device = self.device.get(), error = ?e, "companion_finish refused");
                }
            }
            Waiter::Internal(Internal::Clean) => {
                if let Err(e) = r {
                    tracing::warn!(device = self.device.get(), error = ?e, "clean refused");
                }
            }
            Waiter::Internal(Internal::Active | Internal::Logout) => {}
        }
    }

    fn ack(&mut self, now: Duration, node: &Node) {
        if let Some(ack) = stanzas::ack(node) {
            self.send_node(now, &ack);
        }
    }

    fn send_internal(&mut self, now: Duration, iq: Iq, kind: Internal, deadline: Duration) {
        let id = self.iq.next_id();
        let node = iq.into_node(&id);
        self.iq.insert(id, Waiter::Internal(kind), now, deadline);
        self.send_node(now, &node);
    }

    fn send_node(&mut self, now: Duration, node: &Node) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        tracing::trace!(device = self.device.get(), stanza = %node, "send");
        let plain = match binary::encode_to_vec(node) {
            Ok(p) => p,
            Err(e) => {
                let e = ProtocolError::Encode(Arc::new(e));
                return self.close(now, CloseReason::Protocol(e));
            }
        };
        let mut out = Vec::with_capacity(plain.len() + 32);
        if let Err(e) = open.send.seal_frame(&plain, &mut out) {
            let e = ProtocolError::Transport(Arc::new(e));
            return self.close(now, CloseReason::Protocol(e));
        }
        self.transmit.push_back(out);
    }
}
