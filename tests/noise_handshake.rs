//! Initiator against responder in memory, through the public API only: transport in both
//! directions, tampering, certificate failures, framing failures.

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod noise_support;

use noise_support::{Sandbox, TestResult, TestRng, handshake};
use wuts::noise::cert::{Which, encode_chain, sign_certificate};
use wuts::noise::{
    CertError, CertInfo, Error, FrameDecoder, FrameError, Initiator, Responder, ServerIdentity,
};

const NOW: u64 = 1_750_000_000;

fn no_tamper(_: usize, _: &mut Vec<u8>) {}

#[test]
fn handshake_completes_and_transport_works_both_ways() -> TestResult {
    let mut rng = TestRng::new(1);
    let sandbox = Sandbox::new(&mut rng);
    let config = sandbox.client_config(&mut rng, NOW);
    let client_static = *config.static_keypair.public();
    let mut done = handshake(
        config,
        &sandbox.identity,
        &mut rng,
        b"client payload",
        &mut no_tamper,
    )?;
    assert_eq!(done.server_saw_static, client_static);
    assert_eq!(done.server_saw_payload, b"client payload");

    // Interleaved traffic, each side decoding a stream of frames.
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for i in 0..50usize {
        done.client
            .seal_frame(&vec![i as u8; i * 37], &mut to_server)?;
        done.server
            .seal_frame(&vec![!(i as u8); i * 11 + 1], &mut to_client)?;
    }
    let mut server_in = FrameDecoder::new();
    let mut client_in = FrameDecoder::new();
    // Feed in awkward chunks to exercise reassembly.
    for chunk in to_server.chunks(97) {
        server_in.feed(chunk);
    }
    for chunk in to_client.chunks(13) {
        client_in.feed(chunk);
    }
    for i in 0..50usize {
        let frame = server_in.next_frame()?.ok_or("missing frame to server")?;
        assert_eq!(
            done.server.open_in_place(frame)?,
            &vec![i as u8; i * 37][..]
        );
        let frame = client_in.next_frame()?.ok_or("missing frame to client")?;
        assert_eq!(
            done.client.open_in_place(frame)?,
            &vec![!(i as u8); i * 11 + 1][..]
        );
    }
    assert!(server_in.next_frame()?.is_none());
    server_in.finish()?;
    client_in.finish()?;
    Ok(())
}

#[test]
fn split_halves_work_independently() -> TestResult {
    let mut rng = TestRng::new(2);
    let sandbox = Sandbox::new(&mut rng);
    let config = sandbox.client_config(&mut rng, NOW);
    let done = handshake(config, &sandbox.identity, &mut rng, b"", &mut no_tamper)?;
    let (mut c_send, mut c_recv) = done.client.split();
    let (mut s_send, mut s_recv) = done.server.split();
    let mut buf = b"ping".to_vec();
    c_send.seal(&mut buf)?;
    s_recv.open(&mut buf)?;
    assert_eq!(buf, b"ping");
    let mut buf = b"pong".to_vec();
    s_send.seal(&mut buf)?;
    c_recv.open(&mut buf)?;
    assert_eq!(buf, b"pong");
    assert_eq!(
        (c_send.frames_sent(), c_recv.frames_received()),
        (Some(1), Some(1))
    );
    Ok(())
}

#[test]
fn transport_rejects_replayed_reordered_and_cross_direction_frames() -> TestResult {
    let mut rng = TestRng::new(3);
    let sandbox = Sandbox::new(&mut rng);
    let config = sandbox.client_config(&mut rng, NOW);
    let mut done = handshake(config, &sandbox.identity, &mut rng, b"", &mut no_tamper)?;
    let mut first = b"first".to_vec();
    done.client.seal(&mut first)?;
    let mut second = b"second".to_vec();
    done.client.seal(&mut second)?;
    // Reordered: the second frame under the first counter fails, and the receiver is dead.
    let mut reordered = second.clone();
    assert!(matches!(
        done.server.open(&mut reordered),
        Err(Error::Decrypt)
    ));
    assert!(matches!(done.server.open(&mut first), Err(Error::Decrypt)));
    // A frame reflected back to its sender fails (keys differ per direction).
    let mut reflected = b"echo".to_vec();
    done.server.seal(&mut reflected)?;
    let mut copy = reflected.clone();
    assert!(done.server.open(&mut copy).is_err());
    Ok(())
}

#[test]
fn tampering_any_byte_of_any_handshake_message_is_rejected() -> TestResult {
    let mut rng = TestRng::new(4);
    let sandbox = Sandbox::new(&mut rng);
    let config = sandbox.client_config(&mut rng, NOW);
    let clean = handshake(
        config.clone(),
        &sandbox.identity,
        &mut rng,
        b"payload",
        &mut no_tamper,
    )?;
    let lens = [
        clean.wire.hello.len(),
        clean.wire.server_hello.len(),
        clean.wire.finish.len(),
    ];
    let mut checked = 0;
    for (msg, &len) in lens.iter().enumerate() {
        for pos in 0..len {
            for flip in [0x01u8, 0x80] {
                let mut tamper = |i: usize, bytes: &mut Vec<u8>| {
                    if i == msg {
                        bytes[pos] ^= flip;
                    }
                };
                let result = handshake(
                    config.clone(),
                    &sandbox.identity,
                    &mut rng,
                    b"payload",
                    &mut tamper,
                );
                assert!(
                    result.is_err(),
                    "message {msg}, byte {pos}, flip {flip:#04x} was accepted"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 2 * (48 + 300 + 100));
    Ok(())
}

#[test]
fn truncated_and_extended_handshake_messages_are_rejected() -> TestResult {
    let mut rng = TestRng::new(5);
    let sandbox = Sandbox::new(&mut rng);
    let config = sandbox.client_config(&mut rng, NOW);
    for msg in 0..3 {
        for cut in [1usize, 2, 16, 17] {
            let mut tamper = |i: usize, bytes: &mut Vec<u8>| {
                if i == msg {
                    bytes.truncate(bytes.len().saturating_sub(cut));
                }
            };
            let r = handshake(
                config.clone(),
                &sandbox.identity,
                &mut rng,
                b"p",
                &mut tamper,
            );
            assert!(r.is_err(), "message {msg} cut by {cut} accepted");
        }
        let mut extend = |i: usize, bytes: &mut Vec<u8>| {
            if i == msg {
                bytes.push(0);
            }
        };
        let r = handshake(
            config.clone(),
            &sandbox.identity,
            &mut rng,
            b"p",
            &mut extend,
        );
        assert!(r.is_err(), "message {msg} with a trailing byte accepted");
    }
    Ok(())
}

fn cert_error(r: Result<noise_support::Done, Error>) -> Option<CertError> {
    match r {
        Err(Error::CertChain(e)) => Some(e),
        _ => None,
    }
}

#[test]
fn wrong_root_is_rejected_naming_the_intermediate_signature() -> TestResult {
    let mut rng = TestRng::new(6);
    let sandbox = Sandbox::new(&mut rng);
    let mut config = sandbox.client_config(&mut rng, NOW);
    config.trusted_root = *rng.keypair().public();
    let r = handshake(config, &sandbox.identity, &mut rng, b"", &mut no_tamper);
    assert_eq!(cert_error(r), Some(CertError::IntermediateSignature));
    Ok(())
}

#[test]
fn real_whatsapp_root_rejects_the_sandbox_chain() -> TestResult {
    let mut rng = TestRng::new(7);
    let sandbox = Sandbox::new(&mut rng);
    let mut config = sandbox.client_config(&mut rng, NOW);
    config.trusted_root = wuts::noise::WHATSAPP_ROOT_KEY;
    let r = handshake(config, &sandbox.identity, &mut rng, b"", &mut no_tamper);
    assert_eq!(cert_error(r), Some(CertError::IntermediateSignature));
    Ok(())
}

#[test]
fn expired_and_not_yet_valid_chains_are_rejected() -> TestResult {
    let mut rng = TestRng::new(8);
    let mut sandbox = Sandbox::new(&mut rng);
    sandbox.builder.not_before = NOW - 100;
    sandbox.builder.not_after = NOW + 100;
    let server_static = rng.keypair();
    sandbox.identity = ServerIdentity::generate(&sandbox.builder, server_static, &mut rng);
    let ok = sandbox.client_config(&mut rng, NOW + 100);
    assert!(handshake(ok, &sandbox.identity, &mut rng, b"", &mut no_tamper).is_ok());
    // The intermediate is checked first (whatsmeow order), so a chain whose two certificates
    // share a window reports the intermediate.
    let late = sandbox.client_config(&mut rng, NOW + 101);
    let r = handshake(late, &sandbox.identity, &mut rng, b"", &mut no_tamper);
    assert!(matches!(
        cert_error(r),
        Some(CertError::Expired { which: Which::Intermediate, not_after, now })
            if not_after == NOW + 100 && now == NOW + 101
    ));
    let early = sandbox.client_config(&mut rng, NOW - 101);
    let r = handshake(early, &sandbox.identity, &mut rng, b"", &mut no_tamper);
    assert!(matches!(
        cert_error(r),
        Some(CertError::NotYetValid {
            which: Which::Intermediate,
            ..
        })
    ));
    Ok(())
}

/// A server identity whose chain is assembled by hand, so single fields can be wrong.
struct HandChain {
    root: wuts::noise::KeyPair,
    inter: wuts::noise::KeyPair,
    server: wuts::noise::KeyPair,
    inter_info: CertInfo,
    leaf_info: CertInfo,
}

impl HandChain {
    fn new(rng: &mut TestRng) -> Self {
        let (root, inter, server) = (rng.keypair(), rng.keypair(), rng.keypair());
        let inter_info = CertInfo {
            serial: 7,
            issuer_serial: 0,
            key: *inter.public(),
            not_before: NOW - 1000,
            not_after: NOW + 1000,
        };
        let leaf_info = CertInfo {
            serial: 8,
            issuer_serial: 7,
            key: *server.public(),
            not_before: NOW - 10,
            not_after: NOW + 10,
        };
        Self {
            root,
            inter,
            server,
            inter_info,
            leaf_info,
        }
    }

    fn run(
        &self,
        rng: &mut TestRng,
        leaf_signer: Option<&wuts::noise::KeyPair>,
    ) -> Option<CertError> {
        let int_cert = sign_certificate(self.inter_info.encode_details(), &self.root, rng);
        let leaf_cert = sign_certificate(
            self.leaf_info.encode_details(),
            leaf_signer.unwrap_or(&self.inter),
            rng,
        );
        let identity = ServerIdentity::new(self.server.clone(), encode_chain(leaf_cert, int_cert));
        let mut config = wuts::noise::InitiatorConfig::new(rng.keypair(), NOW);
        config.trusted_root = *self.root.public();
        cert_error(handshake(config, &identity, rng, b"", &mut no_tamper))
    }
}

#[test]
fn hand_built_chain_passes_then_each_broken_field_names_its_check() {
    let mut rng = TestRng::new(9);
    let base = HandChain::new(&mut rng);
    assert_eq!(base.run(&mut rng, None), None);

    let mut c = HandChain::new(&mut rng);
    c.leaf_info.key = *rng.keypair().public();
    assert_eq!(c.run(&mut rng, None), Some(CertError::LeafKeyMismatch));

    let mut c = HandChain::new(&mut rng);
    c.leaf_info.issuer_serial = 6;
    assert_eq!(
        c.run(&mut rng, None),
        Some(CertError::LeafIssuerSerial {
            expected: 7,
            got: 6
        })
    );

    let mut c = HandChain::new(&mut rng);
    c.inter_info.issuer_serial = 1;
    assert_eq!(
        c.run(&mut rng, None),
        Some(CertError::IntermediateIssuerSerial(1))
    );

    let c = HandChain::new(&mut rng);
    let root = c.root.clone();
    assert_eq!(c.run(&mut rng, Some(&root)), Some(CertError::LeafSignature));

    let mut c = HandChain::new(&mut rng);
    c.leaf_info.not_after = NOW - 1;
    assert!(matches!(
        c.run(&mut rng, None),
        Some(CertError::Expired {
            which: Which::Leaf,
            ..
        })
    ));

    let mut c = HandChain::new(&mut rng);
    c.leaf_info.not_before = NOW + 1;
    assert!(matches!(
        c.run(&mut rng, None),
        Some(CertError::NotYetValid {
            which: Which::Leaf,
            ..
        })
    ));
}

#[test]
fn mismatched_static_key_is_rejected() -> TestResult {
    // The chain certifies one key, the server runs Noise with another.
    let mut rng = TestRng::new(10);
    let sandbox = Sandbox::new(&mut rng);
    let impostor = ServerIdentity::new(rng.keypair(), sandbox.identity.cert_chain().to_vec());
    let config = sandbox.client_config(&mut rng, NOW);
    let r = handshake(config, &impostor, &mut rng, b"", &mut no_tamper);
    assert_eq!(cert_error(r), Some(CertError::LeafKeyMismatch));
    Ok(())
}

#[test]
fn malformed_and_incomplete_chains_are_rejected() -> TestResult {
    let mut rng = TestRng::new(11);
    let sandbox = Sandbox::new(&mut rng);
    let server = rng.keypair();
    for (chain, want) in [
        (vec![0xff, 0xff], CertError::Malformed),
        (
            Vec::new(),
            CertError::Missing(Which::Intermediate, "certificate"),
        ),
    ] {
        let identity = ServerIdentity::new(server.clone(), chain);
        let config = sandbox.client_config(&mut rng, NOW);
        let r = handshake(config, &identity, &mut rng, b"", &mut no_tamper);
        assert_eq!(cert_error(r), Some(want));
    }
    Ok(())
}

#[test]
fn routing_info_reaches_the_server_decoder_and_not_the_prologue() -> TestResult {
    let mut rng = TestRng::new(12);
    let sandbox = Sandbox::new(&mut rng);
    let mut config = sandbox.client_config(&mut rng, NOW);
    config.routing_info = Some(vec![8, 0, 9, 1, 2, 3]);
    let (init, hello) = Initiator::new(config, rng.secret())?;
    assert_eq!(hello[..10], [0x45, 0x44, 0, 1, 0, 0, 6, 8, 0, 9]);
    let mut server_in = FrameDecoder::expecting_intro();
    server_in.feed(&hello);
    let frame = server_in.next_frame()?.ok_or("no hello frame")?.to_vec();
    assert_eq!(server_in.routing_info(), Some(&[8, 0, 9, 1, 2, 3][..]));
    let (_, server_hello) =
        Responder::new(sandbox.identity.clone()).read_client_hello(&frame, rng.secret())?;
    let mut client_in = FrameDecoder::new();
    client_in.feed(&server_hello);
    let frame = client_in.next_frame()?.ok_or("no server hello")?;
    init.read_server_hello(frame)?;
    Ok(())
}

#[test]
fn responder_refuses_ik_resumption_and_wrong_messages() -> TestResult {
    use prost::Message;
    use wuts::proto::wa6::HandshakeMessage;
    use wuts::proto::wa6::handshake_message::{ClientHello, ServerHello};
    let mut rng = TestRng::new(13);
    let sandbox = Sandbox::new(&mut rng);
    let ik = HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(vec![9; 32]),
            r#static: Some(vec![0; 48]),
            payload: Some(vec![0; 20]),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let r = Responder::new(sandbox.identity.clone()).read_client_hello(&ik, rng.secret());
    assert!(matches!(r, Err(Error::ResumptionUnsupported)));
    let wrong = HandshakeMessage {
        server_hello: Some(ServerHello::default()),
        ..Default::default()
    }
    .encode_to_vec();
    let r = Responder::new(sandbox.identity.clone()).read_client_hello(&wrong, rng.secret());
    assert!(matches!(r, Err(Error::MissingField("clientHello"))));
    let short = HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(vec![9; 31]),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let r = Responder::new(sandbox.identity.clone()).read_client_hello(&short, rng.secret());
    assert!(matches!(
        r,
        Err(Error::FieldLength {
            expected: 32,
            got: 31,
            ..
        })
    ));
    let low_order = HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(vec![0; 32]),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let r = Responder::new(sandbox.identity.clone()).read_client_hello(&low_order, rng.secret());
    assert!(matches!(r, Err(Error::WeakKey(_))));
    Ok(())
}

#[test]
fn oversized_and_truncated_frames_are_errors() {
    let mut dec = FrameDecoder::new().with_max_frame_len(1024);
    dec.feed(&[0x00, 0x04, 0x01]);
    assert_eq!(
        dec.next_frame(),
        Err(FrameError::TooLarge {
            len: 1025,
            max: 1024
        })
    );
    // The decoder stays failed.
    dec.feed(&[0; 2000]);
    assert!(dec.next_frame().is_err());

    let mut dec = FrameDecoder::expecting_intro();
    dec.feed(&[0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x10, 1, 2, 3]);
    assert_eq!(dec.next_frame(), Ok(None));
    assert_eq!(
        dec.finish(),
        Err(FrameError::Truncated {
            buffered: 6,
            expected: 19
        })
    );
    let mut dec = FrameDecoder::expecting_intro();
    dec.feed(&[0x45, 0x44, 0x00, 0x01, 0xff, 0xff, 0xff]);
    assert!(matches!(dec.next_frame(), Err(FrameError::TooLarge { .. })));
}
