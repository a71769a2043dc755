//! A minimal raw WhatsApp client for the sandbox tests, written from the facts sheets and
//! independent of the engine: websocket, Noise initiator, ClientPayload, stanzas, and the
//! companion's side of QR pairing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use prost::Message as _;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use wuts::binary::{self, Jid, Node};
use wuts::noise::{
    self, FrameDecoder, Initiator, InitiatorConfig, KeyPair, PublicKey, RecvCipher, SecretKey,
    SendCipher, xeddsa,
};
use wuts::proto::wa6::ClientPayload;
use wuts::proto::wa6::client_payload::{DevicePairingRegistrationData, UserAgent, user_agent};
use wuts::proto::waadv::{AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};
use wuts::proto::wacompanionreg::DeviceProps;
use wuts::sim::{PairedDevice, Sandbox, SandboxConfig, SandboxHandle};

/// How long a test waits for any one stanza before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn sandbox() -> SandboxHandle {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A websocket close frame.
    Clean,
    /// The socket went away without one.
    Abrupt,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection after the Noise handshake.
pub struct RawClient {
    ws: Ws,
    frames: FrameDecoder,
    send: SendCipher,
    recv: RecvCipher,
    next_id: u32,
}

/// Why the handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    Noise(noise::Error),
    Closed,
}

impl RawClient {
    /// Connects and runs the handshake trusting `root`, sending `payload`.
    pub async fn connect(
        url: &str,
        root: PublicKey,
        static_key: &KeyPair,
        payload: &ClientPayload,
    ) -> Result<RawClient, HandshakeError> {
        let ephemeral = SecretKey::generate(&mut OsRng);
        Self::connect_with(url, root, static_key, payload, ephemeral)
            .await
            .map(|(client, _)| client)
    }

    /// [`connect`](Self::connect) with a chosen ephemeral key; also returns the server hello
    /// frame as received (for reproducibility checks).
    pub async fn connect_with(
        url: &str,
        root: PublicKey,
        static_key: &KeyPair,
        payload: &ClientPayload,
        ephemeral: SecretKey,
    ) -> Result<(RawClient, Vec<u8>), HandshakeError> {
        let (mut ws, _) = connect_async(url).await.unwrap();
        let config = InitiatorConfig {
            trusted_root: root,
            ..InitiatorConfig::new(static_key.clone(), now())
        };
        let (init, hello) = Initiator::new(config, ephemeral).unwrap();
        ws.send(Message::Binary(hello.into())).await.unwrap();
        let mut frames = FrameDecoder::new();
        let server_hello = read_frame(&mut ws, &mut frames)
            .await
            .ok_or(HandshakeError::Closed)?;
        let verified = init
            .read_server_hello(&server_hello)
            .map_err(HandshakeError::Noise)?;
        let (transport, finish) = verified.finish(&payload.encode_to_vec()).unwrap();
        ws.send(Message::Binary(finish.into())).await.unwrap();
        let (send, recv) = transport.split();
        let client = RawClient {
            ws,
            frames,
            send,
            recv,
            next_id: 1,
        };
        Ok((client, server_hello))
    }

    pub async fn send(&mut self, node: &Node) {
        let plain = binary::encode_to_vec(node).unwrap();
        let mut out = Vec::new();
        self.send.seal_frame(&plain, &mut out).unwrap();
        self.ws.send(Message::Binary(out.into())).await.unwrap();
    }

    /// Sends bytes as one websocket message, bypassing the cipher (for hostile-input tests).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next stanza, or how the connection ended.
    pub async fn next(&mut self) -> Result<Node, Ended> {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("no stanza or close within the wait")
    }

    async fn next_inner(&mut self) -> Result<Node, Ended> {
        loop {
            if let Some(frame) = self.frames.next_frame().unwrap() {
                let plain = self.recv.open_in_place(frame).unwrap();
                return Ok(binary::decode_owned(plain).unwrap());
            }
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.frames.feed(&b),
                Some(Ok(Message::Close(_))) => return Err(Ended::Clean),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Ended::Abrupt),
            }
        }
    }

    /// The next stanza; panics if the connection ended.
    pub async fn recv(&mut self) -> Node {
        match self.next().await {
            Ok(n) => n,
            Err(e) => panic!("connection ended ({e:?}) while a stanza was expected"),
        }
    }

    /// Expects the connection to end now (after any stanzas, which are returned).
    pub async fn until_end(&mut self) -> (Vec<Node>, Ended) {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Ok(n) => seen.push(n),
                Err(e) => return (seen, e),
            }
        }
    }

    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("77.1-{}", self.next_id)
    }

    /// An IQ to `s.whatsapp.net` with a fresh id.
    pub fn iq(&mut self, xmlns: &str, ty: &str, children: Vec<Node>) -> Node {
        let iq = Node::new("iq")
            .with_attr("id", self.new_id())
            .with_attr("to", Jid::server_only("s.whatsapp.net"))
            .with_attr("type", ty)
            .with_attr("xmlns", xmlns);
        if children.is_empty() {
            iq
        } else {
            iq.with_children(children)
        }
    }

    /// Sends an IQ and returns the reply with its id (other stanzas are skipped).
    pub async fn request(&mut self, iq: Node) -> Node {
        let id = attr(&iq, "id").unwrap();
        self.send(&iq).await;
        loop {
            let n = self.recv().await;
            if n.tag == "iq" && attr(&n, "id").as_deref() == Some(id.as_str()) {
                return n;
            }
        }
    }
}

async fn read_frame(ws: &mut Ws, frames: &mut FrameDecoder) -> Option<Vec<u8>> {
    loop {
        if let Some(f) = frames.next_frame().unwrap() {
            return Some(f.to_vec());
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => frames.feed(&b),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

pub fn attr(node: &Node, key: &str) -> Option<String> {
    node.attr(key).map(|v| v.as_str().into_owned())
}

fn user_agent() -> UserAgent {
    UserAgent {
        platform: Some(user_agent::Platform::Web as i32),
        app_version: Some(user_agent::AppVersion {
            primary: Some(2),
            secondary: Some(3000),
            tertiary: Some(1_045_649_367),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        locale_language_iso6391: Some("en".into()),
        locale_country_iso31661_alpha2: Some("US".into()),
        ..Default::default()
    }
}

/// A companion device's keys, created as whatsmeow's NewDevice does.
#[derive(Clone)]
pub struct Companion {
    pub noise: KeyPair,
    pub identity: KeyPair,
    pub adv: [u8; 32],
    pub registration_id: u32,
    pub signed_prekey: KeyPair,
    pub signed_prekey_sig: [u8; 64],
}

impl Companion {
    pub fn new() -> Self {
        let identity = KeyPair::generate(&mut OsRng);
        let signed_prekey = KeyPair::generate(&mut OsRng);
        let mut adv = [0u8; 32];
        OsRng.fill_bytes(&mut adv);
        let signed_prekey_sig = xeddsa::sign_with_rng(
            identity.secret(),
            &serialized(signed_prekey.public()),
            &mut OsRng,
        );
        Self {
            noise: KeyPair::generate(&mut OsRng),
            identity,
            adv,
            registration_id: 4242,
            signed_prekey,
            signed_prekey_sig,
        }
    }

    pub fn registration_payload(&self) -> ClientPayload {
        let props = DeviceProps {
            os: Some("wuts-test".into()),
            ..Default::default()
        };
        ClientPayload {
            passive: Some(false),
            pull: Some(false),
            user_agent: Some(user_agent()),
            connect_type: Some(1),
            connect_reason: Some(1),
            device_pairing_data: Some(DevicePairingRegistrationData {
                e_regid: Some(self.registration_id.to_be_bytes().to_vec()),
                e_keytype: Some(vec![5]),
                e_ident: Some(self.identity.public().as_bytes().to_vec()),
                e_skey_id: Some(vec![0, 0, 1]),
                e_skey_val: Some(self.signed_prekey.public().as_bytes().to_vec()),
                e_skey_sig: Some(self.signed_prekey_sig.to_vec()),
                build_hash: Some(vec![0x9f; 16]),
                device_props: Some(props.encode_to_vec()),
            }),
            ..Default::default()
        }
    }

    pub fn login_payload(jid: &str) -> ClientPayload {
        let j: Jid = jid.parse().unwrap();
        ClientPayload {
            username: Some(j.user.parse().unwrap()),
            device: j.device.map(u32::from),
            passive: Some(true),
            pull: Some(true),
            user_agent: Some(user_agent()),
            connect_type: Some(1),
            connect_reason: Some(1),
            ..Default::default()
        }
    }

    pub fn qr(&self, pairing_ref: &str) -> String {
        wuts::sim::pairing::format_qr(
            pairing_ref,
            self.noise.public(),
            self.identity.public(),
            &self.adv,
        )
    }

    /// Checks pair-success as whatsmeow does (HMAC, account signature) and builds the
    /// pair-device-sign reply.
    pub fn answer_pair_success(&self, iq: &Node) -> Node {
        self.answer(iq, true)
    }

    /// The same reply without checking the account signature (for a companion that lies about
    /// its identity key).
    pub fn answer_pair_success_unchecked(&self, iq: &Node) -> Node {
        self.answer(iq, false)
    }

    fn answer(&self, iq: &Node, check: bool) -> Node {
        let ps = iq.child("pair-success").expect("pair-success child");
        let container_bytes = ps
            .child("device-identity")
            .unwrap()
            .content_bytes()
            .unwrap();
        let container = AdvSignedDeviceIdentityHmac::decode(container_bytes.as_ref()).unwrap();
        let details = container.details.unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.adv).unwrap();
        mac.update(&details);
        mac.verify_slice(&container.hmac.unwrap()).expect("HMAC");
        let mut signed = AdvSignedDeviceIdentity::decode(details.as_slice()).unwrap();
        let inner = signed.details.clone().unwrap();
        let account_key =
            PublicKey::from_slice(signed.account_signature_key.as_ref().unwrap()).unwrap();
        let mut msg = vec![6, 0];
        msg.extend_from_slice(&inner);
        msg.extend_from_slice(self.identity.public().as_bytes());
        if check {
            assert!(xeddsa::verify(
                &account_key,
                &msg,
                signed.account_signature.as_ref().unwrap()
            ));
        }
        let identity = AdvDeviceIdentity::decode(inner.as_slice()).unwrap();
        let mut msg = vec![6, 1];
        msg.extend_from_slice(&inner);
        msg.extend_from_slice(self.identity.public().as_bytes());
        msg.extend_from_slice(account_key.as_bytes());
        signed.device_signature =
            Some(xeddsa::sign_with_rng(self.identity.secret(), &msg, &mut OsRng).to_vec());
        signed.account_signature_key = None;
        Node::new("iq")
            .with_attr("to", Jid::server_only("s.whatsapp.net"))
            .with_attr("id", attr(iq, "id").unwrap())
            .with_attr("type", "result")
            .with_children(vec![Node::new("pair-device-sign").with_children(vec![
                Node::new("device-identity")
                    .with_attr("key-index", identity.key_index.unwrap().to_string())
                    .with_bytes(signed.encode_to_vec()),
            ])])
    }

    /// A well-formed pre-key upload of `n` keys.
    pub fn prekey_upload(&self, client: &mut RawClient, n: u32) -> Node {
        let keys = (1..=n)
            .map(|id| {
                Node::new("key").with_children(vec![
                    Node::new("id").with_bytes(id.to_be_bytes()[1..].to_vec()),
                    Node::new("value")
                        .with_bytes(KeyPair::generate(&mut OsRng).public().as_bytes().to_vec()),
                ])
            })
            .collect();
        client.iq(
            "encrypt",
            "set",
            vec![
                Node::new("registration").with_bytes(self.registration_id.to_be_bytes().to_vec()),
                Node::new("type").with_bytes(vec![5]),
                Node::new("identity").with_bytes(self.identity.public().as_bytes().to_vec()),
                Node::new("list").with_children(keys),
                Node::new("skey").with_children(vec![
                    Node::new("id").with_bytes(vec![0, 0, 1]),
                    Node::new("value").with_bytes(self.signed_prekey.public().as_bytes().to_vec()),
                    Node::new("signature").with_bytes(self.signed_prekey_sig.to_vec()),
                ]),
            ],
        )
    }
}

/// `05 || key`: the Signal serialisation that signed pre-keys are signed over.
fn serialized(key: &PublicKey) -> Vec<u8> {
    let mut v = vec![5];
    v.extend_from_slice(key.as_bytes());
    v
}

/// Connects with a registration payload and reads `pair-device`; returns the client and refs
/// (after acknowledging the IQ as whatsmeow does).
pub async fn register(sb: &SandboxHandle, c: &Companion) -> (RawClient, Vec<String>) {
    register_at(&sb.ws_url(), sb.root_public_key(), c).await
}

/// [`register`] against a sandbox known only by its URL and root key.
pub async fn register_at(url: &str, root: PublicKey, c: &Companion) -> (RawClient, Vec<String>) {
    let mut client = RawClient::connect(url, root, &c.noise, &c.registration_payload())
        .await
        .unwrap();
    let iq = client.recv().await;
    let refs = iq
        .child("pair-device")
        .expect("pair-device")
        .children()
        .iter()
        .map(|r| String::from_utf8(r.content_bytes().unwrap().into_owned()).unwrap())
        .collect();
    let ack = Node::new("iq")
        .with_attr("to", Jid::server_only("s.whatsapp.net"))
        .with_attr("id", attr(&iq, "id").unwrap())
        .with_attr("type", "result");
    client.send(&ack).await;
    (client, refs)
}

/// The whole QR pairing of a new companion to `phone`; ends after the 515.
pub async fn pair(sb: &SandboxHandle, phone: &str) -> (Companion, PairedDevice) {
    let c = Companion::new();
    let (mut client, refs) = register(sb, &c).await;
    let qr = c.qr(&refs[0]);
    let (paired, ()) = tokio::join!(sb.scan(&qr, phone), async {
        let success = client.recv().await;
        let reply = c.answer_pair_success(&success);
        client.send(&reply).await;
        let (stanzas, _) = client.until_end().await;
        assert_eq!(stanzas.len(), 1, "{stanzas:?}");
        assert_eq!(stanzas[0].to_string(), r#"<stream:error code="515"/>"#);
    });
    (c, paired.unwrap())
}

/// Logs a paired companion in and reads `<success>` (and, after a success, the edge routing
/// info the server sends next).
pub async fn login(sb: &SandboxHandle, c: &Companion, jid: &str) -> (RawClient, Node) {
    login_at(&sb.ws_url(), sb.root_public_key(), c, jid).await
}

/// [`login`] against a sandbox known only by its URL and root key.
pub async fn login_at(url: &str, root: PublicKey, c: &Companion, jid: &str) -> (RawClient, Node) {
    let mut client = RawClient::connect(url, root, &c.noise, &Companion::login_payload(jid))
        .await
        .unwrap();
    let success = client.recv().await;
    if success.tag == "success" {
        let ib = client.recv().await;
        assert!(
            ib.child("edge_routing")
                .and_then(|e| e.child("routing_info"))
                .is_some(),
            "{ib}"
        );
    }
    (client, success)
}

/// A paired, logged-in device of `phone`.
pub async fn online(sb: &SandboxHandle, phone: &str) -> (Companion, PairedDevice, RawClient) {
    let (c, paired) = pair(sb, phone).await;
    let (client, success) = login(sb, &c, &paired.jid).await;
    assert_eq!(success.tag, "success", "{success}");
    (c, paired, client)
}
