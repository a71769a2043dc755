//! The server certificate chain (facts sheet 3): verifying it on the device side and building
//! one for the sandbox server.
//!
//! We run whatsmeow's full set of checks in whatsmeow's order (the strictest reference;
//! Baileys skips the leaf-key binding and expiry, older whatsapp-rust skipped signatures). The
//! trusted root and the clock are inputs, so the sandbox can use its own root and tests can
//! move time. Signatures cover the `details` bytes exactly as received: they are decoded only
//! after (or beside) the check, never re-encoded.

use prost::Message;
use thiserror::Error;

use super::keys::{KeyPair, PublicKey};
use super::xeddsa::{self, SIGNATURE_LEN};
use crate::proto::wacert::CertChain;
use crate::proto::wacert::cert_chain::NoiseCertificate;
use crate::proto::wacert::cert_chain::noise_certificate::Details;

/// WhatsApp's root public key (serial 0, "WhatsAppLongTerm1"), identical in whatsmeow,
/// Baileys and whatsapp-rust. The default trust anchor for real connections.
pub const WHATSAPP_ROOT_KEY: PublicKey = PublicKey::from_bytes([
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
]);

/// Serial of the root: an intermediate must name it as its issuer.
pub const ROOT_SERIAL: u32 = 0;

/// Which certificate of the chain a check refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The intermediate, signed by the root.
    Intermediate,
    /// The leaf, signed by the intermediate; its key is the server's Noise static key.
    Leaf,
}

/// A failed certificate check; each variant names the check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertError {
    /// The payload is not a `CertChain` protobuf.
    #[error("certificate chain is not a valid CertChain protobuf")]
    Malformed,
    /// A certificate, its details or its signature is absent.
    #[error("{0:?} certificate is missing its {1}")]
    Missing(Which, &'static str),
    /// A signature is not 64 bytes.
    #[error("{which:?} signature has {len} bytes, expected 64")]
    SignatureLength {
        /// The certificate concerned.
        which: Which,
        /// Length found.
        len: usize,
    },
    /// The intermediate's signature does not verify under the trusted root.
    #[error("intermediate certificate is not signed by the trusted root")]
    IntermediateSignature,
    /// A `details` field is not a valid `Details` protobuf.
    #[error("{0:?} certificate details are malformed")]
    MalformedDetails(Which),
    /// The intermediate does not name the root (serial 0) as its issuer.
    #[error("intermediate issuer serial is {0}, expected 0")]
    IntermediateIssuerSerial(u32),
    /// A certificate key is not 32 bytes.
    #[error("{which:?} key has {len} bytes, expected 32")]
    KeyLength {
        /// The certificate concerned.
        which: Which,
        /// Length found.
        len: usize,
    },
    /// The leaf's signature does not verify under the intermediate's key.
    #[error("leaf certificate is not signed by the intermediate")]
    LeafSignature,
    /// `now` is before the certificate's `notBefore`.
    #[error("{which:?} certificate not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The certificate concerned.
        which: Which,
        /// Its `notBefore` (Unix seconds).
        not_before: u64,
        /// The time checked against.
        now: u64,
    },
    /// `now` is after the certificate's `notAfter` (an absent `notAfter` counts as 0).
    #[error("{which:?} certificate expired at {not_after} (now {now})")]
    Expired {
        /// The certificate concerned.
        which: Which,
        /// Its `notAfter` (Unix seconds).
        not_after: u64,
        /// The time checked against.
        now: u64,
    },
    /// The leaf's issuer serial is not the intermediate's serial.
    #[error("leaf issuer serial {got} does not match intermediate serial {expected}")]
    LeafIssuerSerial {
        /// The intermediate's serial.
        expected: u32,
        /// The leaf's issuer serial.
        got: u32,
    },
    /// The leaf's key is not the static key the server proved in the handshake.
    #[error("leaf key does not match the server's Noise static key")]
    LeafKeyMismatch,
}

/// The fields of one verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial number.
    pub serial: u32,
    /// Serial of the issuing certificate (0 = root).
    pub issuer_serial: u32,
    /// Certified X25519 key.
    pub key: PublicKey,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
}

/// A chain that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The intermediate certificate.
    pub intermediate: CertInfo,
    /// The leaf certificate (its key is the server static key).
    pub leaf: CertInfo,
}

/// Verifies a serialized `CertChain` against the trusted root, the server's static key and
/// the time `now` (Unix seconds). Checks run in whatsmeow's order; the first failure is
/// returned.
pub fn verify_chain(
    chain_bytes: &[u8],
    root: &PublicKey,
    server_static: &PublicKey,
    now: u64,
) -> Result<VerifiedChain, CertError> {
    use Which::{Intermediate, Leaf};
    let chain = CertChain::decode(chain_bytes).map_err(|_| CertError::Malformed)?;
    let (int_details, int_sig) = parts(chain.intermediate.as_ref(), Intermediate)?;
    let (leaf_details, leaf_sig) = parts(chain.leaf.as_ref(), Leaf)?;

    if !xeddsa::verify(root, int_details, int_sig) {
        return Err(CertError::IntermediateSignature);
    }
    let intermediate = info(int_details, Intermediate)?;
    if intermediate.issuer_serial != ROOT_SERIAL {
        return Err(CertError::IntermediateIssuerSerial(
            intermediate.issuer_serial,
        ));
    }
    if !xeddsa::verify(&intermediate.key, leaf_details, leaf_sig) {
        return Err(CertError::LeafSignature);
    }
    check_validity(&intermediate, Intermediate, now)?;
    let leaf = info(leaf_details, Leaf)?;
    if leaf.issuer_serial != intermediate.serial {
        return Err(CertError::LeafIssuerSerial {
            expected: intermediate.serial,
            got: leaf.issuer_serial,
        });
    }
    if leaf.key != *server_static {
        return Err(CertError::LeafKeyMismatch);
    }
    check_validity(&leaf, Leaf, now)?;
    Ok(VerifiedChain { intermediate, leaf })
}

/// The raw details bytes and the 64-byte signature of one certificate.
fn parts(cert: Option<&NoiseCertificate>, which: Which) -> Result<(&[u8], &[u8]), CertError> {
    let cert = cert.ok_or(CertError::Missing(which, "certificate"))?;
    let details = cert
        .details
        .as_deref()
        .ok_or(CertError::Missing(which, "details"))?;
    let sig = cert
        .signature
        .as_deref()
        .ok_or(CertError::Missing(which, "signature"))?;
    if sig.len() != SIGNATURE_LEN {
        return Err(CertError::SignatureLength {
            which,
            len: sig.len(),
        });
    }
    Ok((details, sig))
}

/// Decodes `Details`; absent numeric fields read as 0, as in whatsmeow.
fn info(details: &[u8], which: Which) -> Result<CertInfo, CertError> {
    let d = Details::decode(details).map_err(|_| CertError::MalformedDetails(which))?;
    let key_bytes = d.key.unwrap_or_default();
    let key = PublicKey::from_slice(&key_bytes).ok_or(CertError::KeyLength {
        which,
        len: key_bytes.len(),
    })?;
    Ok(CertInfo {
        serial: d.serial.unwrap_or_default(),
        issuer_serial: d.issuer_serial.unwrap_or_default(),
        key,
        not_before: d.not_before.unwrap_or_default(),
        not_after: d.not_after.unwrap_or_default(),
    })
}

fn check_validity(cert: &CertInfo, which: Which, now: u64) -> Result<(), CertError> {
    if now < cert.not_before {
        return Err(CertError::NotYetValid {
            which,
            not_before: cert.not_before,
            now,
        });
    }
    if now > cert.not_after {
        return Err(CertError::Expired {
            which,
            not_after: cert.not_after,
            now,
        });
    }
    Ok(())
}

impl CertInfo {
    /// Serializes these fields as a `Details` protobuf (the bytes that get signed).
    pub fn encode_details(&self) -> Vec<u8> {
        Details {
            serial: Some(self.serial),
            issuer_serial: Some(self.issuer_serial),
            key: Some(self.key.as_bytes().to_vec()),
            not_before: Some(self.not_before),
            not_after: Some(self.not_after),
        }
        .encode_to_vec()
    }
}

/// Signs `details` with `signer` and wraps both in a `NoiseCertificate`.
pub fn sign_certificate(
    details: Vec<u8>,
    signer: &KeyPair,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> NoiseCertificate {
    let signature = xeddsa::sign_with_rng(signer.secret(), &details, rng);
    NoiseCertificate {
        details: Some(details),
        signature: Some(signature.to_vec()),
    }
}

/// Serializes a chain from its two certificates.
pub fn encode_chain(leaf: NoiseCertificate, intermediate: NoiseCertificate) -> Vec<u8> {
    CertChain {
        leaf: Some(leaf),
        intermediate: Some(intermediate),
    }
    .encode_to_vec()
}

/// Builds certificate chains for a server we run (the sandbox): a root key pair signs an
/// intermediate (issuer serial 0), which signs a leaf for each server static key.
#[derive(Debug, Clone)]
pub struct CertChainBuilder {
    root: KeyPair,
    intermediate: KeyPair,
    /// Serial of the intermediate (the leaf's issuer serial).
    pub intermediate_serial: u32,
    /// Serial given to leaves.
    pub leaf_serial: u32,
    /// `notBefore` of both certificates, Unix seconds.
    pub not_before: u64,
    /// `notAfter` of both certificates, Unix seconds.
    pub not_after: u64,
}

impl CertChainBuilder {
    /// A builder with serials 1 (intermediate) and 2 (leaf), valid from 0 to `u64::MAX`:
    /// tests narrow the window by setting the public fields.
    pub fn new(root: KeyPair, intermediate: KeyPair) -> Self {
        Self {
            root,
            intermediate,
            intermediate_serial: 1,
            leaf_serial: 2,
            not_before: 0,
            not_after: u64::MAX,
        }
    }

    /// The root public key clients must trust.
    pub fn root_public(&self) -> &PublicKey {
        self.root.public()
    }

    /// A serialized `CertChain` certifying `server_static`.
    pub fn build(
        &self,
        server_static: &PublicKey,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Vec<u8> {
        let intermediate = CertInfo {
            serial: self.intermediate_serial,
            issuer_serial: ROOT_SERIAL,
            key: *self.intermediate.public(),
            not_before: self.not_before,
            not_after: self.not_after,
        };
        let leaf = CertInfo {
            serial: self.leaf_serial,
            issuer_serial: self.intermediate_serial,
            key: *server_static,
            not_before: self.not_before,
            not_after: self.not_after,
        };
        let int_cert = sign_certificate(intermediate.encode_details(), &self.root, rng);
        let leaf_cert = sign_certificate(leaf.encode_details(), &self.intermediate, rng);
        encode_chain(leaf_cert, int_cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::keys::SecretKey;

    /// A fixed-output "RNG": signing randomness only hedges the nonce, any bytes verify.
    struct Fixed;

    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            7
        }
        fn next_u64(&mut self) -> u64 {
            7
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(7);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(7);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for Fixed {}

    fn pair(seed: u8) -> KeyPair {
        KeyPair::from_secret(SecretKey::from_bytes([seed; 32]))
    }

    fn info(key: PublicKey, serial: u32, issuer_serial: u32) -> CertInfo {
        CertInfo {
            serial,
            issuer_serial,
            key,
            not_before: 0,
            not_after: 10,
        }
    }

    #[test]
    fn builder_chain_verifies_with_issuer_serial_zero() {
        let builder = CertChainBuilder::new(pair(1), pair(2));
        let server = pair(3);
        let chain = builder.build(server.public(), &mut Fixed);
        let v = verify_chain(&chain, builder.root_public(), server.public(), 5);
        assert_eq!(
            v.map(|c| (c.intermediate.issuer_serial, c.leaf.issuer_serial)),
            Ok((0, 1))
        );
    }

    #[test]
    fn names_missing_parts_and_bad_lengths() {
        let (root, inter, server) = (pair(1), pair(2), pair(3));
        let good_int = sign_certificate(
            info(*inter.public(), 1, 0).encode_details(),
            &root,
            &mut Fixed,
        );
        let good_leaf = sign_certificate(
            info(*server.public(), 2, 1).encode_details(),
            &inter,
            &mut Fixed,
        );
        let check = |leaf: NoiseCertificate, int: NoiseCertificate| {
            verify_chain(&encode_chain(leaf, int), root.public(), server.public(), 5).err()
        };
        assert_eq!(check(good_leaf.clone(), good_int.clone()), None);

        let mut no_sig = good_leaf.clone();
        no_sig.signature = None;
        assert_eq!(
            check(no_sig, good_int.clone()),
            Some(CertError::Missing(Which::Leaf, "signature"))
        );
        let mut short_sig = good_int.clone();
        short_sig.signature = Some(vec![0; 63]);
        assert_eq!(
            check(good_leaf.clone(), short_sig),
            Some(CertError::SignatureLength {
                which: Which::Intermediate,
                len: 63
            })
        );
        let short_key = Details {
            key: Some(vec![1; 31]),
            ..Details::default()
        };
        let int = sign_certificate(short_key.encode_to_vec(), &root, &mut Fixed);
        assert_eq!(
            check(good_leaf.clone(), int),
            Some(CertError::KeyLength {
                which: Which::Intermediate,
                len: 31
            })
        );
        let mut details = info(*inter.public(), 1, 0).encode_details();
        details.truncate(details.len() - 12); // cuts into the key field
        let int = sign_certificate(details, &root, &mut Fixed);
        assert_eq!(
            check(good_leaf, int),
            Some(CertError::MalformedDetails(Which::Intermediate))
        );
    }

    #[test]
    fn absent_not_after_counts_as_expired() {
        let (root, inter, server) = (pair(1), pair(2), pair(3));
        let int_details = Details {
            serial: Some(1),
            issuer_serial: Some(0),
            key: Some(inter.public().as_bytes().to_vec()),
            not_before: None,
            not_after: None,
        }
        .encode_to_vec();
        let int = sign_certificate(int_details, &root, &mut Fixed);
        let leaf = sign_certificate(
            info(*server.public(), 2, 1).encode_details(),
            &inter,
            &mut Fixed,
        );
        assert!(matches!(
            verify_chain(&encode_chain(leaf, int), root.public(), server.public(), 5),
            Err(CertError::Expired {
                which: Which::Intermediate,
                not_after: 0,
                ..
            })
        ));
    }
}
