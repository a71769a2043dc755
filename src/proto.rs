//! Protobuf messages generated from `proto/*.proto` by prost (never edited by hand).
//!
//! One module per proto package. Field numbers follow `shared/protocol/proto-fields.md`.
//! Fields that carry signed or HMACed inner messages (`details`, `deviceProps`) are plain
//! `bytes`: callers verify the exact received bytes and decode them afterwards, never a
//! re-serialisation.

/// Handshake carriage (`HandshakeMessage`) and the login/registration `ClientPayload`.
#[allow(clippy::all, missing_docs)]
pub mod wa6 {
    include!(concat!(env!("OUT_DIR"), "/wa6.rs"));
}

/// Server certificate chain (`CertChain`) sent inside the Noise handshake.
#[allow(clippy::all, missing_docs)]
pub mod wacert {
    include!(concat!(env!("OUT_DIR"), "/wacert.rs"));
}

/// Companion registration properties (`DeviceProps`, `ClientPairingProps`).
#[allow(clippy::all, missing_docs)]
pub mod wacompanionreg {
    include!(concat!(env!("OUT_DIR"), "/wacompanionreg.rs"));
}

/// ADV device identity messages exchanged during pairing.
#[allow(clippy::all, missing_docs)]
pub mod waadv {
    include!(concat!(env!("OUT_DIR"), "/waadv.rs"));
}
