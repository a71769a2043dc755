//! What the server sends besides IQ replies and pairing: `<ib>` (edge routing info, dirty
//! bits), notifications (group changes, with their acknowledgement held; pre-keys), and
//! `<stream:error>`.

use std::time::Duration;

use super::{CloseReason, Connection, Event, Internal, LogoutReason, MAX_ROUTING_INFO};
use crate::binary::Node;
use crate::ops::dirty::Clean;
use crate::ops::{IqSpec, groups, stanzas};

impl Connection {
    /// A group notification with changes we read: handed to the driver with its ack held.
    pub(super) fn held_group_notification(&mut self, node: &Node) -> bool {
        if !groups::notify::is_group_notification(node) {
            return false;
        }
        match groups::parse_notification(node) {
            Ok(events) if !events.is_empty() => {
                let ack = stanzas::ack(node);
                self.events.push_back(Event::Group { events, ack });
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::debug!(%error, "unreadable group notification");
                false
            }
        }
    }

    /// Sends an acknowledgement the connection held back ([`Event::Group`]).
    pub fn acknowledge(&mut self, now: Duration, ack: &Node) {
        self.send_node(now, ack);
    }

    /// The server asks for pre-keys with `<notification type="encrypt"><count value=N/>` when
    /// its stock runs low (whatsmeow `handleEncryptNotification`).
    pub(super) fn handle_notification(&mut self, node: &Node) {
        let is_encrypt = node.attr("type").is_some_and(|t| t.as_str() == "encrypt");
        let count = node
            .child("count")
            .and_then(|c| c.attr("value"))
            .and_then(|v| v.as_str().parse::<u32>().ok());
        if let (true, Some(count)) = (is_encrypt, count) {
            self.low_pre_keys(count);
        }
    }

    /// A stanza the server kept while we were away (`offline` attribute): counted, and the
    /// next batch asked for once this one has arrived.
    pub(super) fn note_offline(&mut self, now: Duration, node: &Node) {
        let Some(sync) = self.offline.as_mut() else {
            return;
        };
        if node.attr("offline").is_none() {
            return;
        }
        sync.received = sync.received.saturating_add(1);
        if sync.received >= sync.requested && sync.received < sync.expected {
            self.request_offline_batch(now);
        }
    }

    /// Asks for the next batch of the offline queue (WA Web: 200 at a time).
    fn request_offline_batch(&mut self, now: Duration) {
        if let Some(sync) = self.offline.as_mut() {
            sync.requested = sync.requested.saturating_add(OFFLINE_BATCH);
            let batch = Node::new("ib").with_children(vec![
                Node::new("offline_batch").with_attr("count", OFFLINE_BATCH.to_string()),
            ]);
            self.send_node(now, &batch);
        }
    }

    /// `<ib>`: the offline hand-over (preview, then the end marker), the edge routing info to
    /// present on the next connect (facts §5.6), and dirty bits, answered as clean.
    pub(super) fn handle_ib(&mut self, now: Duration, node: &Node) {
        let count = |child: &Node| {
            child
                .attr("count")
                .and_then(|c| c.as_str().parse::<u32>().ok())
                .unwrap_or(0)
        };
        // whatsapp-rust `offline_resume.rs`: the server waits for `offline_batch` requests
        // before delivering a backlog it announced.
        if let (Some(preview), true) = (node.child("offline_preview"), self.is_logged_in()) {
            let expected = count(preview);
            if expected > 0 {
                self.offline = Some(OfflineSync {
                    expected,
                    ..OfflineSync::default()
                });
                self.request_offline_batch(now);
            }
        }
        if let Some(done) = node.child("offline") {
            self.offline = None;
            let count = count(done);
            tracing::info!(device = self.device.get(), count, "offline queue delivered");
            self.events.push_back(Event::OfflineSynced { count });
        }
        if let (Some(clean), true) = (Clean::answering(node), self.is_logged_in()) {
            let deadline = now + self.config.iq_timeout;
            self.send_internal(now, clean.iq(), Internal::Clean, deadline);
        }
        let routing = node
            .child("edge_routing")
            .and_then(|e| e.child("routing_info"))
            .and_then(Node::content_bytes);
        if let Some(info) = routing {
            // The intro header gives it a 3-byte length; anything near that is not routing.
            if !info.is_empty() && info.len() <= MAX_ROUTING_INFO {
                self.events.push_back(Event::RoutingInfo(info.into_owned()));
            } else {
                tracing::warn!(
                    device = self.device.get(),
                    len = info.len(),
                    "routing info ignored"
                );
            }
        }
    }
}

/// How many offline stanzas one `offline_batch` asks for (WA Web `WAWebOfflineHandler`).
const OFFLINE_BATCH: u32 = 200;

/// An offline hand-over in progress.
#[derive(Debug, Default)]
pub(super) struct OfflineSync {
    /// What the preview announced.
    expected: u32,
    /// Asked for so far.
    requested: u32,
    /// Arrived so far.
    received: u32,
}

/// Reads a `<stream:error>` (facts §5.4).
pub(super) fn stream_error(node: &Node) -> CloseReason {
    let code: Option<u16> = node.attr("code").and_then(|c| c.as_str().parse().ok());
    let conflict = node
        .child("conflict")
        .and_then(|c| c.attr("type"))
        .map(|t| t.as_str().into_owned());
    match (code, conflict.as_deref()) {
        (_, Some("replaced")) => CloseReason::Replaced,
        (_, Some("device_removed")) => CloseReason::LoggedOut(LogoutReason::DeviceRemoved),
        (_, Some(other)) => {
            tracing::warn!(conflict = other, "stream ended by an unknown conflict type");
            CloseReason::LoggedOut(LogoutReason::Conflict)
        }
        (Some(515), _) => CloseReason::RestartRequired,
        (Some(401), _) => CloseReason::LoggedOut(LogoutReason::StreamError401),
        (code, None) => CloseReason::StreamError(code),
    }
}
