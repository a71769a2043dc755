//! `w:gp2` notifications: what the server tells every member's devices after a group changes.
//! [`parse_notification`] turns one into typed [`GroupEvent`]s (one per change it carries);
//! the client publishes them on the device's event stream after acknowledging the stanza.
//!
//! Shape (whatsmeow `parseGroupChange`, Baileys `handleGroupNotification`):
//! `<notification from="…@g.us" type="w:gp2" id t participant notify?>` holding one or more
//! change elements: `add` / `remove` / `promote` / `demote` / `leave` with `<participant jid>`
//! children, `subject subject s_t s_o`, `description id` with `<body>` or `<delete>`,
//! `announcement` / `not_announcement`, `locked` / `unlocked`, `ephemeral expiration` /
//! `not_ephemeral`, `invite code`, `member_add_mode` (text), `membership_approval_mode` with
//! `<group_join state>`, `created_membership_requests` / `revoked_membership_requests`,
//! `link` / `unlink` with a `<group jid>`, and `create` with a whole `<group>`.

use serde::{Deserialize, Serialize};

use super::info::{content_text, text};
use crate::binary::{AttrValue, Node};
use crate::ops::{ParseError, attr_number};

/// Most change elements read from one notification (a bound on work a peer can cause).
pub const MAX_CHANGES: usize = 32;

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupEventKind {
    /// The group was created with us in it (`create`).
    Create,
    /// Participants were added (`reason` says `invite` when they joined by link).
    Add,
    /// Participants were removed by an admin.
    Remove,
    /// Participants left on their own.
    Leave,
    /// Participants became admins.
    Promote,
    /// Participants stopped being admins.
    Demote,
    /// The name changed (`subject`).
    Subject,
    /// The description changed or was deleted (`description`, `None` when deleted).
    Description,
    /// Only admins may send (`enabled`).
    Announce,
    /// Only admins may edit the info (`enabled`).
    Locked,
    /// Joining needs approval (`enabled`).
    JoinApproval,
    /// Who may add members changed (`member_add_mode`: `admin` or `all_member`).
    MemberAddMode,
    /// The disappearing-messages timer changed (`ephemeral_seconds`, 0 = off).
    Ephemeral,
    /// The invite link was reset (`invite_code` is the new code).
    Invite,
    /// Someone asked to join (`participants`).
    JoinRequest,
    /// A join request was withdrawn or rejected (`participants`).
    JoinRequestRevoked,
    /// A group was linked to this community (`linked_group`).
    Link,
    /// A group was unlinked from this community (`linked_group`).
    Unlink,
    /// A change this parser does not know (`tag` says which element).
    Other,
}

/// One change to a group, as a notification reported it. Self-contained (JIDs as text) and
/// serialisable, so it can leave the process as it is (webhooks, event streams).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEvent {
    /// The group, `…@g.us`.
    pub group: String,
    /// What changed.
    pub kind: GroupEventKind,
    /// Who did it (the `participant` attribute), when the server said.
    pub actor: Option<String>,
    /// Whom it concerns (add, remove, leave, promote, demote, join requests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    /// When, unix seconds (the notification's `t`).
    pub timestamp: u64,
    /// The notification's id (the same for every change it carried).
    pub notification_id: String,
    /// The new name (`subject`), or the group's name (`create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The new description (`description`; absent when it was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the setting is now on (announce, locked, join approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The disappearing-messages timer, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_seconds: Option<u32>,
    /// The new invite code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_code: Option<String>,
    /// `admin` or `all_member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_add_mode: Option<String>,
    /// Why (`invite` for an add by link, ...), when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The group linked or unlinked (`link`, `unlink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_group: Option<String>,
    /// The element name of an unknown change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Whether a stanza is a group notification.
pub fn is_group_notification(node: &Node) -> bool {
    node.tag == "notification" && node.attr("type").is_some_and(|t| t.as_str() == "w:gp2")
}

/// Reads a `w:gp2` notification: one event per change element (at most [`MAX_CHANGES`]).
pub fn parse_notification(node: &Node) -> Result<Vec<GroupEvent>, ParseError> {
    let bad = |attr| ParseError::BadAttr {
        element: "notification",
        attr,
    };
    if !is_group_notification(node) {
        return Err(bad("type"));
    }
    let group = node
        .attr("from")
        .and_then(AttrValue::to_jid)
        .filter(|j| j.server == crate::binary::jid::SERVER_GROUP && !j.user.is_empty())
        .ok_or(bad("from"))?
        .to_string();
    let timestamp = attr_number(node, "t").ok_or(bad("t"))?;
    let actor = node
        .attr("participant")
        .and_then(AttrValue::to_jid)
        .map(|j| j.to_string());
    let notification_id = node.attr("id").map(text).unwrap_or_default();
    let base = GroupEvent {
        group,
        kind: GroupEventKind::Other,
        actor,
        participants: Vec::new(),
        timestamp,
        notification_id,
        subject: None,
        description: None,
        enabled: None,
        ephemeral_seconds: None,
        invite_code: None,
        member_add_mode: None,
        reason: None,
        linked_group: None,
        tag: None,
    };
    node.children()
        .iter()
        .take(MAX_CHANGES)
        .map(|change| parse_change(&base, change))
        .collect()
}

fn parse_change(base: &GroupEvent, c: &Node) -> Result<GroupEvent, ParseError> {
    use GroupEventKind as K;
    let mut e = base.clone();
    let on = |kind, enabled| (kind, Some(enabled));
    let (kind, enabled) = match c.tag.as_str() {
        "create" => {
            e.subject = c.child("group").and_then(|g| g.attr("subject")).map(text);
            (K::Create, None)
        }
        "add" | "remove" | "leave" | "promote" | "demote" => {
            e.participants = participants(c);
            e.reason = c.attr("reason").map(text);
            let kind = match c.tag.as_str() {
                "add" => K::Add,
                "promote" => K::Promote,
                "demote" => K::Demote,
                "leave" => K::Leave,
                // Removing oneself is leaving (as Baileys reads it).
                _ if e.participants.len() == 1 && e.actor.as_ref() == e.participants.first() => {
                    K::Leave
                }
                _ => K::Remove,
            };
            (kind, None)
        }
        "subject" => {
            e.subject = Some(c.attr("subject").map(text).ok_or(ParseError::BadAttr {
                element: "subject",
                attr: "subject",
            })?);
            (K::Subject, None)
        }
        "description" => {
            e.description = c.child("body").and_then(content_text);
            (K::Description, None)
        }
        "announcement" => on(K::Announce, true),
        "not_announcement" => on(K::Announce, false),
        "locked" => on(K::Locked, true),
        "unlocked" => on(K::Locked, false),
        "membership_approval_mode" => {
            let state = c.child("group_join").and_then(|g| g.attr("state"));
            on(K::JoinApproval, state.is_some_and(|s| s.as_str() == "on"))
        }
        "member_add_mode" => {
            e.member_add_mode = super::settings::member_add_mode_name(content_text(c).as_deref())
                .map(str::to_owned);
            (K::MemberAddMode, None)
        }
        "ephemeral" => {
            e.ephemeral_seconds = Some(attr_number(c, "expiration").unwrap_or(0));
            (K::Ephemeral, None)
        }
        "not_ephemeral" => {
            e.ephemeral_seconds = Some(0);
            (K::Ephemeral, None)
        }
        "invite" => {
            e.invite_code = c.attr("code").map(text);
            (K::Invite, None)
        }
        "created_membership_requests" => {
            e.participants = participants(c);
            (K::JoinRequest, None)
        }
        "revoked_membership_requests" => {
            e.participants = participants(c);
            (K::JoinRequestRevoked, None)
        }
        "link" | "unlink" => {
            e.linked_group = c
                .child("group")
                .and_then(|g| g.attr("jid"))
                .and_then(AttrValue::to_jid)
                .map(|j| j.to_string());
            (if c.tag == "link" { K::Link } else { K::Unlink }, None)
        }
        other => {
            e.tag = Some(other.to_owned());
            (K::Other, None)
        }
    };
    e.kind = kind;
    e.enabled = enabled;
    Ok(e)
}

fn participants(c: &Node) -> Vec<String> {
    c.children()
        .iter()
        .filter(|p| p.tag == "participant")
        .filter_map(|p| p.attr("jid").and_then(AttrValue::to_jid))
        .map(|j| j.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::{Jid, decode_owned, encode_to_vec};

    fn notification(children: Vec<Node>) -> Node {
        Node::new("notification")
            .with_attr("from", Jid::new("120363000000000001", "g.us"))
            .with_attr("type", "w:gp2")
            .with_attr("id", "42")
            .with_attr("t", "1700000000")
            .with_attr("participant", Jid::new("5511999990000", "s.whatsapp.net"))
            .with_children(children)
    }

    fn member(user: &str) -> Node {
        Node::new("participant").with_attr("jid", Jid::new(user, "s.whatsapp.net"))
    }

    #[test]
    fn reads_participant_changes_and_settings_through_the_codec() {
        let node = notification(vec![
            Node::new("add")
                .with_attr("reason", "invite")
                .with_children(vec![member("5511999990001"), member("5511999990002")]),
            Node::new("subject").with_attr("subject", "New name"),
            Node::new("not_announcement"),
            Node::new("ephemeral").with_attr("expiration", "86400"),
            Node::new("member_add_mode").with_bytes(b"admin_add".to_vec()),
            Node::new("description")
                .with_attr("id", "AB")
                .with_children(vec![Node::new("body").with_bytes(b"about".to_vec())]),
            Node::new("something_new"),
        ]);
        let node = decode_owned(&encode_to_vec(&node).expect("encodes")).expect("decodes");
        let events = parse_notification(&node).expect("parses");
        let kinds: Vec<GroupEventKind> = events.iter().map(|e| e.kind).collect();
        use GroupEventKind as K;
        assert_eq!(
            kinds,
            [
                K::Add,
                K::Subject,
                K::Announce,
                K::Ephemeral,
                K::MemberAddMode,
                K::Description,
                K::Other
            ]
        );
        assert_eq!(events[0].participants.len(), 2);
        assert_eq!(events[0].reason.as_deref(), Some("invite"));
        assert_eq!(
            events[0].actor.as_deref(),
            Some("5511999990000@s.whatsapp.net")
        );
        assert_eq!(events[0].timestamp, 1_700_000_000);
        assert_eq!(events[1].subject.as_deref(), Some("New name"));
        assert_eq!(events[2].enabled, Some(false));
        assert_eq!(events[3].ephemeral_seconds, Some(86_400));
        assert_eq!(events[4].member_add_mode.as_deref(), Some("admin"));
        assert_eq!(events[5].description.as_deref(), Some("about"));
        assert_eq!(events[6].tag.as_deref(), Some("something_new"));
        let json = serde_json::to_value(&events[0]).expect("serialises");
        assert_eq!(json["kind"], "add");
    }

    #[test]
    fn removing_oneself_is_leaving() {
        let node = notification(vec![
            Node::new("remove").with_children(vec![member("5511999990000")]),
        ]);
        assert_eq!(
            parse_notification(&node).expect("parses")[0].kind,
            GroupEventKind::Leave
        );
    }

    #[test]
    fn refuses_what_is_not_a_group_notification() {
        let mut node = notification(vec![]);
        node.attrs.retain(|(k, _)| k != "t");
        assert!(parse_notification(&node).is_err());
        let other = Node::new("notification").with_attr("type", "encrypt");
        assert!(parse_notification(&other).is_err());
    }
}
