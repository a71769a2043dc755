//! Group events: what `w:gp2` notifications (and our own results) say happened to a group.
//!
//! [`GroupEvent`] is the one way a group event enters the pipeline
//! ([`EventSink::group_event`](super::EventSink::group_event)): the notification parser maps
//! what it read into one of these, and the pipeline names, stores and delivers it. The shapes
//! here are the `data` of `group.*` and `community.*` events.

use serde::Serialize;

use super::model::EventName;
use crate::ops::groups::{GroupEvent as Notified, GroupEventKind as Kind};

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

/// What operators are told of one change a `w:gp2` notification carried (nothing for a change
/// the parser did not know). A join request names one requester, so it becomes one event each.
pub fn from_notification(n: &Notified) -> Vec<GroupEvent> {
    let group_jid = n.group.clone();
    let actor = n.actor.clone();
    let info = |f: &dyn Fn(&mut GroupInfoChange)| {
        let mut change = GroupInfoChange {
            group_jid: group_jid.clone(),
            actor: actor.clone(),
            ..GroupInfoChange::default()
        };
        f(&mut change);
        vec![GroupEvent::Info(change)]
    };
    let participants = |action: &str| {
        vec![GroupEvent::Participants(ParticipantsChange {
            group_jid: group_jid.clone(),
            action: action.to_owned(),
            participants: n.participants.clone(),
            actor: actor.clone(),
            reason: n.reason.clone(),
        })]
    };
    let requests = |action: &str| {
        n.participants
            .iter()
            .map(|requester| {
                GroupEvent::JoinRequest(JoinRequestChange {
                    group_jid: group_jid.clone(),
                    action: action.to_owned(),
                    requester: requester.clone(),
                    actor: actor.clone(),
                })
            })
            .collect()
    };
    let link = |linked: bool| {
        let Some(group) = n.linked_group.clone() else {
            return Vec::new();
        };
        let link = CommunityLink {
            community_jid: group_jid.clone(),
            group_jid: group,
            actor: actor.clone(),
        };
        vec![if linked {
            GroupEvent::CommunityLinked(link)
        } else {
            GroupEvent::CommunityUnlinked(link)
        }]
    };
    match n.kind {
        Kind::Create => vec![GroupEvent::Joined(GroupJoined {
            group_jid: group_jid.clone(),
            subject: n.subject.clone(),
            actor: actor.clone(),
            reason: "created".to_owned(),
        })],
        Kind::Add if n.reason.as_deref() == Some("invite") => participants("join"),
        Kind::Add => participants("add"),
        Kind::Remove => participants("remove"),
        Kind::Leave => participants("leave"),
        Kind::Promote => participants("promote"),
        Kind::Demote => participants("demote"),
        Kind::Subject => info(&|c| c.subject = n.subject.clone()),
        Kind::Description => {
            info(&|c| c.description = Some(n.description.clone().unwrap_or_default()))
        }
        Kind::Announce => info(&|c| c.announcement = n.enabled),
        Kind::Locked => info(&|c| c.locked = n.enabled),
        Kind::JoinApproval => info(&|c| c.join_approval = n.enabled),
        Kind::MemberAddMode => info(&|c| c.member_add_mode = n.member_add_mode.clone()),
        Kind::Ephemeral => info(&|c| c.ephemeral = n.ephemeral_seconds),
        Kind::Invite => info(&|c| c.invite_reset = Some(true)),
        Kind::JoinRequest => requests("created"),
        Kind::JoinRequestRevoked => requests("revoked"),
        Kind::Link => link(true),
        Kind::Unlink => link(false),
        Kind::Other => Vec::new(),
    }
}
