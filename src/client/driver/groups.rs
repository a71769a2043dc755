//! Group notifications on their way to operators: written to the outbox before WhatsApp gets
//! the acknowledgement (the connection holds it until [`Driver::record_groups`] says so).

use super::Driver;

impl Driver {
    /// Writes a notification's group events to the outbox; `true` once they are durable (or
    /// when no pipeline is attached: nothing would keep them then).
    pub(super) async fn record_groups(&self, events: &[crate::ops::groups::GroupEvent]) -> bool {
        let Some((device, sink)) = self
            .shared
            .sink
            .as_ref()
            .and_then(|(id, slot)| Some((*id, slot.get()?)))
        else {
            return true;
        };
        for event in events
            .iter()
            .flat_map(crate::events::group::from_notification)
        {
            if let Err(error) = sink.group_event(device, event).await {
                tracing::warn!(device = self.id.get(), %error, "group event not recorded: not acknowledged");
                return false;
            }
        }
        true
    }
}
