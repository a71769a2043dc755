//! Events, from what happens on WhatsApp to what operators receive.
//!
//! - [`model`]: the stable names, the envelope `{id, event, timestamp, device_id, user_id,
//!   data}` and each event's `data`; [`group`]: the group events.
//! - [`EventSink`]: the one entry point. The device tasks call it as their events happen
//!   ([`crate::client::api::DeviceEvent`]); a group notification goes through
//!   [`EventSink::group_event`], which resolves only once the event is on disk, so the stanza
//!   is acknowledged to WhatsApp after that and a crash loses nothing.
//! - [`EventHub`] (`hub.rs`): names the owner, writes the durable outbox in the store (one
//!   fsync per batch), wakes the live streams and the delivery lanes.
//! - `deliver.rs`, `outbound.rs`, `sign.rs`: signed webhook deliveries with retries.
//! - [`webhook`]: webhook configurations and the rules they obey.
//! - [`ticket`]: short-lived, one-use stream tickets for browsers.
//!
//! This room holds no HTTP handlers: `http` configures and serves what it keeps.

mod deliver;
pub mod group;
mod hub;
pub mod model;
mod outbound;
pub mod sign;
mod stats;
pub mod ticket;
pub mod webhook;

use std::sync::{Arc, PoisonError, RwLock};

pub use self::deliver::{DeliveryRecord, DeliveryStatus, WebhookSettings};
/// The settings' home, as `http` re-exports it.
pub mod deliver_settings {
    pub use super::deliver::WebhookSettings;
}
pub use self::group::GroupEvent;
pub use self::hub::{EventHub, Live};
pub use self::model::{Envelope, EventData, EventName};
use crate::client::api::{BoxFuture, DeviceEvent, DeviceId};

/// Where events enter the pipeline.
pub trait EventSink: Send + Sync + 'static {
    /// A device event, in the order the device's task emits them. Must not block: the event is
    /// queued for the outbox writer.
    fn device_event(&self, device: DeviceId, event: &DeviceEvent);

    /// A group event; resolves once it is durable in the outbox. Acknowledge the notification
    /// that caused it only after.
    fn group_event(
        &self,
        device: DeviceId,
        event: GroupEvent,
    ) -> BoxFuture<'_, Result<(), wuts_store::Error>>;
}

/// A sink set once the gateway starts, shared by every device task (tasks restored before it
/// is set deliver nothing until then).
#[derive(Clone, Default)]
pub struct SinkSlot(Arc<RwLock<Option<Arc<dyn EventSink>>>>);

impl SinkSlot {
    /// Sets (or replaces) the sink.
    pub fn set(&self, sink: Arc<dyn EventSink>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// The sink, if set.
    pub fn get(&self) -> Option<Arc<dyn EventSink>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
