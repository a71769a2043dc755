//! Noise XX secure channel between a device and WhatsApp, in WhatsApp's exact variant, for
//! both roles: [`Initiator`] (our device) and [`Responder`] (the sandbox server).
//!
//! Sans-IO: no sockets, no clocks, no OS randomness. Callers pass in ephemeral keys, signing
//! randomness and the current time, feed received bytes and send the bytes returned. Each
//! handshake step consumes its state and returns the next, so steps cannot be skipped or
//! repeated.
//!
//! ```text
//! device (Initiator)                               server (Responder)
//! Initiator::new(config, e)      --intro+hello-->  FrameDecoder::expecting_intro
//!                                                  Responder::read_client_hello(frame, e)
//! Initiator::read_server_hello   <--server hello--   (cert chain inside)
//!   (verifies the chain)
//! VerifiedServer::finish(payload) --client finish->  AwaitingClientFinish::read_client_finish
//! Transport                      <==AES-GCM frames=> Transport
//! ```
//!
//! Owns: framing ([`frame`]), the handshake, the transport cipher, the certificate chain
//! ([`cert`]) and XEdDSA ([`xeddsa`]). Must not touch: sockets, stanzas (the `binary` layer
//! reads the decrypted frames), storage.

#![deny(clippy::disallowed_methods)]

pub mod cert;
pub mod frame;
mod handshake;
mod initiator;
mod keys;
mod responder;
mod symmetric;
mod transport;
pub mod xeddsa;

use thiserror::Error;

pub use cert::{CertChainBuilder, CertError, CertInfo, VerifiedChain, WHATSAPP_ROOT_KEY};
pub use frame::{FrameDecoder, FrameError};
pub use initiator::{Initiator, InitiatorConfig, VerifiedServer};
pub use keys::{KEY_LEN, KeyPair, PublicKey, SecretKey};
pub use responder::{AwaitingClientFinish, Established, Responder, ServerIdentity};
pub use symmetric::{PROTOCOL_NAME, TAG_LEN};
pub use transport::{RecvCipher, SendCipher, Transport};

/// Everything that can end a Noise handshake or connection. Every variant is fatal for the
/// connection it came from.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Framing was invalid (bad intro header, oversized or truncated frame).
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The server's certificate chain failed a check (the variant names it).
    #[error("server certificate chain: {0}")]
    CertChain(#[from] CertError),
    /// A handshake frame is not a valid `HandshakeMessage` protobuf.
    #[error("handshake message is not valid protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A handshake message lacks a required part (named).
    #[error("handshake message lacks {0}")]
    MissingField(&'static str),
    /// A handshake field has the wrong length.
    #[error("{field} has {got} bytes, expected {expected}")]
    FieldLength {
        /// The field.
        field: &'static str,
        /// Length required.
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// A handshake ciphertext failed authentication (named): wrong keys or tampered bytes.
    #[error("could not decrypt {0} (tampered or wrong keys)")]
    HandshakeDecrypt(&'static str),
    /// A peer key (named) is a low-order point: the DH result would be all zeros.
    #[error("{0} is a low-order point")]
    WeakKey(&'static str),
    /// The client tried Noise IK resumption (a ClientHello with `static`/`payload`), which
    /// this responder does not implement.
    #[error("client hello attempts IK resumption, which is not supported")]
    ResumptionUnsupported,
    /// A transport frame failed to decrypt. Fatal: the receiver stays failed and the
    /// connection must be closed.
    #[error("transport frame failed to decrypt; the connection must close")]
    Decrypt,
    /// 2^32 frames were sealed or opened in one direction; a nonce would repeat.
    #[error("frame counter exhausted; the connection must be re-established")]
    NonceExhausted,
    /// The AEAD refused the plaintext (longer than AES-GCM allows).
    #[error("plaintext too long to encrypt")]
    PlaintextTooLong,
}
