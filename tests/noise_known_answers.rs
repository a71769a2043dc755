//! Known answers from outside this codebase (shared/protocol/protocol-connection.md sec. 10):
//! the handshake captured from the real WhatsApp server, the real certificate chain under
//! WhatsApp's root, and the XEdDSA vector. These are the evidence that we match the real
//! server, since our own responder shares our code and cannot catch a mirrored mistake.

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod noise_support;

use noise_support::{TestResult, bytes, key, number};
use prost::Message;
use wuts::noise::cert::{Which, verify_chain};
use wuts::noise::{
    CertError, Error, Initiator, InitiatorConfig, KeyPair, PublicKey, SecretKey, WHATSAPP_ROOT_KEY,
    xeddsa,
};
use wuts::proto::wa6::HandshakeMessage;
use wuts::proto::wa6::handshake_message::ServerHello;

const HANDSHAKE: &str = include_str!("data/noise/real_handshake.txt");
const CHAIN: &str = include_str!("data/noise/real_cert_chain.txt");
const XEDDSA: &str = include_str!("data/noise/xeddsa.txt");

/// Inside both certificates' validity windows.
const CAPTURE_TIME: u64 = 1_750_000_000;

fn real_server_hello() -> Vec<u8> {
    HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(bytes(HANDSHAKE, "server_ephemeral")),
            r#static: Some(bytes(HANDSHAKE, "server_static_ciphertext")),
            payload: Some(bytes(HANDSHAKE, "cert_ciphertext")),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn whatsapp_root_key_constant_matches_the_facts_sheet() {
    assert_eq!(WHATSAPP_ROOT_KEY.to_bytes(), key(CHAIN, "root_key"));
}

#[test]
fn real_chain_verifies_under_the_whatsapp_root_with_its_exact_fields() -> TestResult {
    let leaf_key = PublicKey::from_bytes(key(CHAIN, "leaf_key"));
    let chain = verify_chain(
        &bytes(CHAIN, "chain"),
        &WHATSAPP_ROOT_KEY,
        &leaf_key,
        CAPTURE_TIME,
    )?;
    let i = &chain.intermediate;
    assert_eq!(u64::from(i.serial), number(CHAIN, "intermediate_serial"));
    assert_eq!(
        u64::from(i.issuer_serial),
        number(CHAIN, "intermediate_issuer_serial")
    );
    assert_eq!(i.key.to_bytes(), key(CHAIN, "intermediate_key"));
    assert_eq!(i.not_before, number(CHAIN, "intermediate_not_before"));
    assert_eq!(i.not_after, number(CHAIN, "intermediate_not_after"));
    let l = &chain.leaf;
    assert_eq!(u64::from(l.serial), number(CHAIN, "leaf_serial"));
    assert_eq!(
        u64::from(l.issuer_serial),
        number(CHAIN, "leaf_issuer_serial")
    );
    assert_eq!(l.key, leaf_key);
    assert_eq!(l.not_before, number(CHAIN, "leaf_not_before"));
    assert_eq!(l.not_after, number(CHAIN, "leaf_not_after"));
    Ok(())
}

#[test]
fn real_chain_fails_each_check_it_should() {
    let chain = bytes(CHAIN, "chain");
    let leaf_key = PublicKey::from_bytes(key(CHAIN, "leaf_key"));
    let other_root = KeyPair::from_secret(SecretKey::from_bytes([1; 32]));
    assert_eq!(
        verify_chain(&chain, other_root.public(), &leaf_key, CAPTURE_TIME),
        Err(CertError::IntermediateSignature)
    );
    let other_static = PublicKey::from_bytes([9; 32]);
    assert_eq!(
        verify_chain(&chain, &WHATSAPP_ROOT_KEY, &other_static, CAPTURE_TIME),
        Err(CertError::LeafKeyMismatch)
    );
    let after_leaf = number(CHAIN, "leaf_not_after") + 1;
    assert!(matches!(
        verify_chain(&chain, &WHATSAPP_ROOT_KEY, &leaf_key, after_leaf),
        Err(CertError::Expired {
            which: Which::Leaf,
            ..
        })
    ));
    let before_leaf = number(CHAIN, "leaf_not_before") - 1;
    assert!(matches!(
        verify_chain(&chain, &WHATSAPP_ROOT_KEY, &leaf_key, before_leaf),
        Err(CertError::NotYetValid {
            which: Which::Leaf,
            ..
        })
    ));
    let before_intermediate = number(CHAIN, "intermediate_not_before") - 1;
    assert!(matches!(
        verify_chain(&chain, &WHATSAPP_ROOT_KEY, &leaf_key, before_intermediate),
        Err(CertError::NotYetValid {
            which: Which::Intermediate,
            ..
        })
    ));
    // The leaf is signed by the intermediate, not by the root.
    let decoded = wuts::proto::wacert::CertChain::decode(&chain[..]).ok();
    let leaf = decoded.and_then(|c| c.leaf).unwrap_or_default();
    assert!(!xeddsa::verify(
        &WHATSAPP_ROOT_KEY,
        leaf.details.as_deref().unwrap_or_default(),
        leaf.signature.as_deref().unwrap_or_default(),
    ));
}

#[test]
fn every_flipped_byte_of_the_real_chain_is_rejected() {
    let chain = bytes(CHAIN, "chain");
    let leaf_key = PublicKey::from_bytes(key(CHAIN, "leaf_key"));
    for pos in 0..chain.len() {
        let mut bad = chain.clone();
        bad[pos] ^= 0x01;
        assert!(
            verify_chain(&bad, &WHATSAPP_ROOT_KEY, &leaf_key, CAPTURE_TIME).is_err(),
            "byte {pos} flipped was accepted"
        );
    }
}

#[test]
fn real_server_transcript_is_reproduced_through_the_public_api() -> TestResult {
    let ephemeral = SecretKey::from_bytes(key(HANDSHAKE, "client_ephemeral_priv"));
    assert_eq!(
        ephemeral.public_key().to_bytes(),
        key(HANDSHAKE, "client_ephemeral_pub")
    );
    let device = KeyPair::from_secret(SecretKey::from_bytes([3; 32]));
    let (init, hello) = Initiator::new(InitiatorConfig::new(device, CAPTURE_TIME), ephemeral)?;
    // Intro header, 3-byte length 36, clientHello { ephemeral } exactly as WhatsApp expects.
    let mut expected = vec![
        0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x24, 0x12, 0x22, 0x0a, 0x20,
    ];
    expected.extend(key(HANDSHAKE, "client_ephemeral_pub"));
    assert_eq!(hello, expected);

    let verified = init.read_server_hello(&real_server_hello())?;
    assert_eq!(
        verified.server_static().to_bytes(),
        key(HANDSHAKE, "server_static")
    );
    assert_eq!(verified.chain().leaf.serial, 329);
    // The capture ends here (the server's static secret is unknown); finishing still works.
    let (_transport, finish) = verified.finish(b"payload")?;
    assert_eq!(usize::from(finish[2]) + 3, finish.len());
    Ok(())
}

#[test]
fn real_transcript_with_a_flipped_byte_is_rejected() -> TestResult {
    let hello = real_server_hello();
    for pos in 0..hello.len() {
        let mut bad = hello.clone();
        bad[pos] ^= 0x01;
        let ephemeral = SecretKey::from_bytes(key(HANDSHAKE, "client_ephemeral_priv"));
        let device = KeyPair::from_secret(SecretKey::from_bytes([3; 32]));
        let (init, _) = Initiator::new(InitiatorConfig::new(device, CAPTURE_TIME), ephemeral)?;
        assert!(init.read_server_hello(&bad).is_err(), "byte {pos} accepted");
    }
    Ok(())
}

#[test]
fn real_transcript_under_another_root_names_the_intermediate_signature() -> TestResult {
    let ephemeral = SecretKey::from_bytes(key(HANDSHAKE, "client_ephemeral_priv"));
    let mut config = InitiatorConfig::new(
        KeyPair::from_secret(SecretKey::from_bytes([3; 32])),
        CAPTURE_TIME,
    );
    config.trusted_root = PublicKey::from_bytes([7; 32]);
    let (init, _) = Initiator::new(config, ephemeral)?;
    let err = init.read_server_hello(&real_server_hello()).err();
    assert!(matches!(
        err,
        Some(Error::CertChain(CertError::IntermediateSignature))
    ));
    Ok(())
}

#[test]
fn xeddsa_vector_signs_byte_for_byte_and_verifies() {
    let secret = SecretKey::from_bytes(key(XEDDSA, "priv"));
    assert_eq!(secret.public_key().to_bytes(), key(XEDDSA, "pub"));
    let message = bytes(XEDDSA, "message");
    let z = <[u8; 64]>::try_from(bytes(XEDDSA, "z")).unwrap_or([0; 64]);
    let sig = xeddsa::sign(&secret, &message, &z);
    assert_eq!(sig.to_vec(), bytes(XEDDSA, "sig"));
    assert_eq!(sig[63] >> 7, 1, "the vector exercises the sign bit");
    assert!(xeddsa::verify(&secret.public_key(), &message, &sig));
    assert!(!xeddsa::verify(&secret.public_key(), &message[1..], &sig));
}
