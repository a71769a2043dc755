//! Helpers shared by the `noise_*` integration tests: known-answer file parsing, a seeded
//! RNG (the library takes randomness as input, so tests replay exactly) and a driver that
//! runs a full in-memory handshake through the public API.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use wuts::noise::{
    CertChainBuilder, Error, FrameDecoder, Initiator, InitiatorConfig, KeyPair, Responder,
    SecretKey, ServerIdentity, Transport,
};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Decodes lowercase hex; panics on bad test data, which is a bug in the test itself.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The value of `name = value` in a known-answer file.
pub fn value<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in vector file"))
}

pub fn bytes(text: &str, name: &str) -> Vec<u8> {
    hex(value(text, name))
}

pub fn key(text: &str, name: &str) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes(text, name)).unwrap_or_else(|_| panic!("{name} is not 32 bytes"))
}

pub fn number(text: &str, name: &str) -> u64 {
    value(text, name)
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Deterministic RNG: SHA-256 of (seed, counter). Good enough to replay tests, not for keys
/// anyone relies on.
pub struct TestRng {
    seed: u64,
    counter: u64,
}

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    pub fn secret(&mut self) -> SecretKey {
        SecretKey::generate(self)
    }

    pub fn keypair(&mut self) -> KeyPair {
        KeyPair::generate(self)
    }
}

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed.to_le_bytes())
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TestRng {}

/// A sandbox-like server: its own root, intermediate, static key and chain.
pub struct Sandbox {
    pub builder: CertChainBuilder,
    pub identity: ServerIdentity,
}

impl Sandbox {
    pub fn new(rng: &mut TestRng) -> Self {
        let builder = CertChainBuilder::new(rng.keypair(), rng.keypair());
        let identity = ServerIdentity::generate(&builder, rng.keypair(), rng);
        Self { builder, identity }
    }

    pub fn client_config(&self, rng: &mut TestRng, now: u64) -> InitiatorConfig {
        let mut config = InitiatorConfig::new(rng.keypair(), now);
        config.trusted_root = *self.builder.root_public();
        config
    }
}

/// The three handshake messages as they go on the wire (with intro header and lengths).
pub struct Wire {
    pub hello: Vec<u8>,
    pub server_hello: Vec<u8>,
    pub finish: Vec<u8>,
}

/// Bytes that can be altered in flight, one message at a time.
pub type Tamper<'a> = &'a mut dyn FnMut(usize, &mut Vec<u8>);

/// Outcome of a full handshake: both transports, or the first error and who raised it.
pub struct Done {
    pub client: Transport,
    pub server: Transport,
    pub server_saw_static: wuts::noise::PublicKey,
    pub server_saw_payload: Vec<u8>,
    pub wire: Wire,
}

/// One frame out of a decoder that has been fed everything: a missing frame is an error.
fn one_frame(dec: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    dec.feed(bytes);
    let frame = dec
        .next_frame()?
        .map(|f| f.to_vec())
        .ok_or(Error::MissingField("complete frame"))?;
    dec.finish()?;
    Ok(frame)
}

/// Runs initiator and responder against each other in memory. `tamper(i, bytes)` may alter
/// message `i` (0 hello, 1 server hello, 2 finish) on the wire.
pub fn handshake(
    config: InitiatorConfig,
    identity: &ServerIdentity,
    rng: &mut TestRng,
    payload: &[u8],
    tamper: Tamper<'_>,
) -> Result<Done, Error> {
    let (init, mut hello) = Initiator::new(config, rng.secret())?;
    let sent_hello = hello.clone();
    tamper(0, &mut hello);
    let mut server_in = FrameDecoder::expecting_intro();
    let frame = one_frame(&mut server_in, &hello)?;
    let (resp, mut server_hello) =
        Responder::new(identity.clone()).read_client_hello(&frame, rng.secret())?;
    let sent_server_hello = server_hello.clone();
    tamper(1, &mut server_hello);
    let mut client_in = FrameDecoder::new();
    let verified = init.read_server_hello(&one_frame(&mut client_in, &server_hello)?)?;
    let (client, mut finish) = verified.finish(payload)?;
    let sent_finish = finish.clone();
    tamper(2, &mut finish);
    let est = resp.read_client_finish(&one_frame(&mut server_in, &finish)?)?;
    Ok(Done {
        client,
        server: est.transport,
        server_saw_static: est.client_static,
        server_saw_payload: est.client_payload,
        wire: Wire {
            hello: sent_hello,
            server_hello: sent_server_hello,
            finish: sent_finish,
        },
    })
}
