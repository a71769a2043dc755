//! Why a pairing failed (by QR code or by phone-number code), apart from the phone's checks in
//! `pairing` so that file stays readable.

use thiserror::Error;

/// Why a pairing failed. The phone shows "couldn't link device" for all of them.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingError {
    /// The QR text is not a companion QR code (the reason is named).
    #[error("QR code is malformed: {0}")]
    BadQr(&'static str),
    /// The phone number is not a valid international number (digits only, 7 to 15, no
    /// leading zero).
    #[error("not a valid phone number: {0:?}")]
    BadPhone(String),
    /// The phone's number is configured as not on WhatsApp, so it cannot scan.
    #[error("phone {0} is not on WhatsApp")]
    PhoneNotOnWhatsApp(String),
    /// No connection is waiting with this ref (never issued, already used, or closed).
    #[error("no pairing is waiting for this QR code's ref")]
    UnknownRef,
    /// The ref's display window has passed (60 s for the first, 20 s for the others).
    #[error("the QR code's ref has expired")]
    RefExpired,
    /// The QR's noise key is not the static key of the connection that received the ref.
    #[error("the QR code's noise key is not the key of the connection that showed it")]
    NoiseKeyMismatch,
    /// The QR's identity key is not the identity key registered on that connection.
    #[error("the QR code's identity key is not the one the companion registered")]
    IdentityKeyMismatch,
    /// The companion answered `pair-success` with an error IQ.
    #[error("the companion refused pair-success: {code} {text}")]
    Refused {
        /// The error code it sent (401 `hmac-mismatch`, 401 `signature-mismatch`, ...).
        code: u16,
        /// The error text it sent.
        text: String,
    },
    /// The `pair-device-sign` reply is not in the expected shape (the part is named).
    #[error("pair-device-sign is malformed: {0}")]
    Malformed(&'static str),
    /// The `key-index` attribute is missing or not the one the phone issued.
    #[error("pair-device-sign key-index is {got:?}, expected {expected}")]
    KeyIndex {
        /// The key index in the signed details.
        expected: u32,
        /// The attribute as received.
        got: Option<String>,
    },
    /// The signed details differ from those the phone sent.
    #[error("pair-device-sign changed the signed device identity details")]
    DetailsChanged,
    /// The account signature differs from the phone's.
    #[error("pair-device-sign changed the account signature")]
    AccountSignatureChanged,
    /// An account signature key is present and is not the account's.
    #[error("pair-device-sign carries a foreign account signature key")]
    AccountKeyChanged,
    /// The device signature does not verify under the companion's identity key.
    #[error("the companion's device signature does not verify")]
    DeviceSignature,
    /// The companion's connection closed before it answered.
    #[error("the companion's connection closed before pairing finished")]
    ConnectionClosed,
    /// The companion did not answer `pair-success` in time.
    #[error("the companion did not answer pair-success in time")]
    Timeout,
    /// The typed text is not a pairing code.
    #[error("not a pairing code: 8 characters of 1-9 and A-Z without I, O and U")]
    BadCode,
    /// No companion asked for a code for this phone number (or its connection closed).
    #[error("no companion is waiting for a pairing code for {0}")]
    NoPairingCode(String),
    /// The companion's code is past its validity.
    #[error("the pairing code has expired")]
    CodeExpired,
    /// The code typed is not the companion's (its key bundle did not open); it may be typed
    /// again while valid.
    #[error("wrong pairing code")]
    WrongCode,
    /// The companion's finish is not in the expected shape or names another companion.
    #[error("the companion's finish is invalid: {0}")]
    BadFinish(&'static str),
}
