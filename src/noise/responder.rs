//! The server side of the handshake (facts sheet 2.2, "responder view"), for the sandbox.
//!
//! The intro header is the framing layer's business: feed the socket bytes to
//! [`FrameDecoder::expecting_intro`](super::FrameDecoder::expecting_intro) and pass each frame
//! payload here.

use std::fmt;

use prost::Message;

use super::Error;
use super::cert::CertChainBuilder;
use super::frame::{PROLOGUE, write_frame};
use super::handshake::{SEALED_KEY_LEN, decode, dh, field, key_field, key_from};
use super::keys::{KeyPair, PublicKey, SecretKey};
use super::symmetric::{HashState, KeyedState};
use super::transport::Transport;
use crate::proto::wa6::HandshakeMessage;
use crate::proto::wa6::handshake_message::ServerHello;

/// What a server presents: its static key pair and a certificate chain for that key.
#[derive(Clone)]
pub struct ServerIdentity {
    static_keypair: KeyPair,
    cert_chain: Vec<u8>,
}

impl ServerIdentity {
    /// Pairs a static key with an already serialized `CertChain` (sent as is, so tests can
    /// present broken chains).
    pub fn new(static_keypair: KeyPair, cert_chain: Vec<u8>) -> Self {
        Self {
            static_keypair,
            cert_chain,
        }
    }

    /// Certifies `static_keypair` with `builder` (root → intermediate → leaf).
    pub fn generate(
        builder: &CertChainBuilder,
        static_keypair: KeyPair,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Self {
        let cert_chain = builder.build(static_keypair.public(), rng);
        Self::new(static_keypair, cert_chain)
    }

    /// The server's static public key (the leaf key).
    pub fn static_public(&self) -> &PublicKey {
        self.static_keypair.public()
    }

    /// The serialized `CertChain` sent in every server hello.
    pub fn cert_chain(&self) -> &[u8] {
        &self.cert_chain
    }
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("static_keypair", &self.static_keypair)
            .field("cert_chain_len", &self.cert_chain.len())
            .finish()
    }
}

/// Waiting for the client hello.
pub struct Responder {
    identity: ServerIdentity,
    state: HashState,
}

/// Server hello sent; waiting for the client finish.
pub struct AwaitingClientFinish {
    ephemeral: KeyPair,
    state: KeyedState,
}

/// A completed handshake, seen from the server.
#[derive(Debug)]
pub struct Established {
    /// The client's long-term Noise key: the sandbox binds it to the device at pairing and
    /// checks it at login.
    pub client_static: PublicKey,
    /// The decrypted `ClientPayload` bytes, exactly as the client sent them.
    pub client_payload: Vec<u8>,
    /// The transport, keyed for the server's directions.
    pub transport: Transport,
}

impl Responder {
    /// A responder presenting `identity`.
    pub fn new(identity: ServerIdentity) -> Self {
        Self {
            identity,
            state: HashState::new(&PROLOGUE),
        }
    }

    /// Reads the client hello (one frame payload, intro header already stripped) and answers
    /// with the server hello frame, using the caller's fresh `ephemeral` key.
    ///
    /// A client hello carrying `static`/`payload` is a Noise IK resumption attempt (only
    /// whatsapp-rust does that); it is refused with [`Error::ResumptionUnsupported`] rather
    /// than answered with an XX hello the client would then treat as XXfallback.
    pub fn read_client_hello(
        self,
        frame: &[u8],
        ephemeral: SecretKey,
    ) -> Result<(AwaitingClientFinish, Vec<u8>), Error> {
        let msg = decode(frame)?;
        let hello = msg.client_hello.ok_or(Error::MissingField("clientHello"))?;
        let e_c = key_field(hello.ephemeral.as_ref(), "clientHello.ephemeral")?;
        if hello.r#static.is_some() || hello.payload.is_some() {
            return Err(Error::ResumptionUnsupported);
        }
        let Self {
            identity,
            mut state,
        } = self;
        let ephemeral = KeyPair::from_secret(ephemeral);

        state.mix_hash(e_c.as_bytes());
        state.mix_hash(ephemeral.public().as_bytes());
        let ee = dh(ephemeral.secret(), &e_c, "client ephemeral")?;
        let mut state = state.mix_key(ee.as_ref());
        let sealed_static = state
            .encrypt_and_hash(identity.static_public().as_bytes())
            .ok_or(Error::PlaintextTooLong)?;
        let se = dh(identity.static_keypair.secret(), &e_c, "client ephemeral")?;
        state.mix_key(se.as_ref());
        let sealed_cert = state
            .encrypt_and_hash(&identity.cert_chain)
            .ok_or(Error::PlaintextTooLong)?;

        let msg = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(ephemeral.public().as_bytes().to_vec()),
                r#static: Some(sealed_static),
                payload: Some(sealed_cert),
                ..ServerHello::default()
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        let mut out = Vec::with_capacity(msg.len() + 3);
        write_frame(&msg, &mut out)?;
        Ok((AwaitingClientFinish { ephemeral, state }, out))
    }
}

impl AwaitingClientFinish {
    /// Reads the client finish (one frame payload): decrypts the client static key, se,
    /// decrypts the `ClientPayload`, and splits the transport keys.
    pub fn read_client_finish(self, frame: &[u8]) -> Result<Established, Error> {
        let msg = decode(frame)?;
        let finish = msg
            .client_finish
            .ok_or(Error::MissingField("clientFinish"))?;
        let sealed_static = field(
            finish.r#static.as_ref(),
            "clientFinish.static",
            Some(SEALED_KEY_LEN),
        )?;
        let sealed_payload = field(finish.payload.as_ref(), "clientFinish.payload", None)?;
        let Self {
            ephemeral,
            mut state,
        } = self;
        let s_c = state
            .decrypt_and_hash(sealed_static)
            .ok_or(Error::HandshakeDecrypt("client static"))?;
        let s_c = key_from(&s_c, "client static")?;
        let es = dh(ephemeral.secret(), &s_c, "client static")?;
        state.mix_key(es.as_ref());
        let client_payload = state
            .decrypt_and_hash(sealed_payload)
            .ok_or(Error::HandshakeDecrypt("client payload"))?;
        let keys = state.split();
        Ok(Established {
            client_static: s_c,
            client_payload,
            transport: Transport::new(&keys.responder_to_initiator, &keys.initiator_to_responder),
        })
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AwaitingClientFinish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingClientFinish")
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}
