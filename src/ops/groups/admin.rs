//! Group administration after create: one [`GroupCall`] per `w:g2` request (metadata, the
//! participating list, participants, each setting, the invite link, leave, join), checked by
//! [`GroupCall::normalize`] before anything is sent, and run as an [`IqSpec`] whose answer is a
//! typed [`GroupAnswer`].
//!
//! Stanzas (whatsmeow `group.go`, Baileys `Socket/groups.ts`): settings, participants, the
//! invite and metadata go `to` the group; the participating list, leave and joining by link go
//! `to` `@g.us`. WhatsApp's refusals come back as IQ errors, which the caller maps: 404 unknown
//! group, 403 not a participant, 401 not an admin, 406 invalid and 410 revoked invite codes.

use std::collections::HashSet;

use super::community::{CommunityCall, LinkedGroup};
use super::create::{MAX_GROUP_SIZE, description, subject};
use super::info::{GroupInfo, GroupParticipant, parse_group, parse_participant, text};
use super::settings::{EPHEMERAL_TIMERS, Setting, setting_node};
use crate::binary::{AttrValue, Node, jid};
use crate::ops::{FieldError, Iq, IqKind, IqSpec, ParseError, Problem};
use crate::types::{GroupJid, Jid, UserJid};

/// What an invite link starts with; the code follows.
pub const INVITE_LINK_PREFIX: &str = "https://chat.whatsapp.com/";
/// Longest invite code accepted (real ones are 22 characters; invites sent to a participant
/// are longer).
pub const MAX_INVITE_CODE_CHARS: usize = 64;

/// What to do with participants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantAction {
    /// Add to the group.
    Add,
    /// Remove from the group.
    Remove,
    /// Make admin.
    Promote,
    /// Take admin away.
    Demote,
}

impl ParticipantAction {
    /// The element name on the wire, and the API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Promote => "promote",
            Self::Demote => "demote",
        }
    }

    /// Reads the API's name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Add, Self::Remove, Self::Promote, Self::Demote]
            .into_iter()
            .find(|a| a.as_str() == text)
    }
}

/// One group request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupCall {
    /// Every group the account is in, with participants.
    Participating,
    /// One group's metadata with participants.
    Info {
        /// `…@g.us`.
        group: Jid,
    },
    /// Add, remove, promote or demote.
    Participants {
        /// `…@g.us`.
        group: Jid,
        /// What to do.
        action: ParticipantAction,
        /// User JIDs, no devices; duplicates are merged.
        participants: Vec<Jid>,
    },
    /// Change one setting.
    Set {
        /// `…@g.us`.
        group: Jid,
        /// Which, and to what.
        setting: Setting,
    },
    /// The invite code; `reset` revokes the current one and issues a new one.
    InviteLink {
        /// `…@g.us`.
        group: Jid,
        /// Revoke and reissue.
        reset: bool,
    },
    /// Pending join requests (join-approval groups; admins only).
    Requests {
        /// `…@g.us`.
        group: Jid,
    },
    /// Approve or reject join requests.
    DecideRequests {
        /// `…@g.us`.
        group: Jid,
        /// Approve (`true`) or reject.
        approve: bool,
        /// The users who asked; duplicates are merged.
        participants: Vec<Jid>,
    },
    /// Leave the group.
    Leave {
        /// `…@g.us`.
        group: Jid,
    },
    /// Join with a link's code.
    JoinLink {
        /// The code (what follows [`INVITE_LINK_PREFIX`]).
        code: String,
    },
    /// A community's groups: list, link, unlink.
    Community(CommunityCall),
    /// Set the group's picture (checked and shrunk by [`super::picture::prepare`]).
    Picture {
        /// `…@g.us`.
        group: Jid,
        /// The JPEG to send.
        picture: super::picture::Picture,
    },
    /// Join with the invite a privacy-restricted participant received (`add_request`).
    JoinInvite {
        /// `…@g.us`.
        group: Jid,
        /// The admin who sent the invite.
        inviter: Jid,
        /// The invite's code.
        code: String,
        /// The invite's expiry, unix seconds (0 when unknown).
        expiration: u64,
    },
}

/// Someone waiting for an admin's approval to join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// The user.
    pub jid: Jid,
    /// When they asked, unix seconds (0 when the server did not say).
    pub requested_at: u64,
}

/// What a [`GroupCall`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupAnswer {
    /// The participating list.
    Groups(Vec<GroupInfo>),
    /// One group.
    Group(Box<GroupInfo>),
    /// Per-participant outcomes of a participants change, in WhatsApp's order.
    Participants(Vec<GroupParticipant>),
    /// The invite code.
    InviteCode(String),
    /// Pending join requests, oldest first.
    Requests(Vec<JoinRequest>),
    /// A community's linked groups.
    SubGroups(Vec<LinkedGroup>),
    /// The new picture's id.
    Picture(String),
    /// Joined (or asked to: `pending` when the group needs approval).
    Joined {
        /// The group.
        group: Jid,
        /// An admin must approve the request first.
        pending: bool,
    },
    /// Done; nothing to report.
    Done,
}

impl GroupCall {
    /// The group the call is about, if it is about one.
    pub fn group(&self) -> Option<&Jid> {
        match self {
            Self::Participating | Self::JoinLink { .. } => None,
            Self::Info { group }
            | Self::Participants { group, .. }
            | Self::Set { group, .. }
            | Self::InviteLink { group, .. }
            | Self::Leave { group }
            | Self::Requests { group }
            | Self::DecideRequests { group, .. }
            | Self::JoinInvite { group, .. }
            | Self::Picture { group, .. } => Some(group),
            Self::Community(c) => Some(c.community()),
        }
    }

    /// Checks what WhatsApp would refuse, so a bad request never reaches it, and normalises
    /// what people type (whitespace, duplicate participants, a full invite link). Lists every
    /// violation, named by the API's fields (`jid` for the group in the path).
    pub fn normalize(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(group) = self.group() {
            if let Err(e) = GroupJid::from_jid(group.clone()) {
                errors.push(FieldError::new("jid", e.into()));
            }
        }
        match &mut self {
            Self::Participants { participants, .. } | Self::DecideRequests { participants, .. } => {
                let mut seen = HashSet::new();
                participants.retain(|p| seen.insert(p.clone()));
                if participants.is_empty() {
                    errors.push(FieldError::new("participants", Problem::Required));
                }
                for (i, p) in participants.iter().enumerate() {
                    if let Err(e) = UserJid::from_jid(p.clone()) {
                        errors.push(FieldError::new(format!("participants[{i}]"), e.into()));
                    }
                }
                if participants.len() >= MAX_GROUP_SIZE {
                    errors.push(FieldError::new(
                        "participants",
                        Problem::TooManyMembers {
                            max: MAX_GROUP_SIZE,
                            got: participants.len(),
                        },
                    ));
                }
            }
            Self::Set { setting, .. } => match setting {
                Setting::Subject(s) => match subject(s) {
                    Ok(clean) => *s = clean,
                    Err(p) => errors.push(FieldError::new("name", p)),
                },
                Setting::Description { text, .. } => {
                    if let Some(t) = text.take() {
                        match description(&t) {
                            Ok(clean) => *text = clean,
                            Err(p) => errors.push(FieldError::new("description", p)),
                        }
                    }
                }
                Setting::Ephemeral(secs) if !EPHEMERAL_TIMERS.contains(secs) => {
                    errors.push(FieldError::new(
                        "duration_seconds",
                        Problem::NotOneOf(EPHEMERAL_TIMERS.iter().map(u32::to_string).collect()),
                    ));
                }
                _ => {}
            },
            Self::JoinLink { code } => match invite_code(code) {
                Ok(clean) => *code = clean,
                Err(p) => errors.push(FieldError::new("link", p)),
            },
            Self::Community(c) => c.check(&mut errors),
            Self::JoinInvite { code, inviter, .. } => {
                match invite_code(code) {
                    Ok(clean) => *code = clean,
                    Err(p) => errors.push(FieldError::new("code", p)),
                }
                if let Err(e) = UserJid::from_jid(inviter.clone()) {
                    errors.push(FieldError::new("inviter_jid", e.into()));
                }
            }
            _ => {}
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// The request spec; `random` is the id a new description carries (8 hex digits), drawn
    /// by the caller.
    pub fn spec(&self, random: u32) -> GroupSpec<'_> {
        GroupSpec { call: self, random }
    }
}

/// An invite code from a link or a bare code: the link prefix (with or without scheme) is
/// dropped; what is left must be 1 to [`MAX_INVITE_CODE_CHARS`] URL-safe characters.
pub fn invite_code(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    let code = ["https://", "http://", ""]
        .iter()
        .find_map(|scheme| {
            text.strip_prefix(scheme)
                .and_then(|t| t.strip_prefix("chat.whatsapp.com/"))
        })
        .unwrap_or(text)
        .trim_end_matches('/');
    if code.is_empty() {
        return Err(Problem::Empty);
    }
    if code.chars().count() > MAX_INVITE_CODE_CHARS {
        return Err(Problem::TooLong {
            max: MAX_INVITE_CODE_CHARS,
            got: code.chars().count(),
        });
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Problem::BadInviteCode);
    }
    Ok(code.to_owned())
}

/// A [`GroupCall`] as a request.
#[derive(Clone, Copy, Debug)]
pub struct GroupSpec<'a> {
    call: &'a GroupCall,
    random: u32,
}

fn to_group(xmlns_kind: IqKind, group: &Jid, child: Node) -> Iq {
    Iq {
        xmlns: "w:g2",
        kind: xmlns_kind,
        to: group.clone(),
        children: vec![child],
        timeout: None,
        target: None,
    }
}

fn to_groups(kind: IqKind, child: Node) -> Iq {
    to_group(kind, &Jid::server_only(jid::SERVER_GROUP), child)
}

impl IqSpec for GroupSpec<'_> {
    type Output = GroupAnswer;

    fn iq(&self) -> Iq {
        use GroupCall as C;
        match self.call {
            C::Participating => to_groups(
                IqKind::Get,
                Node::new("participating")
                    .with_children(vec![Node::new("participants"), Node::new("description")]),
            ),
            C::Info { group } => to_group(
                IqKind::Get,
                group,
                Node::new("query").with_attr("request", "interactive"),
            ),
            C::Participants {
                group,
                action,
                participants,
            } => to_group(
                IqKind::Set,
                group,
                Node::new(action.as_str()).with_children(
                    participants
                        .iter()
                        .map(|p| Node::new("participant").with_attr("jid", p.clone()))
                        .collect(),
                ),
            ),
            C::Set { group, setting } => {
                to_group(IqKind::Set, group, setting_node(setting, self.random))
            }
            C::InviteLink { group, reset } => {
                let kind = if *reset { IqKind::Set } else { IqKind::Get };
                to_group(kind, group, Node::new("invite"))
            }
            C::Requests { group } => to_group(
                IqKind::Get,
                group,
                Node::new("membership_approval_requests"),
            ),
            C::DecideRequests {
                group,
                approve,
                participants,
            } => to_group(
                IqKind::Set,
                group,
                Node::new("membership_requests_action").with_children(vec![
                    Node::new(if *approve { "approve" } else { "reject" }).with_children(
                        participants
                            .iter()
                            .map(|p| Node::new("participant").with_attr("jid", p.clone()))
                            .collect(),
                    ),
                ]),
            ),
            C::Leave { group } => to_groups(
                IqKind::Set,
                Node::new("leave")
                    .with_children(vec![Node::new("group").with_attr("id", group.clone())]),
            ),
            C::JoinLink { code } => to_groups(
                IqKind::Set,
                Node::new("invite").with_attr("code", code.as_str()),
            ),
            C::Picture { group, picture } => super::picture::iq(group, picture),
            C::Community(c) => {
                let kind = if c.is_set() { IqKind::Set } else { IqKind::Get };
                to_group(kind, c.community(), c.node())
            }
            C::JoinInvite {
                group,
                inviter,
                code,
                expiration,
            } => to_group(
                IqKind::Set,
                group,
                Node::new("accept")
                    .with_attr("code", code.as_str())
                    .with_attr("expiration", expiration.to_string())
                    .with_attr("admin", inviter.clone()),
            ),
        }
    }

    fn parse(&self, reply: &Node) -> Result<GroupAnswer, ParseError> {
        use GroupCall as C;
        match self.call {
            C::Participating => {
                let groups = reply.child("groups").ok_or(ParseError::Missing("groups"))?;
                let list = groups
                    .children()
                    .iter()
                    .filter(|g| g.tag == "group")
                    .map(parse_group)
                    .collect::<Result<_, _>>()?;
                Ok(GroupAnswer::Groups(list))
            }
            C::Info { .. } => {
                let g = reply.child("group").ok_or(ParseError::Missing("group"))?;
                Ok(GroupAnswer::Group(Box::new(parse_group(g)?)))
            }
            C::Participants { action, .. } => {
                let list = reply
                    .child(action.as_str())
                    .ok_or(ParseError::Missing("participant change"))?;
                let outcomes = list
                    .children()
                    .iter()
                    .filter(|p| p.tag == "participant")
                    .map(parse_participant)
                    .collect::<Result<_, _>>()?;
                Ok(GroupAnswer::Participants(outcomes))
            }
            C::InviteLink { .. } => {
                let code = reply
                    .child("invite")
                    .and_then(|i| i.attr("code"))
                    .map(text)
                    .filter(|c| !c.is_empty())
                    .ok_or(ParseError::Missing("invite"))?;
                Ok(GroupAnswer::InviteCode(code))
            }
            C::JoinLink { .. } => {
                let (node, pending) = match reply.child("membership_approval_request") {
                    Some(n) => (n, true),
                    None => (
                        reply.child("group").ok_or(ParseError::Missing("group"))?,
                        false,
                    ),
                };
                let group =
                    node.attr("jid")
                        .and_then(AttrValue::to_jid)
                        .ok_or(ParseError::BadAttr {
                            element: "group",
                            attr: "jid",
                        })?;
                Ok(GroupAnswer::Joined { group, pending })
            }
            C::JoinInvite { group, .. } => Ok(GroupAnswer::Joined {
                group: group.clone(),
                pending: reply.child("membership_approval_request").is_some(),
            }),
            C::Requests { .. } => {
                let list = reply
                    .child("membership_approval_requests")
                    .ok_or(ParseError::Missing("membership_approval_requests"))?;
                let requests = list
                    .children()
                    .iter()
                    .filter(|r| r.tag == "membership_approval_request")
                    .map(|r| {
                        Ok(JoinRequest {
                            jid: r.attr("jid").and_then(AttrValue::to_jid).ok_or(
                                ParseError::BadAttr {
                                    element: "membership_approval_request",
                                    attr: "jid",
                                },
                            )?,
                            requested_at: crate::ops::attr_number(r, "request_time").unwrap_or(0),
                        })
                    })
                    .collect::<Result<_, ParseError>>()?;
                Ok(GroupAnswer::Requests(requests))
            }
            C::DecideRequests { approve, .. } => {
                let tag = if *approve { "approve" } else { "reject" };
                let list = reply
                    .child("membership_requests_action")
                    .and_then(|a| a.child(tag))
                    .ok_or(ParseError::Missing("membership_requests_action"))?;
                let outcomes = list
                    .children()
                    .iter()
                    .filter(|p| p.tag == "participant")
                    .map(parse_participant)
                    .collect::<Result<_, _>>()?;
                Ok(GroupAnswer::Participants(outcomes))
            }
            C::Picture { .. } => Ok(GroupAnswer::Picture(super::picture::parse(reply)?)),
            C::Community(c) => Ok(c
                .parse(reply)?
                .map_or(GroupAnswer::Done, GroupAnswer::SubGroups)),
            C::Set { .. } | C::Leave { .. } => Ok(GroupAnswer::Done),
        }
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
