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

    /// `<ib>`: the edge routing info to present on the next connect (facts §5.6), and dirty
    /// bits, answered as clean.
    pub(super) fn handle_ib(&mut self, now: Duration, node: &Node) {
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
