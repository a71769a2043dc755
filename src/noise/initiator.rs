//! The device side of the handshake (facts sheet 2.2, "client view").

use std::fmt;

use prost::Message;

use super::Error;
use super::cert::{self, VerifiedChain, WHATSAPP_ROOT_KEY};
use super::frame::{PROLOGUE, write_frame, write_intro};
use super::handshake::{SEALED_KEY_LEN, decode, dh, field, key_field, key_from};
use super::keys::{KeyPair, PublicKey, SecretKey};
use super::symmetric::{HashState, KeyedState};
use super::transport::Transport;
use crate::proto::wa6::HandshakeMessage;
use crate::proto::wa6::handshake_message::{ClientFinish, ClientHello};

/// What the device brings to a handshake.
#[derive(Clone)]
pub struct InitiatorConfig {
    /// The device's long-term Noise key pair (the "noise key", created once at registration).
    pub static_keypair: KeyPair,
    /// Root key the server's certificate chain must lead to: [`WHATSAPP_ROOT_KEY`] for the
    /// real service, the sandbox's own root in tests.
    pub trusted_root: PublicKey,
    /// Current time, Unix seconds, for certificate validity.
    pub now: u64,
    /// Edge-routing info saved from a previous connection, sent in front of the intro header.
    pub routing_info: Option<Vec<u8>>,
}

impl InitiatorConfig {
    /// A config trusting WhatsApp's root, with no routing info.
    pub fn new(static_keypair: KeyPair, now: u64) -> Self {
        Self {
            static_keypair,
            trusted_root: WHATSAPP_ROOT_KEY,
            now,
            routing_info: None,
        }
    }
}

impl fmt::Debug for InitiatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorConfig")
            .field("static_keypair", &self.static_keypair)
            .field("trusted_root", &self.trusted_root)
            .field("now", &self.now)
            .field(
                "routing_info_len",
                &self.routing_info.as_ref().map(Vec::len),
            )
            .finish()
    }
}

/// Client hello sent; waiting for the server hello.
pub struct Initiator {
    config: InitiatorConfig,
    ephemeral: KeyPair,
    state: HashState,
}

/// Server hello read and its certificate chain verified; ready to send the client finish.
pub struct VerifiedServer {
    static_keypair: KeyPair,
    server_ephemeral: PublicKey,
    server_static: PublicKey,
    chain: VerifiedChain,
    state: KeyedState,
}

impl Initiator {
    /// Starts a handshake with a fresh ephemeral key (new for every connection, drawn by the
    /// caller). Returns the state and the first bytes to send: the intro header (with the
    /// routing prefix if configured) and the client hello frame, meant for one WebSocket
    /// message. Fails only if the routing info is longer than a 3-byte length allows.
    pub fn new(config: InitiatorConfig, ephemeral: SecretKey) -> Result<(Self, Vec<u8>), Error> {
        let ephemeral = KeyPair::from_secret(ephemeral);
        let mut state = HashState::new(&PROLOGUE);
        // WhatsApp departs from Noise here: MixHash(e) only, no EncryptAndHash of the empty
        // payload (see `symmetric`).
        state.mix_hash(ephemeral.public().as_bytes());
        let hello = HandshakeMessage {
            client_hello: Some(ClientHello {
                ephemeral: Some(ephemeral.public().as_bytes().to_vec()),
                ..ClientHello::default()
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        let mut out = Vec::with_capacity(64 + config.routing_info.as_ref().map_or(0, Vec::len));
        write_intro(config.routing_info.as_deref(), &mut out)?;
        write_frame(&hello, &mut out)?;
        let initiator = Self {
            config,
            ephemeral,
            state,
        };
        Ok((initiator, out))
    }

    /// Reads the server hello (one frame payload): ee, decrypts the server static key, es,
    /// decrypts and verifies the certificate chain.
    pub fn read_server_hello(self, frame: &[u8]) -> Result<VerifiedServer, Error> {
        let msg = decode(frame)?;
        let hello = msg.server_hello.ok_or(Error::MissingField("serverHello"))?;
        let e_s = key_field(hello.ephemeral.as_ref(), "serverHello.ephemeral")?;
        let sealed_static = field(
            hello.r#static.as_ref(),
            "serverHello.static",
            Some(SEALED_KEY_LEN),
        )?;
        let sealed_cert = field(hello.payload.as_ref(), "serverHello.payload", None)?;
        let Self {
            config,
            ephemeral,
            mut state,
        } = self;

        state.mix_hash(e_s.as_bytes());
        let ee = dh(ephemeral.secret(), &e_s, "server ephemeral")?;
        let mut state = state.mix_key(ee.as_ref());
        let s_s = state
            .decrypt_and_hash(sealed_static)
            .ok_or(Error::HandshakeDecrypt("server static"))?;
        let s_s = key_from(&s_s, "server static")?;
        let es = dh(ephemeral.secret(), &s_s, "server static")?;
        state.mix_key(es.as_ref());
        let chain_bytes = state
            .decrypt_and_hash(sealed_cert)
            .ok_or(Error::HandshakeDecrypt("certificate chain"))?;
        let chain = cert::verify_chain(&chain_bytes, &config.trusted_root, &s_s, config.now)?;
        Ok(VerifiedServer {
            static_keypair: config.static_keypair,
            server_ephemeral: e_s,
            server_static: s_s,
            chain,
            state,
        })
    }
}

impl VerifiedServer {
    /// The server's static key (equal to the verified leaf key).
    pub fn server_static(&self) -> &PublicKey {
        &self.server_static
    }

    /// The verified certificate chain.
    pub fn chain(&self) -> &VerifiedChain {
        &self.chain
    }

    /// Encrypts our static key and `client_payload` (a serialized `ClientPayload`) into the
    /// client finish frame and splits the transport keys. The returned bytes are one frame
    /// (3-byte length + `HandshakeMessage`); the connection is encrypted from then on.
    pub fn finish(self, client_payload: &[u8]) -> Result<(Transport, Vec<u8>), Error> {
        let Self {
            static_keypair,
            server_ephemeral,
            mut state,
            ..
        } = self;
        // Same key as the certificate, counter now 1.
        let c_static = state
            .encrypt_and_hash(static_keypair.public().as_bytes())
            .ok_or(Error::PlaintextTooLong)?;
        let se = dh(
            static_keypair.secret(),
            &server_ephemeral,
            "server ephemeral",
        )?;
        state.mix_key(se.as_ref());
        let c_payload = state
            .encrypt_and_hash(client_payload)
            .ok_or(Error::PlaintextTooLong)?;
        let msg = HandshakeMessage {
            client_finish: Some(ClientFinish {
                r#static: Some(c_static),
                payload: Some(c_payload),
                ..ClientFinish::default()
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        let mut out = Vec::with_capacity(msg.len() + 3);
        write_frame(&msg, &mut out)?;
        let keys = state.split();
        let transport = Transport::new(&keys.initiator_to_responder, &keys.responder_to_initiator);
        Ok((transport, out))
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("config", &self.config)
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for VerifiedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedServer")
            .field("server_static", &self.server_static)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wa6::handshake_message::ServerHello;

    /// `name = hex` lines of a known-answer file.
    fn vector(text: &str, name: &str) -> Vec<u8> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('='))
            .unwrap_or_default()
            .trim();
        (0..line.len() / 2)
            .filter_map(|i| u8::from_str_radix(line.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }

    const REAL: &str = include_str!("../../tests/data/noise/real_handshake.txt");

    fn key32(name: &str) -> [u8; 32] {
        <[u8; 32]>::try_from(vector(REAL, name)).unwrap_or_default()
    }

    fn real_server_hello() -> Vec<u8> {
        HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(vector(REAL, "server_ephemeral")),
                r#static: Some(vector(REAL, "server_static_ciphertext")),
                payload: Some(vector(REAL, "cert_ciphertext")),
                ..ServerHello::default()
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec()
    }

    fn config(now: u64) -> InitiatorConfig {
        InitiatorConfig::new(KeyPair::from_secret(SecretKey::from_bytes([5; 32])), now)
    }

    #[test]
    fn reproduces_every_value_of_the_real_server_transcript() {
        let e = SecretKey::from_bytes(key32("client_ephemeral_priv"));
        assert_eq!(e.public_key().to_bytes(), key32("client_ephemeral_pub"));
        let (init, hello) = match Initiator::new(config(1_750_000_000), e) {
            Ok(v) => v,
            Err(err) => panic!("new: {err}"),
        };
        assert_eq!(hello[..7], [0x57, 0x41, 6, 3, 0, 0, 0x24]);
        assert_eq!(hello[11..], key32("client_ephemeral_pub"));
        assert_eq!(init.state.hash(), &key32("h_client_ephemeral"));

        // Step by step with the same primitives, checking each intermediate value.
        let mut s = HashState::new(&PROLOGUE);
        assert_eq!(s.hash(), &key32("h_prologue"));
        s.mix_hash(&key32("client_ephemeral_pub"));
        s.mix_hash(&key32("server_ephemeral"));
        assert_eq!(s.hash(), &key32("h_server_ephemeral"));
        let ee = init
            .ephemeral
            .secret()
            .diffie_hellman(&PublicKey::from_bytes(key32("server_ephemeral")));
        let mut k = s.mix_key(ee.as_deref().map_or(&[][..], |v| &v[..]));
        assert_eq!(k.chaining_key(), &key32("ck_ee"));
        let s_s = k.decrypt_and_hash(&vector(REAL, "server_static_ciphertext"));
        assert_eq!(s_s.as_deref(), Some(&key32("server_static")[..]));
        assert_eq!(k.hash(), &key32("h_server_static"));

        let verified = match init.read_server_hello(&real_server_hello()) {
            Ok(v) => v,
            Err(err) => panic!("real server hello rejected: {err}"),
        };
        assert_eq!(verified.state.chaining_key(), &key32("ck_es"));
        assert_eq!(verified.state.hash(), &key32("h_cert"));
        assert_eq!(verified.server_static().to_bytes(), key32("server_static"));
        assert_eq!(verified.chain().leaf.serial, 329);
        assert_eq!(verified.chain().intermediate.serial, 3);
    }

    #[test]
    fn real_transcript_fails_the_leaf_expiry_check_after_july_2025() {
        let e = SecretKey::from_bytes(key32("client_ephemeral_priv"));
        let Ok((init, _)) = Initiator::new(config(1_800_000_000), e) else {
            panic!("new failed");
        };
        let err = init.read_server_hello(&real_server_hello()).err();
        assert!(matches!(
            err,
            Some(Error::CertChain(cert::CertError::Expired {
                which: cert::Which::Leaf,
                not_after: 1_753_736_400,
                ..
            }))
        ));
    }
}
