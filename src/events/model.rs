//! The events operators receive: their stable names, the envelope, and the `data` of each.
//!
//! Every event, on a webhook or the stream, is one [`Envelope`]:
//! `{id, event, timestamp, device_id, user_id, data}` as the hosted WUTS API documents it;
//! `id` is unique per event and stays the same on every redelivery, `timestamp` is Unix
//! seconds, `data` is typed per event ([`EventData`]).

use serde::{Deserialize, Serialize};

macro_rules! event_names {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Every event name, as operators subscribe to them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventName {
            $($(#[$doc])* $variant,)*
        }

        impl EventName {
            /// All of them, in the order `GET /webhook/events` lists them.
            pub const ALL: &'static [EventName] = &[$(EventName::$variant,)*];

            /// The stable name (`device.connected`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventName::$variant => $name,)*
                }
            }

            /// The name read back; `None` for one we do not emit.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventName::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_names! {
    /// A new QR code to show while pairing.
    QrGenerated => "qr.generated",
    /// A pairing code was issued (pairing by phone number).
    PairCode => "pair.code",
    /// The phone linked this device.
    PairSuccess => "pair.success",
    /// Pairing stopped without a link (timed out or refused).
    PairError => "pair.error",
    /// The device logged in to WhatsApp.
    DeviceConnected => "device.connected",
    /// The device's connection went down (a reconnect follows unless the reason says otherwise).
    DeviceDisconnected => "device.disconnected",
    /// The device was logged out; its credentials are gone and it must pair again.
    DeviceLoggedOut => "device.logged_out",
    /// Another connection with the same credentials took over this one.
    ConnectionStreamReplaced => "connection.stream_replaced",
    /// The connection failed in a way that needs attention (certificate, login refused, ...).
    ConnectionFailure => "connection.failure",
    /// WhatsApp stopped answering keep-alive pings; the connection was dropped.
    ConnectionKeepaliveTimeout => "connection.keepalive_timeout",
    /// The device is connected again after a keep-alive timeout.
    ConnectionKeepaliveRestored => "connection.keepalive_restored",
    /// This account was added to a group, or joined one.
    GroupJoined => "group.joined",
    /// A group's settings changed (subject, description, announcement, ...).
    GroupInfo => "group.info",
    /// Members were added, removed, promoted, demoted, left or joined by link.
    GroupParticipants => "group.participants",
    /// A request to join a group was created, approved or rejected.
    GroupJoinRequest => "group.join_request",
    /// A group was linked to a community.
    CommunityLinked => "community.linked",
    /// A group was unlinked from a community.
    CommunityUnlinked => "community.unlinked",
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        EventName::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event {name:?}")))
    }
}

/// One event, as delivered and streamed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    /// Unique per event; the same on every delivery attempt and redelivery.
    pub id: String,
    /// The event's name.
    pub event: EventName,
    /// When it happened, Unix seconds.
    pub timestamp: u64,
    /// The device it happened to (`null` for a device the user has not listed yet).
    pub device_id: Option<String>,
    /// The device's owner.
    pub user_id: String,
    /// What happened.
    pub data: EventData,
}

/// The `data` of each event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    /// `qr.generated`.
    Qr(QrData),
    /// `pair.code`.
    PairCode(PairCodeData),
    /// `pair.success`.
    Paired(PairedData),
    /// `device.connected`, `connection.keepalive_restored`.
    Connected(ConnectedData),
    /// `pair.error`, `device.disconnected`, `device.logged_out`, `connection.*` failures.
    Reason(ReasonData),
    /// `group.*` and `community.*`.
    Group(super::group::GroupEvent),
}

/// `qr.generated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrData {
    /// The string to encode in the QR image.
    pub code: String,
    /// Unix seconds after which the code is replaced or pairing times out.
    pub expires_at: u64,
    /// Validity in seconds from when it was issued.
    pub ttl: u64,
}

/// `pair.code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairCodeData {
    /// The code to type on the phone (`ABCD-EFGH`).
    pub code: String,
    /// The phone number it was issued for (digits only).
    pub phone: String,
    /// Unix seconds after which the code no longer works.
    pub expires_at: u64,
}

/// `pair.success`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedData {
    /// The device's JID (`user:device@s.whatsapp.net`).
    pub jid: String,
    /// The account's business name, if any.
    pub business_name: Option<String>,
    /// The phone's platform (`android`, `smba`, ...).
    pub platform: String,
}

/// `device.connected`, `connection.keepalive_restored`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedData {
    /// The device's JID, when known.
    pub jid: Option<String>,
}

/// Why: a stable snake_case code to branch on (`device_removed`, `keepalive_timeout`,
/// `replaced`, `certificate_invalid`, `pairing_timed_out`, ...) and a sentence to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonData {
    /// Stable code.
    pub reason: String,
    /// What happened, in words.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(*name));
            assert!(seen.insert(name.as_str()));
        }
        assert_eq!(EventName::parse("message.received"), None);
    }

    #[test]
    fn envelope_has_the_documented_fields() -> Result<(), serde_json::Error> {
        let envelope = Envelope {
            id: "e1".into(),
            event: EventName::DeviceDisconnected,
            timestamp: 1_640_995_200,
            device_id: Some("d1".into()),
            user_id: "u1".into(),
            data: EventData::Reason(ReasonData {
                reason: "connection_lost".into(),
                message: "the server closed the connection".into(),
            }),
        };
        let json = serde_json::to_value(&envelope)?;
        assert_eq!(json["event"], "device.disconnected");
        assert_eq!(json["data"]["reason"], "connection_lost");
        let keys: Vec<_> = json
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["id", "event", "timestamp", "device_id", "user_id", "data"]
        );
        Ok(())
    }
}
