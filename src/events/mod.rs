//! Events, from what happens on WhatsApp to what operators receive: the device events the
//! registry emits ([`crate::client::api::DeviceEvent`]) today; the durable outbox, signed
//! webhook delivery with retries, and the resumable stream as they land. This room holds no
//! HTTP handlers: `http` configures and serves what it keeps.

/// The stable names of the device events, as the admin event stream sends them.
pub const DEVICE_EVENTS: [&str; 9] = [
    "state",
    "qr",
    "pairing_timed_out",
    "pairing_failed",
    "paired",
    "connected",
    "disconnected",
    "logged_out",
    "error",
];
