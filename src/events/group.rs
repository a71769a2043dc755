//! Group events: what `w:gp2` notifications (and our own results) say happened to a group.
//!
//! [`GroupEvent`] is the one way a group event enters the pipeline
//! ([`EventSink::group_event`](super::EventSink::group_event)): the notification parser maps
//! what it read into one of these, and the pipeline names, stores and delivers it. The shapes
//! here are the `data` of `group.*` and `community.*` events.

use serde::Serialize;

use super::model::EventName;

/// Something that happened to a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum GroupEvent {
    /// `group.joined`.
    Joined(GroupJoined),
    /// `group.info`.
    Info(GroupInfoChange),
    /// `group.participants`.
    Participants(ParticipantsChange),
    /// `group.join_request`.
    JoinRequest(JoinRequestChange),
    /// `community.linked`.
    CommunityLinked(CommunityLink),
    /// `community.unlinked`.
    CommunityUnlinked(CommunityLink),
}

impl GroupEvent {
    /// The event's name.
    pub fn name(&self) -> EventName {
        match self {
            GroupEvent::Joined(_) => EventName::GroupJoined,
            GroupEvent::Info(_) => EventName::GroupInfo,
            GroupEvent::Participants(_) => EventName::GroupParticipants,
            GroupEvent::JoinRequest(_) => EventName::GroupJoinRequest,
            GroupEvent::CommunityLinked(_) => EventName::CommunityLinked,
            GroupEvent::CommunityUnlinked(_) => EventName::CommunityUnlinked,
        }
    }
}

/// `group.joined`: this account is now a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupJoined {
    /// The group (`...@g.us`).
    pub group_jid: String,
    /// Its subject, when the notification carries it.
    pub subject: Option<String>,
    /// Who added us (absent when we joined ourselves).
    pub actor: Option<String>,
    /// How: `added`, `invite_link`, `created`, `approved`.
    pub reason: String,
}

/// `group.info`: the settings that changed; absent fields did not change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupInfoChange {
    /// The group.
    pub group_jid: String,
    /// Who changed it.
    pub actor: Option<String>,
    /// New subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// New description (empty when it was removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only admins may send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement: Option<bool>,
    /// Only admins may edit the group's info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Joining needs an admin's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_approval: Option<bool>,
    /// Who may add members: `admin_add` or `all_member_add`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_add_mode: Option<String>,
    /// Disappearing messages, seconds (0: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<u32>,
    /// The picture changed (`set`) or was removed (`removed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// The invite link was reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_reset: Option<bool>,
}

/// `group.participants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParticipantsChange {
    /// The group.
    pub group_jid: String,
    /// `add`, `remove`, `promote`, `demote`, `leave`, `join` (by link).
    pub action: String,
    /// Whom it concerns.
    pub participants: Vec<String>,
    /// Who did it (absent for `leave` and `join`).
    pub actor: Option<String>,
    /// WhatsApp's reason, when it gives one (`invite`, `linked_group_join`, ...).
    pub reason: Option<String>,
}

/// `group.join_request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JoinRequestChange {
    /// The group.
    pub group_jid: String,
    /// `created`, `approved`, `rejected`, `revoked`.
    pub action: String,
    /// Who asked to join.
    pub requester: String,
    /// The admin who decided (absent for `created`).
    pub actor: Option<String>,
}

/// `community.linked` / `community.unlinked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommunityLink {
    /// The community's parent group.
    pub community_jid: String,
    /// The group linked or unlinked.
    pub group_jid: String,
    /// Who did it.
    pub actor: Option<String>,
}
