//! Noise benchmarks: handshake CPU per side, and transport seal/open throughput set beside
//! raw AES-256-GCM on the same data (the transport must stay within 10% of raw).
//!
//! Run: `cargo bench --bench noise`

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use criterion::{Criterion, Throughput, criterion_group};
use rand_core::OsRng;
use wuts::noise::{
    CertChainBuilder, Initiator, InitiatorConfig, KeyPair, RecvCipher, Responder, SecretKey,
    ServerIdentity, Transport,
};

const PAYLOAD: &[u8] = &[0x42; 200];

/// Everything a handshake needs, with fixed ephemerals so every iteration replays the same
/// transcript and pre-recorded peer messages stay valid.
struct Fixture {
    config: InitiatorConfig,
    identity: ServerIdentity,
    client_e: SecretKey,
    server_e: SecretKey,
    hello: Vec<u8>,
    server_hello: Vec<u8>,
    finish: Vec<u8>,
}

fn fixture() -> Result<Fixture, wuts::noise::Error> {
    let builder =
        CertChainBuilder::new(KeyPair::generate(&mut OsRng), KeyPair::generate(&mut OsRng));
    let identity = ServerIdentity::generate(&builder, KeyPair::generate(&mut OsRng), &mut OsRng);
    let mut config = InitiatorConfig::new(KeyPair::generate(&mut OsRng), 1_750_000_000);
    config.trusted_root = *builder.root_public();
    let (client_e, server_e) = (
        SecretKey::generate(&mut OsRng),
        SecretKey::generate(&mut OsRng),
    );
    let (init, hello) = Initiator::new(config.clone(), client_e.clone())?;
    let (resp, server_hello) =
        Responder::new(identity.clone()).read_client_hello(&hello[7..], server_e.clone())?;
    let (_, finish) = init
        .read_server_hello(&server_hello[3..])?
        .finish(PAYLOAD)?;
    resp.read_client_finish(&finish[3..])?;
    Ok(Fixture {
        config,
        identity,
        client_e,
        server_e,
        hello,
        server_hello,
        finish,
    })
}

fn handshake(c: &mut Criterion) {
    let f = match fixture() {
        Ok(f) => f,
        Err(e) => panic!("fixture: {e}"),
    };
    let mut g = c.benchmark_group("noise_handshake");
    g.bench_function("initiator", |b| {
        b.iter(|| {
            let (init, hello) = Initiator::new(f.config.clone(), f.client_e.clone()).ok()?;
            let verified = init.read_server_hello(&f.server_hello[3..]).ok()?;
            let (t, finish) = verified.finish(PAYLOAD).ok()?;
            Some((hello, t, finish))
        })
    });
    g.bench_function("responder", |b| {
        b.iter(|| {
            let (resp, sh) = Responder::new(f.identity.clone())
                .read_client_hello(&f.hello[7..], f.server_e.clone())
                .ok()?;
            Some((sh, resp.read_client_finish(&f.finish[3..]).ok()?))
        })
    });
    g.finish();
}

fn transports() -> (Transport, Transport) {
    let f = match fixture() {
        Ok(f) => f,
        Err(e) => panic!("fixture: {e}"),
    };
    let run = || -> Result<(Transport, Transport), wuts::noise::Error> {
        let (init, _) = Initiator::new(f.config.clone(), f.client_e.clone())?;
        let (client, _) = init
            .read_server_hello(&f.server_hello[3..])?
            .finish(PAYLOAD)?;
        let (resp, _) = Responder::new(f.identity.clone())
            .read_client_hello(&f.hello[7..], f.server_e.clone())?;
        Ok((client, resp.read_client_finish(&f.finish[3..])?.transport))
    };
    match run() {
        Ok(t) => t,
        Err(e) => panic!("handshake: {e}"),
    }
}

fn nonce(n: u32) -> [u8; 12] {
    let mut b = [0; 12];
    b[8..].copy_from_slice(&n.to_be_bytes());
    b
}

/// Times opening `iters` frames of `size` plaintext bytes. Frames (ciphertext || tag) are
/// sealed in untimed batches, since each counter value needs its own ciphertext, then opened
/// in place under the clock.
fn time_open(
    iters: u64,
    size: usize,
    mut seal: impl FnMut(&mut [u8]),
    mut open: impl FnMut(&mut [u8]) -> bool,
) -> Duration {
    const BATCH: usize = 16;
    let mut frames: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0x5a; size + 16]).collect();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        for frame in frames.iter_mut().take(n) {
            frame.fill(0x5a);
            seal(frame);
        }
        let start = Instant::now();
        for frame in frames.iter_mut().take(n) {
            black_box(open(frame));
        }
        total += start.elapsed();
        left -= n as u64;
    }
    total
}

/// Seals `frame[..len-16]` in place with `tag` written to the last 16 bytes.
fn split_tag(frame: &mut [u8]) -> (&mut [u8], &mut [u8]) {
    let body = frame.len() - 16;
    frame.split_at_mut(body)
}

fn transport(c: &mut Criterion) {
    for size in [1024usize, 64 * 1024] {
        let label = if size == 1024 { "1KiB" } else { "64KiB" };
        let raw = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[7; 32]));

        let mut g = c.benchmark_group(format!("noise_seal_{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5a; size];
        let mut n = 0u32;
        g.bench_function("raw_aes_gcm", |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                raw.encrypt_in_place_detached(Nonce::from_slice(&nonce(n)), &[], &mut buf)
                    .ok()
            })
        });
        let (mut client, _) = transports();
        g.bench_function("transport", |b| {
            b.iter(|| client.seal_detached(&mut buf).ok())
        });
        // The engine's path: plaintext copied into a reused output buffer as a whole frame.
        let mut out = Vec::with_capacity(size + 32);
        g.bench_function("transport_seal_frame", |b| {
            b.iter(|| {
                out.clear();
                client.seal_frame(&buf, &mut out).ok()
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("noise_open_{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("raw_aes_gcm", |b| {
            let (mut sealed, mut opened) = (0u32, 0u32);
            b.iter_custom(|iters| {
                time_open(
                    iters,
                    size,
                    |frame| {
                        sealed = sealed.wrapping_add(1);
                        let (body, tag_out) = split_tag(frame);
                        let nonce = nonce(sealed);
                        if let Ok(tag) =
                            raw.encrypt_in_place_detached(Nonce::from_slice(&nonce), &[], body)
                        {
                            tag_out.copy_from_slice(&tag);
                        }
                    },
                    |frame| {
                        opened = opened.wrapping_add(1);
                        let (body, tag) = split_tag(frame);
                        raw.decrypt_in_place_detached(
                            Nonce::from_slice(&nonce(opened)),
                            &[],
                            body,
                            Tag::from_slice(tag),
                        )
                        .is_ok()
                    },
                )
            })
        });
        let (mut client, server) = transports();
        let (_, mut recv): (_, RecvCipher) = server.split();
        g.bench_function("transport", |b| {
            b.iter_custom(|iters| {
                time_open(
                    iters,
                    size,
                    |frame| {
                        let (body, tag_out) = split_tag(frame);
                        if let Ok(tag) = client.seal_detached(body) {
                            tag_out.copy_from_slice(&tag);
                        }
                    },
                    |frame| recv.open_in_place(frame).is_ok(),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, handshake, transport);

/// `criterion_main!`'s body, after saying whether this is a smoke run (without `--bench`,
/// Criterion runs each benchmark once as a test).
fn main() {
    mode::smoke("noise");
    benches();
    Criterion::default().configure_from_args().final_summary();
}
