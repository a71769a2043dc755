//! Random and hostile bytes never panic any decoder or handshake step, and framing is
//! independent of how the stream is chunked.

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod noise_support;

use noise_support::{Sandbox, TestRng};
use proptest::prelude::*;
use wuts::noise::cert::verify_chain;
use wuts::noise::frame::{write_frame, write_intro};
use wuts::noise::{FrameDecoder, Initiator, PublicKey, Responder, xeddsa};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), intro in any::<bool>()) {
        let mut dec = if intro { FrameDecoder::expecting_intro() } else { FrameDecoder::new() };
        dec.feed(&data);
        for _ in 0..data.len() + 1 {
            match dec.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let _ = dec.finish();
    }

    #[test]
    fn frames_survive_any_chunking(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        routing in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        cuts in proptest::collection::vec(1usize..64, 1..20),
    ) {
        let mut wire = Vec::new();
        prop_assert!(write_intro(routing.as_deref(), &mut wire).is_ok());
        for p in &payloads {
            prop_assert!(write_frame(p, &mut wire).is_ok());
        }
        let mut dec = FrameDecoder::expecting_intro();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            dec.feed(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            while let Some(f) = dec.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(dec.routing_info(), routing.as_deref());
        prop_assert!(dec.finish().is_ok());
    }

    #[test]
    fn handshake_steps_reject_random_messages_without_panicking(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let sandbox = Sandbox::new(&mut rng);
        let config = sandbox.client_config(&mut rng, 1_750_000_000);
        let (init, hello) = Initiator::new(config, rng.secret())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(init.read_server_hello(&data).is_err());
        // A responder that got a real hello, then random bytes as the finish.
        let resp = Responder::new(sandbox.identity.clone());
        let _ = Responder::new(sandbox.identity.clone()).read_client_hello(&data, rng.secret());
        let (awaiting, _) = resp
            .read_client_hello(&hello[7..], rng.secret())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(awaiting.read_client_finish(&data).is_err());
    }

    #[test]
    fn chain_and_signature_checks_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        key in any::<[u8; 32]>(),
    ) {
        let k = PublicKey::from_bytes(key);
        prop_assert!(verify_chain(&data, &k, &k, 0).is_err());
        let sig_len = data.len().min(64);
        let _ = xeddsa::verify(&k, &data, &data[..sig_len]);
    }
}
