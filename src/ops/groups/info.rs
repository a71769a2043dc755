//! What the server says about a group: the typed [`GroupInfo`] and the reader of a `<group>`
//! element that every group query shares (create result, metadata, participating list), and of
//! its `<participant>`s (also in participants-change answers).

use crate::binary::{AttrValue, Node, jid};
use crate::ops::{ParseError, attr_number};
use crate::types::Jid;

/// A created group, as the server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// `…@g.us`.
    pub jid: Jid,
    /// The name.
    pub subject: String,
    /// The creator.
    pub owner: Option<Jid>,
    /// Creation time, unix seconds.
    pub created_at: u64,
    /// Description text, if the server sent one.
    pub description: Option<String>,
    /// The description's id: a description change names it as `prev`.
    pub description_id: Option<String>,
    /// Disappearing-messages timer in seconds (0 = off).
    pub ephemeral: u32,
    /// `admin_add` or `all_member_add`, when the server said.
    pub member_add_mode: Option<String>,
    /// Only admins may send.
    pub announcement: bool,
    /// Only admins may edit info.
    pub locked: bool,
    /// Joining needs approval.
    pub join_approval: bool,
    /// This group is a community.
    pub is_community: bool,
    /// The community this group belongs to.
    pub parent: Option<Jid>,
    /// `pn` or `lid`.
    pub addressing_mode: Option<String>,
    /// Every participant the server listed, with the outcome for each.
    pub participants: Vec<GroupParticipant>,
}

/// One participant of a created group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupParticipant {
    /// The participant's JID.
    pub jid: Jid,
    /// The phone-number JID when `jid` is a LID.
    pub phone_number: Option<Jid>,
    /// Admin (superadmins are admins too).
    pub is_admin: bool,
    /// The creator.
    pub is_super_admin: bool,
    /// Whether WhatsApp added this participant.
    pub outcome: ParticipantOutcome,
}

/// Whether a requested participant ended up in the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParticipantOutcome {
    /// In the group.
    Added,
    /// Not added: WhatsApp's per-participant error code (403 privacy, 404 not on WhatsApp, 408
    /// left recently, 409 already a member, 419 full, ...), and for 403 the invite that can be
    /// sent instead.
    Failed {
        /// The code from the `error` attribute.
        code: u16,
        /// The `add_request` invite, when WhatsApp offers one.
        invite: Option<AddRequest>,
    },
}

/// An invite WhatsApp offers for a participant whose privacy settings forbid a direct add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddRequest {
    /// The invite code.
    pub code: String,
    /// Expiry, unix seconds.
    pub expiration: u64,
}

pub(super) fn text(v: &AttrValue) -> String {
    v.as_str().into_owned()
}

pub(super) fn content_text(n: &Node) -> Option<String> {
    n.content_bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Reads the `<group>` (or `<community>`) of a successful create result.
///
/// Parsers accept text content as bytes as well as strings (it arrives as raw bytes when it is
/// not a token), and a `membership_approval_mode` only counts as "on" with `group_join
/// state="on"` (whatsapp-rust's reading: creators always send the element now).
pub fn parse_create_result(iq: &Node) -> Result<GroupInfo, ParseError> {
    let g = iq
        .child("group")
        .or_else(|| iq.child("community"))
        .ok_or(ParseError::Missing("group"))?;
    let mut info = parse_group(g)?;
    info.is_community |= iq.child("community").is_some();
    Ok(info)
}

/// Reads one `<group>` element: the create result, a metadata query's answer, or an entry of
/// the participating list (which may carry no `creation`).
pub fn parse_group(g: &Node) -> Result<GroupInfo, ParseError> {
    let bad = |attr| ParseError::BadAttr {
        element: "group",
        attr,
    };
    let id = g.attr("id").map(text).ok_or(bad("id"))?;
    let jid = if id.contains('@') {
        id.parse::<Jid>().map_err(|_| bad("id"))?
    } else {
        Jid::new(id, jid::SERVER_GROUP)
    };
    let created_at = match g.attr("creation") {
        None => 0,
        Some(v) => v.as_str().parse().map_err(|_| bad("creation"))?,
    };
    let mut info = GroupInfo {
        jid,
        subject: g.attr("subject").map(text).unwrap_or_default(),
        owner: g.attr("creator").and_then(AttrValue::to_jid),
        created_at,
        description: None,
        description_id: None,
        ephemeral: 0,
        member_add_mode: None,
        announcement: false,
        locked: false,
        join_approval: false,
        is_community: false,
        parent: None,
        addressing_mode: g.attr("addressing_mode").map(text),
        participants: Vec::new(),
    };
    for c in g.children() {
        match c.tag.as_str() {
            "participant" => info.participants.push(parse_participant(c)?),
            "announcement" => info.announcement = true,
            "locked" => info.locked = true,
            "parent" => info.is_community = true,
            "linked_parent" => info.parent = c.attr("jid").and_then(AttrValue::to_jid),
            "description" => {
                info.description = c.child("body").and_then(content_text);
                info.description_id = c.attr("id").map(text);
            }
            "ephemeral" => info.ephemeral = attr_number(c, "expiration").unwrap_or(0),
            "member_add_mode" => info.member_add_mode = content_text(c),
            "membership_approval_mode" => {
                info.join_approval = c
                    .child("group_join")
                    .and_then(|j| j.attr("state"))
                    .is_some_and(|s| s.as_str() == "on");
            }
            _ => {}
        }
    }
    Ok(info)
}

/// One `<participant>` of a group or of a participants-change answer.
pub(super) fn parse_participant(p: &Node) -> Result<GroupParticipant, ParseError> {
    let jid = p
        .attr("jid")
        .and_then(AttrValue::to_jid)
        .ok_or(ParseError::BadAttr {
            element: "participant",
            attr: "jid",
        })?;
    let kind = p.attr("type").map(text);
    let is_super_admin = kind.as_deref() == Some("superadmin");
    let outcome = match p.attr("error").map(text) {
        None => ParticipantOutcome::Added,
        Some(code) => ParticipantOutcome::Failed {
            code: code.parse().map_err(|_| ParseError::BadAttr {
                element: "participant",
                attr: "error",
            })?,
            invite: p.child("add_request").and_then(|a| {
                Some(AddRequest {
                    code: a.attr("code").map(text)?,
                    expiration: a.attr("expiration")?.as_str().parse().ok()?,
                })
            }),
        },
    };
    Ok(GroupParticipant {
        phone_number: p
            .attr("phone_number")
            .or_else(|| p.attr("lid"))
            .and_then(AttrValue::to_jid),
        jid,
        is_admin: is_super_admin || kind.as_deref() == Some("admin"),
        is_super_admin,
        outcome,
    })
}
