//! An in-memory WhatsApp server peer for engine tests (quinn's `Pair` idea): the real Noise
//! responder, the real codec, and a phone that signs ADV identities — no sockets, no clock.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::Sha256;
use wuts::binary::{self, Jid, Node};
use wuts::engine::{CloseReason, Connection, EngineConfig, Event, NextStep, keys};
use wuts::noise::{
    CertChainBuilder, FrameDecoder, KeyPair, PublicKey, Responder, SecretKey, ServerIdentity,
    Transport, xeddsa,
};
use wuts::proto::wa6::ClientPayload;
use wuts::proto::waadv::{AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};
use wuts_store::{Credentials, DeviceId, Devices, MemStore, Store};

pub const UNIX: u64 = 1_800_000_000;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The server's keys and certificate chain.
pub struct World {
    pub identity: ServerIdentity,
    pub root: PublicKey,
    pub store: Arc<MemStore>,
    pub device: DeviceId,
    pub config: Arc<EngineConfig>,
    pub account: KeyPair,
    /// Wall time a new connection starts at.
    unix: u64,
    rng: StdRng,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        let builder =
            CertChainBuilder::new(KeyPair::generate(&mut rng), KeyPair::generate(&mut rng));
        let root = *builder.root_public();
        let identity = ServerIdentity::generate(&builder, KeyPair::generate(&mut rng), &mut rng);
        let store = Arc::new(MemStore::new());
        let device = store
            .create_device(&keys::generate(&mut rng))
            .expect("create device");
        let config = Arc::new(EngineConfig {
            trusted_root: root,
            ..EngineConfig::default()
        });
        let account = KeyPair::generate(&mut rng);
        World {
            identity,
            root,
            store,
            device,
            config,
            account,
            unix: UNIX,
            rng,
        }
    }

    /// Sets the wall time the next connection starts at.
    pub fn set_unix(&mut self, unix: u64) {
        self.unix = unix;
    }

    /// A connection and the server side of it, handshake done.
    pub fn connect(&mut self, now: Duration) -> (Conn, Server) {
        let record = self.store.load_device(self.device).expect("load");
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut self.rng, &mut seed);
        // What the driver carries over (the rotation schedule, ...), read from the store.
        let resume = wuts::client::jobs::resume(self.store.as_ref(), self.device).expect("resume");
        let inner = Connection::resume(record, self.config.clone(), now, self.unix, seed, resume)
            .expect("conn");
        let mut conn = Conn {
            inner,
            store: self.store.clone(),
            device: self.device,
            events: VecDeque::new(),
        };
        let mut decoder = FrameDecoder::expecting_intro();
        decoder.feed(&conn.poll_transmit().expect("hello"));
        let hello = decoder
            .next_frame()
            .expect("frame")
            .expect("complete")
            .to_vec();
        let responder = Responder::new(self.identity.clone());
        let (awaiting, server_hello) = responder
            .read_client_hello(&hello, SecretKey::generate(&mut self.rng))
            .expect("client hello");
        conn.handle_bytes(now, &server_hello);
        decoder.feed(&conn.poll_transmit().expect("finish"));
        let finish = decoder
            .next_frame()
            .expect("frame")
            .expect("complete")
            .to_vec();
        let est = awaiting.read_client_finish(&finish).expect("client finish");
        let payload = ClientPayload::decode(est.client_payload.as_slice()).expect("payload");
        (
            conn,
            Server {
                transport: est.transport,
                decoder,
                client_static: est.client_static,
                payload,
            },
        )
    }

    /// The phone's `pair-success` for a QR string, with a hook to tamper with each part.
    pub fn pair_success(&mut self, qr: &str, tamper: impl FnOnce(&mut Parts)) -> Node {
        self.pair_success_as(qr, 0, [6, 0], tamper)
    }

    /// As [`World::pair_success`] with the device identity's `device_type` (1 = HOSTED) and
    /// the prefix the account signature is made with (`06 00`, or `06 05` for hosted).
    pub fn pair_success_as(
        &mut self,
        qr: &str,
        device_type: i32,
        sig_prefix: [u8; 2],
        tamper: impl FnOnce(&mut Parts),
    ) -> Node {
        let fields: Vec<&str> = qr
            .trim_start_matches("https://wa.me/settings/linked_devices#")
            .split(',')
            .collect();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let identity = b64.decode(fields[2]).expect("identity");
        let adv = b64.decode(fields[3]).expect("adv");
        let details = AdvDeviceIdentity {
            raw_id: Some(1_797_771_315),
            timestamp: Some(UNIX),
            key_index: Some(19),
            account_type: Some(0),
            device_type: Some(device_type),
        }
        .encode_to_vec();
        let mut msg = sig_prefix.to_vec();
        msg.extend_from_slice(&details);
        msg.extend_from_slice(&identity);
        let mut z = [0u8; 64];
        rand::RngCore::fill_bytes(&mut self.rng, &mut z);
        let sig = xeddsa::sign(self.account.secret(), &msg, &z);
        let mut parts = Parts {
            details,
            account_key: self.account.public().as_bytes().to_vec(),
            account_sig: sig.to_vec(),
            hmac_key: adv,
            hmac_flip: false,
            jid: "5511999990000:7@s.whatsapp.net".into(),
            with_device: true,
        };
        tamper(&mut parts);
        let signed = AdvSignedDeviceIdentity {
            details: Some(parts.details.clone()),
            account_signature_key: Some(parts.account_key.clone()),
            account_signature: Some(parts.account_sig.clone()),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = Hmac::<Sha256>::new_from_slice(&parts.hmac_key).expect("hmac key");
        mac.update(&signed);
        let mut tag = mac.finalize().into_bytes().to_vec();
        if parts.hmac_flip {
            tag[0] ^= 1;
        }
        let container = AdvSignedDeviceIdentityHmac {
            details: Some(signed),
            hmac: Some(tag),
            account_type: Some(0),
        }
        .encode_to_vec();
        let mut children = vec![
            Node::new("device-identity").with_bytes(container),
            Node::new("platform").with_attr("name", "android"),
        ];
        if parts.with_device {
            children.push(
                Node::new("device")
                    .with_attr("jid", parts.jid.as_str())
                    .with_attr("lid", "100000000000001:7@lid"),
            );
        }
        Node::new("iq")
            .with_attr("from", Jid::server_only("s.whatsapp.net"))
            .with_attr("id", "ps-1")
            .with_attr("type", "set")
            .with_attr("xmlns", "md")
            .with_children(vec![Node::new("pair-success").with_children(children)])
    }
}

/// The parts of a pair-success a test may tamper with.
pub struct Parts {
    pub details: Vec<u8>,
    pub account_key: Vec<u8>,
    pub account_sig: Vec<u8>,
    pub hmac_key: Vec<u8>,
    pub hmac_flip: bool,
    pub jid: String,
    pub with_device: bool,
}

/// The server's end of one connection.
pub struct Server {
    pub transport: Transport,
    pub decoder: FrameDecoder,
    pub client_static: PublicKey,
    pub payload: ClientPayload,
}

impl Server {
    /// Sends a stanza to the connection.
    pub fn send(&mut self, conn: &mut Conn, now: Duration, node: &Node) {
        let plain = binary::encode_to_vec(node).expect("encode");
        let mut out = Vec::new();
        self.transport.seal_frame(&plain, &mut out).expect("seal");
        conn.handle_bytes(now, &out);
        conn.run_store_jobs();
    }

    /// Everything the connection sent since the last call.
    pub fn recv(&mut self, conn: &mut Conn) -> Vec<Node> {
        conn.run_store_jobs();
        let mut nodes = Vec::new();
        while let Some(bytes) = conn.poll_transmit() {
            self.decoder.feed(&bytes);
            while let Some(frame) = self.decoder.next_frame().expect("frame") {
                let plain = self.transport.open_in_place(frame).expect("open").to_vec();
                nodes.push(binary::decode_owned(&plain).expect("decode"));
            }
        }
        nodes
    }
}

/// A connection whose store jobs run inline over the world's `MemStore`, as the driver runs
/// them on the blocking pool; every other event is kept for [`events`].
pub struct Conn {
    inner: Connection,
    store: Arc<MemStore>,
    device: DeviceId,
    events: VecDeque<Event>,
}

impl Conn {
    /// Answers `SavePairing` and `NeedPreKeys` at the connection's current time.
    pub fn run_store_jobs(&mut self) {
        while let Some(ev) = self.inner.poll_event() {
            let now = self.inner.now();
            match ev {
                Event::SavePairing(identity) => {
                    let store: &dyn Store = self.store.as_ref();
                    let result = wuts::client::jobs::save_pairing(store, self.device, &identity);
                    self.inner.pairing_saved(now, result);
                }
                Event::NeedPreKeys(n) => {
                    let store: &dyn Store = self.store.as_ref();
                    let keys = wuts::client::jobs::prepare_pre_keys(store, self.device, n, [7; 32])
                        .expect("pre-keys");
                    self.inner.pre_keys_ready(now, &keys);
                }
                Event::DeriveCodeKey(job) => self.inner.code_key_derived(now, job.run()),
                Event::CheckDigest(digest) => {
                    let store: &dyn Store = self.store.as_ref();
                    let held = wuts::client::jobs::listed_pre_keys(
                        store,
                        self.device,
                        &digest.pre_key_ids,
                    )
                    .expect("listed keys");
                    self.inner.digest_keys_loaded(now, &digest, &held);
                }
                Event::SaveSignedPreKey(key) => {
                    let saved = self.store.replace_signed_pre_key(self.device, &key);
                    self.inner.signed_pre_key_saved(now, saved);
                }
                Event::SignedPreKeyRotated { at } => {
                    let store: &dyn Store = self.store.as_ref();
                    wuts::client::jobs::record_rotation(store, self.device, at).expect("record");
                    self.events.push_back(Event::SignedPreKeyRotated { at });
                }
                other => self.events.push_back(other),
            }
        }
    }
}

impl Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.inner
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.inner
    }
}

/// Drains events (after running the store jobs among them).
pub fn events(conn: &mut Conn) -> Vec<Event> {
    conn.run_store_jobs();
    conn.events.drain(..).collect()
}

/// `<iq from=@s.whatsapp.net id type=set xmlns=md><pair-device><ref>…</ref>×n</pair-device></iq>`
pub fn pair_device(n: usize) -> Node {
    Node::new("iq")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", "pd-1")
        .with_attr("type", "set")
        .with_attr("xmlns", "md")
        .with_children(vec![
            Node::new("pair-device").with_children(
                (0..n)
                    .map(|i| Node::new("ref").with_bytes(format!("2@ref{i}").into_bytes()))
                    .collect(),
            ),
        ])
}

pub fn attr(n: &Node, k: &str) -> String {
    n.attr(k)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_default()
}

/// The server's `<digest>` for what the world's store holds: ids `ids`, its hash over them
/// (`tamper` may change the node before it goes out).
pub fn digest_reply(world: &World, req: &Node, ids: &[u32]) -> Node {
    let keys = world.store.load_device(world.device).expect("load").keys;
    let held =
        wuts::client::jobs::listed_pre_keys(world.store.as_ref(), world.device, ids).expect("keys");
    let hash = wuts::ops::prekeys::bundle_hash(
        keys.identity.public.as_bytes(),
        &keys.signed_pre_key,
        held.iter().map(|k| k.key_pair.public.as_bytes().as_slice()),
    );
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let digest = Node::new("digest").with_children(vec![
        Node::new("registration").with_bytes(keys.registration_id.get().to_be_bytes().to_vec()),
        Node::new("type").with_bytes(vec![5]),
        Node::new("identity").with_bytes(keys.identity.public.as_bytes().to_vec()),
        Node::new("skey").with_children(vec![
            Node::new("id").with_bytes(id3(keys.signed_pre_key.id.get())),
            Node::new("value").with_bytes(keys.signed_pre_key.key_pair.public.as_bytes().to_vec()),
            Node::new("signature").with_bytes(keys.signed_pre_key.signature.as_bytes().to_vec()),
        ]),
        Node::new("list").with_children(
            ids.iter()
                .map(|i| Node::new("id").with_bytes(id3(*i)))
                .collect(),
        ),
        Node::new("hash").with_bytes(hash.to_vec()),
    ]);
    result_for(req, vec![digest])
}

/// The IQ reply the server gives to `req`.
pub fn result_for(req: &Node, children: Vec<Node>) -> Node {
    Node::new("iq")
        .with_attr("from", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", attr(req, "id"))
        .with_attr("type", "result")
        .with_children(children)
}

const S: fn(u64) -> Duration = Duration::from_secs;

/// Pairs the world's device; returns the QR string shown first.
pub fn pair(world: &mut World) -> String {
    let (mut conn, mut server) = world.connect(S(0));
    assert!(
        server.payload.device_pairing_data.is_some(),
        "registration payload"
    );
    server.send(&mut conn, S(0), &pair_device(6));
    let qr = match events(&mut conn).as_slice() {
        [
            Event::Qr {
                code,
                ttl,
                expires_at,
            },
        ] => {
            assert_eq!(*ttl, S(60));
            assert_eq!(*expires_at, UNIX + 60);
            code.clone()
        }
        other => panic!("expected one QR, got {other:?}"),
    };
    let acks = server.recv(&mut conn);
    assert_eq!(attr(&acks[0], "type"), "result");
    assert_eq!(attr(&acks[0], "id"), "pd-1");
    let ps = world.pair_success(&qr, |_| {});
    server.send(&mut conn, S(5), &ps);
    let evs = events(&mut conn);
    assert!(matches!(&evs[..], [Event::Paired { platform, .. }] if platform == "android"));
    // Saved before the phone hears back.
    let saved = world
        .store
        .load_device(world.device)
        .unwrap()
        .paired
        .unwrap();
    assert_eq!(saved.jid.to_string(), "5511999990000:7@s.whatsapp.net");
    assert_eq!(saved.key_index, 19);
    let sign = server.recv(&mut conn).pop().unwrap();
    let di = sign
        .child("pair-device-sign")
        .unwrap()
        .child("device-identity")
        .unwrap();
    assert_eq!(attr(di, "key-index"), "19");
    let signed: AdvSignedDeviceIdentity =
        prost::Message::decode(di.content_bytes().unwrap().as_ref()).unwrap();
    assert!(
        signed.account_signature_key.is_none(),
        "reply leaves the account key out"
    );
    let keys = world.store.load_device(world.device).unwrap().keys;
    let identity = wuts::noise::PublicKey::from_bytes(*keys.identity.public.as_bytes());
    let msg = [
        &[6u8, 1][..],
        signed.details.as_deref().unwrap(),
        identity.as_bytes(),
        world.account.public().as_bytes(),
    ]
    .concat();
    assert!(xeddsa::verify(
        &identity,
        &msg,
        signed.device_signature.as_deref().unwrap()
    ));
    server.send(
        &mut conn,
        S(6),
        &Node::new("stream:error").with_attr("code", "515"),
    );
    let evs = events(&mut conn);
    assert!(matches!(
        evs.last(),
        Some(Event::Closed(CloseReason::RestartRequired))
    ));
    assert_eq!(
        CloseReason::RestartRequired.next_step(),
        NextStep::ReconnectNow
    );
    qr
}

/// Logs the paired device in; returns the live connection.
pub fn login(world: &mut World) -> (Conn, Server) {
    let (mut conn, mut server) = world.connect(S(100));
    assert_eq!(server.payload.username, Some(5_511_999_990_000));
    assert_eq!(server.payload.device, Some(7));
    assert!(server.payload.device_pairing_data.is_none());
    server.send(
        &mut conn,
        S(100),
        &Node::new("success")
            .with_attr("t", UNIX.to_string())
            .with_attr("lid", "100000000000001:7@lid"),
    );
    assert!(matches!(
        events(&mut conn).as_slice(),
        [Event::LoggedIn { lid: Some(_) }]
    ));
    let sent = server.recv(&mut conn);
    let kinds: Vec<String> = sent.iter().map(|n| attr(n, "xmlns")).collect();
    assert_eq!(kinds, ["passive", "encrypt"]);
    server.send(&mut conn, S(100), &result_for(&sent[0], vec![]));
    let count = Node::new("count").with_attr("value", "0");
    server.send(&mut conn, S(100), &result_for(&sent[1], vec![count]));
    let upload = server.recv(&mut conn).pop().unwrap();
    let list = upload.child("list").unwrap();
    assert_eq!(list.children().len(), 812);
    assert_eq!(
        upload
            .child("registration")
            .unwrap()
            .content_bytes()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(upload.child("skey").unwrap().children().len(), 3);
    server.send(&mut conn, S(100), &result_for(&upload, vec![]));
    // Then the digest, once: the server holds what was uploaded, so nothing more is sent.
    let digest = server.recv(&mut conn).pop().unwrap();
    assert!(digest.child("digest").is_some(), "{digest}");
    let ids: Vec<u32> = (1..=812).collect();
    server.send(&mut conn, S(100), &digest_reply(world, &digest, &ids));
    assert!(server.recv(&mut conn).is_empty());
    // The first login starts the rotation schedule.
    let evs = events(&mut conn);
    assert!(
        evs.iter()
            .all(|e| matches!(e, Event::SignedPreKeyRotated { .. })),
        "{evs:?}"
    );
    (conn, server)
}
