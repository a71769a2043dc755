//! The sandbox's public vocabulary: what the control API reads and writes, in Rust and as JSON.
//!
//! Every type here is `serde` so the HTTP control API and the Rust API share one shape. JIDs
//! are written in their text form.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The edge routing info the server gave a device, and what the device presented in the intro
/// header of its latest login (`ED 00 01 …`; WhatsApp Web sends back what it was given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRouting {
    /// Sent in `<ib><edge_routing>` after each login.
    pub issued: Vec<u8>,
    /// What the latest login presented, if anything.
    pub presented: Option<Vec<u8>>,
}

/// A device linked to a simulated account, as `GET /control/devices` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Phone-number device JID, `5511999999999:1@s.whatsapp.net`.
    pub jid: String,
    /// LID device JID, `100000000000001:1@lid`.
    pub lid: String,
    /// The account's phone number.
    pub phone: String,
    /// The device number within the account (1 and up; 0 is the phone).
    pub device: u16,
    /// The ADV key index the phone gave this device.
    pub key_index: u32,
    /// The device's Noise static key (64 hex digits): logins must present it.
    pub noise_key: String,
    /// The device's identity key (64 hex digits).
    pub identity_key: String,
    /// Unix seconds of the pairing.
    pub paired_at: u64,
    /// One-time pre-keys the server holds for the device.
    pub prekeys: u32,
    /// Whether a connection is logged in as this device right now.
    pub connected: bool,
    /// Unlinked (removed by the phone or a fault): logins get `failure` 401.
    pub removed: bool,
}

/// What `scan` returns: the device the phone linked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedDevice {
    /// Phone-number device JID.
    pub jid: String,
    /// LID device JID.
    pub lid: String,
    /// The account's phone number.
    pub phone: String,
    /// The device number.
    pub device: u16,
    /// The key index the phone issued.
    pub key_index: u32,
}

/// How a simulated phone number behaves, both as the phone that scans QR codes and as a
/// participant someone adds to a group. Unconfigured numbers use [`Default`]: an Android phone
/// on WhatsApp that anyone may add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneBehaviour {
    /// Sent in `pair-success` `<platform name>`: `android`, `iphone`, `smba`, `smbi`.
    pub platform: String,
    /// Sent in `pair-success` `<biz name>` when set (a business account).
    pub business_name: Option<String>,
    /// What happens when this number is added to a group.
    pub on_add: AddRule,
}

impl Default for PhoneBehaviour {
    fn default() -> Self {
        Self {
            platform: "android".to_owned(),
            business_name: None,
            on_add: AddRule::Allow,
        }
    }
}

/// The outcome of adding a number to a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddRule {
    /// Added.
    Allow,
    /// Privacy only allows invites: `error="403"` with an `<add_request>` invite.
    InviteOnly,
    /// Not a WhatsApp user: `error="404"`; this number also cannot scan QR codes. In JSON
    /// `not_on_whatsapp`, as documented (`not_on_whats_app`, the spelling serde derived at
    /// first, is still read).
    #[serde(rename = "not_on_whatsapp", alias = "not_on_whats_app")]
    NotOnWhatsApp,
    /// Any other per-participant error code (408 left recently, 409 already in, ...).
    Error(u16),
}

/// A created group, as `GET /control/groups` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// `120363…@g.us`.
    pub jid: String,
    /// The name.
    pub subject: String,
    /// The creator's account JID (`phone@s.whatsapp.net`).
    pub creator: String,
    /// The device that sent the create IQ.
    pub created_by: String,
    /// Unix seconds.
    pub creation: u64,
    /// Description text, if one was given.
    pub description: Option<String>,
    /// Only admins send.
    pub announcement: bool,
    /// Only admins edit info.
    pub locked: bool,
    /// Joining needs approval.
    pub join_approval: bool,
    /// `all_member_add` or `admin_add`.
    pub member_add_mode: String,
    /// Disappearing-messages timer in seconds (0 = off).
    pub ephemeral: u32,
    /// This group is a community (created with `<parent>`).
    pub community: bool,
    /// The community this group was created in (`<linked_parent>`).
    pub linked_parent: Option<String>,
    /// Members, the creator first.
    pub participants: Vec<Member>,
    /// Requested participants that were not added, and why.
    pub failed: Vec<FailedParticipant>,
    /// The description's id (a change must name it as `prev`).
    #[serde(default)]
    pub description_id: Option<String>,
    /// The current invite-link code, once someone asked for it.
    #[serde(default)]
    pub invite_code: Option<String>,
    /// Codes revoked by a reset: joining with one is 410 `gone`.
    #[serde(default)]
    pub revoked_codes: Vec<String>,
    /// Pending join requests (join-approval groups), oldest first.
    #[serde(default)]
    pub requests: Vec<JoinRequest>,
    /// Groups linked to this community (unused: a group names its community in
    /// `linked_parent`, so it has one at most; kept so stored records still read).
    #[serde(default)]
    pub linked_groups: Vec<String>,
    /// This group is its community's announcement group (`<default_sub_group/>`).
    #[serde(default)]
    pub default_sub_group: bool,
    /// The current picture's id, once one was set.
    #[serde(default)]
    pub picture_id: Option<String>,
    /// The current picture's SHA-256 (hex): what was stored.
    #[serde(default)]
    pub picture_sha256: Option<String>,
    /// The id of the IQ that created the group, so a checker can tell one create from its
    /// retries (an announcement group carries its community's).
    #[serde(default)]
    pub request_id: Option<String>,
}

/// A stanza the sandbox sent a device on its own initiative (a notification), as
/// `GET /control/notifications` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentStanza {
    /// Unix seconds.
    pub at: u64,
    /// The element (`notification`).
    pub tag: String,
    /// Its `type` (`w:gp2`).
    pub kind: Option<String>,
    /// Its `from` (the group).
    pub from: Option<String>,
    /// The whole stanza in its text form.
    pub stanza: String,
}

/// Someone who asked to join a join-approval group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The account JID (`phone@s.whatsapp.net`).
    pub jid: String,
    /// Unix seconds.
    pub requested_at: u64,
    /// How: `invite_link` or `non_admin_add`.
    pub method: String,
}

/// A member of a created group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The JID as requested (or the creator's).
    pub jid: String,
    /// `superadmin`, `admin` or `member`.
    pub role: String,
}

/// A requested participant that was not added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedParticipant {
    /// The JID as requested.
    pub jid: String,
    /// The per-participant error code sent.
    pub code: u16,
    /// The invite offered instead (403 only).
    pub add_request: Option<AddRequest>,
}

/// An invite offered for a participant who may only be invited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRequest {
    /// The invite code.
    pub code: String,
    /// Unix seconds.
    pub expiration: u64,
}

/// A `<stream:error>` the sandbox can send (facts sheet 5.4). In JSON: `"515"`, `"503"`,
/// `"401"`, `"replaced"`, `"device_removed"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamError {
    /// `code="515"`: restart required (the normal end of pairing). The client reconnects.
    #[serde(rename = "515")]
    RestartRequired,
    /// `code="503"`: service unavailable. The client reconnects.
    #[serde(rename = "503")]
    ServiceUnavailable,
    /// `code="401"` without a child.
    #[serde(rename = "401")]
    Unauthorized,
    /// `<conflict type="replaced"/>`: another connection took over. No reconnect.
    #[serde(rename = "replaced")]
    Replaced,
    /// `code="401"` with `<conflict type="device_removed"/>`: the phone unlinked the device.
    /// The sandbox also marks the device removed, so its next login fails as on the real
    /// service.
    #[serde(rename = "device_removed")]
    DeviceRemoved,
}

/// A fault to inject. In JSON the variant is the `kind` field:
/// `{"kind": "stream_error", "device": "…", "error": "515"}`. The control API also takes it
/// without `device`, for every connected device
/// ([`SandboxHandle::inject_connected`](super::SandboxHandle::inject_connected)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Close the device's connection abruptly: no stanza, no close frame.
    Drop {
        /// Device JID.
        device: String,
    },
    /// Send a `<stream:error>` to the device and close its connection.
    StreamError {
        /// Device JID.
        device: String,
        /// Which error.
        error: StreamError,
    },
    /// Answer the device's IQs late.
    DelayIq {
        /// Device JID.
        device: String,
        /// Delay in milliseconds.
        millis: u64,
        /// Only IQs of this namespace (`w:g2`, `w:p`, ...); all if absent.
        #[serde(default)]
        xmlns: Option<String>,
        /// Only this many IQs; all until cleared if absent.
        #[serde(default)]
        count: Option<u32>,
    },
    /// Never answer the device's IQs.
    WithholdIq {
        /// Device JID.
        device: String,
        /// Only IQs of this namespace; all if absent.
        #[serde(default)]
        xmlns: Option<String>,
        /// Only this many IQs; all until cleared if absent.
        #[serde(default)]
        count: Option<u32>,
    },
    /// Remove the device's IQ delay and withhold rules.
    ClearIqFaults {
        /// Device JID.
        device: String,
    },
    /// Refuse the next login with `<failure reason=…/>` (default 401), then behave normally.
    RejectNextLogin {
        /// Device JID; the next login of any device if absent.
        #[serde(default)]
        device: Option<String>,
        /// The failure reason code.
        #[serde(default = "default_reject_reason")]
        reason: u16,
    },
}

impl Fault {
    /// The failure reason of [`Fault::RejectNextLogin`] when none is given: 401, as for an
    /// unlinked device.
    pub const DEFAULT_REJECT_REASON: u16 = 401;
}

fn default_reject_reason() -> u16 {
    Fault::DEFAULT_REJECT_REASON
}

/// Something that happened in the sandbox, for tests that wait instead of sleeping
/// ([`SandboxHandle::subscribe`](super::SandboxHandle::subscribe)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A registration connection was sent `pair-device` with these refs.
    PairingOffered {
        /// The refs, in display order.
        refs: Vec<String>,
    },
    /// A device finished pairing (its `pair-device-sign` verified).
    Paired {
        /// Device JID.
        jid: String,
    },
    /// A device logged in.
    LoggedIn {
        /// Device JID.
        jid: String,
    },
    /// A connection ended.
    Closed {
        /// The device JID if it was logged in.
        jid: Option<String>,
    },
    /// A device's key bundle upload was accepted.
    KeysUploaded {
        /// Device JID.
        jid: String,
        /// One-time keys in the upload.
        prekeys: u32,
    },
    /// A device's signed pre-key rotation was accepted.
    SignedPreKeyRotated {
        /// Device JID.
        jid: String,
        /// The new signed pre-key's id.
        id: u32,
    },
    /// A group was created.
    GroupCreated {
        /// Group JID.
        jid: String,
    },
}

/// What the sandbox has handed to its data directory since it started: records written and
/// their bytes. Load tests read it to check that a change costs the same whatever the size of
/// the directory ([`SandboxHandle::store_writes`](super::SandboxHandle::store_writes)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreWrites {
    /// Records written (a root key, an account, a device, a phone behaviour or a group).
    pub records: u64,
    /// Bytes of those records as written.
    pub bytes: u64,
}

/// Durations of the sandbox's schedules. The defaults are the real service's (or, where not
/// known, generous); tests shorten them or run under `tokio::time::pause`, since every timer is
/// a tokio timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the first ref of `pair-device` is valid (60 s).
    pub first_ref: Duration,
    /// How long each later ref is valid (20 s).
    pub next_ref: Duration,
    /// Refs per `pair-device` (6).
    pub ref_count: usize,
    /// Time allowed for the Noise handshake (20 s, the clients' own limit).
    pub handshake: Duration,
    /// A logged-in connection that sends nothing for this long is closed. Clients ping every
    /// 20–30 s; the real server's limit is not published, so this is generous (120 s).
    pub idle: Duration,
    /// How long `scan` waits for the companion's `pair-device-sign` (30 s).
    pub pair_reply: Duration,
    /// How long a pairing code is accepted after the companion's hello (180 s, WhatsApp Web's).
    pub pair_code: Duration,
    /// How often the server pings a logged-in device (`urn:xmpp:ping`; 60 s), and how long the
    /// answer may take before the connection is dropped (20 s).
    pub server_ping: (Duration, Duration),
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            first_ref: Duration::from_secs(60),
            next_ref: Duration::from_secs(20),
            ref_count: 6,
            handshake: Duration::from_secs(20),
            idle: Duration::from_secs(120),
            pair_reply: Duration::from_secs(30),
            pair_code: Duration::from_secs(180),
            server_ping: (Duration::from_secs(60), Duration::from_secs(20)),
        }
    }
}

impl Timing {
    /// How long after `pair-device` ref number `index` (0-based) stops being valid.
    pub fn ref_expiry(&self, index: usize) -> Duration {
        let later = u32::try_from(index).unwrap_or(u32::MAX);
        self.first_ref
            .saturating_add(self.next_ref.saturating_mul(later))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_from_the_documented_json() {
        let f: Fault = serde_json::from_str(
            r#"{"kind":"stream_error","device":"1:2@s.whatsapp.net","error":"device_removed"}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::StreamError {
                device: "1:2@s.whatsapp.net".into(),
                error: StreamError::DeviceRemoved
            }
        );
        let f: Fault = serde_json::from_str(r#"{"kind":"reject_next_login"}"#).unwrap();
        assert_eq!(
            f,
            Fault::RejectNextLogin {
                device: None,
                reason: 401
            }
        );
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"drop","device":"x","y":1}"#).is_err());
    }

    #[test]
    fn behaviour_fields_default_individually() {
        let b: PhoneBehaviour = serde_json::from_str(r#"{"on_add":"invite_only"}"#).unwrap();
        assert_eq!(b.platform, "android");
        assert_eq!(b.on_add, AddRule::InviteOnly);
        let b: PhoneBehaviour = serde_json::from_str(r#"{"on_add":{"error":408}}"#).unwrap();
        assert_eq!(b.on_add, AddRule::Error(408));
    }

    #[test]
    fn not_on_whatsapp_is_spelled_as_documented() {
        for json in [r#""not_on_whatsapp""#, r#""not_on_whats_app""#] {
            let rule: AddRule = serde_json::from_str(json).unwrap();
            assert_eq!(rule, AddRule::NotOnWhatsApp, "{json}");
        }
        let written = serde_json::to_string(&AddRule::NotOnWhatsApp).unwrap();
        assert_eq!(written, r#""not_on_whatsapp""#);
    }

    #[test]
    fn refs_expire_on_the_real_schedule() {
        let t = Timing::default();
        let secs: Vec<u64> = (0..6).map(|i| t.ref_expiry(i).as_secs()).collect();
        assert_eq!(secs, [60, 80, 100, 120, 140, 160]);
    }
}
