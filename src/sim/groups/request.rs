//! Reading a `w:g2` request addressed to a group (`to="…@g.us"`) into a [`Request`]: the
//! stanza shapes of whatsmeow `group.go` and Baileys `Socket/groups.ts`, strictly (a malformed
//! one is 400 `bad-request`).

use super::super::stanzas::{self, IqError};
use super::create::{EPHEMERAL_TIMERS, Requested, is_user_jid};
use crate::binary::Node;

/// One request addressed to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `<query>`: the metadata.
    Query,
    /// `<add|remove|promote|demote>` with participants.
    Participants(&'static str, Vec<Requested>),
    /// `<subject>`.
    Subject(String),
    /// `<description id prev?>` with a body, or `delete="true"`.
    Description {
        /// The new id.
        id: String,
        /// The id it replaces.
        prev: Option<String>,
        /// The text; `None` deletes.
        body: Option<String>,
    },
    /// `<announcement/>` / `<not_announcement/>`.
    Announce(bool),
    /// `<locked/>` / `<unlocked/>`.
    Locked(bool),
    /// `<membership_approval_mode><group_join state>`.
    JoinApproval(bool),
    /// `<member_add_mode>`.
    MemberAddMode(String),
    /// `<ephemeral expiration>` / `<not_ephemeral/>`.
    Ephemeral(u32),
    /// `<invite/>`: get (`false`) or reset (`true`).
    Invite(bool),
    /// `<membership_approval_requests/>`: the pending join requests (admins only).
    ListRequests,
    /// `<membership_requests_action><approve|reject>` with participants (admins only).
    Decide(bool, Vec<String>),
    /// `<accept code expiration admin>`: join with an invite sent to this participant.
    Accept {
        /// The invite code.
        code: String,
    },
}

/// Reads a `w:g2` IQ addressed to a group (`to="…@g.us"`), or `None` if it is not one of
/// these requests.
pub fn parse(iq: &Node) -> Result<Option<(String, Request)>, IqError> {
    let Some(to) = iq.attr("to").and_then(|t| t.to_jid()) else {
        return Ok(None);
    };
    if to.user.is_empty() || to.server != crate::binary::jid::SERVER_GROUP {
        return Ok(None);
    }
    let set = stanzas::attr(iq, "type").as_deref() == Some("set");
    let Some(child) = iq.children().first() else {
        return Err(IqError::BAD_REQUEST);
    };
    let text = |n: &Node| {
        n.content_bytes()
            .and_then(|b| String::from_utf8(b.into_owned()).ok())
    };
    let request = match (child.tag.as_str(), set) {
        ("query", false) => Request::Query,
        ("invite", reset) => Request::Invite(reset),
        ("add" | "remove" | "promote" | "demote", true) => {
            let action = match child.tag.as_str() {
                "add" => "add",
                "remove" => "remove",
                "promote" => "promote",
                _ => "demote",
            };
            let mut list: Vec<Requested> = Vec::new();
            for p in child.children() {
                let jid = p
                    .attr("jid")
                    .and_then(|j| j.to_jid())
                    .filter(is_user_jid)
                    .ok_or(IqError::BAD_REQUEST)?;
                if !list.iter().any(|q| q.jid == jid) {
                    list.push(Requested {
                        jid,
                        phone_number: None,
                    });
                }
            }
            if list.is_empty() {
                return Err(IqError::BAD_REQUEST);
            }
            Request::Participants(action, list)
        }
        ("subject", true) => Request::Subject(text(child).unwrap_or_default()),
        ("description", true) => Request::Description {
            id: stanzas::attr(child, "id").ok_or(IqError::BAD_REQUEST)?,
            prev: stanzas::attr(child, "prev"),
            body: match stanzas::attr(child, "delete").as_deref() {
                Some("true") => None,
                _ => Some(
                    child
                        .child("body")
                        .and_then(text)
                        .ok_or(IqError::BAD_REQUEST)?,
                ),
            },
        },
        ("announcement", true) => Request::Announce(true),
        ("not_announcement", true) => Request::Announce(false),
        ("locked", true) => Request::Locked(true),
        ("unlocked", true) => Request::Locked(false),
        ("membership_approval_mode", true) => {
            let state = child
                .child("group_join")
                .and_then(|g| stanzas::attr(g, "state"));
            match state.as_deref() {
                Some("on") => Request::JoinApproval(true),
                Some("off") => Request::JoinApproval(false),
                _ => return Err(IqError::BAD_REQUEST),
            }
        }
        ("member_add_mode", true) => match text(child).as_deref() {
            Some(m @ ("admin_add" | "all_member_add")) => Request::MemberAddMode(m.to_owned()),
            _ => return Err(IqError::BAD_REQUEST),
        },
        ("ephemeral", true) => Request::Ephemeral(
            stanzas::attr(child, "expiration")
                .and_then(|e| e.parse().ok())
                .filter(|e| EPHEMERAL_TIMERS.contains(e) && *e != 0)
                .ok_or(IqError::BAD_REQUEST)?,
        ),
        ("not_ephemeral", true) => Request::Ephemeral(0),
        ("membership_approval_requests", false) => Request::ListRequests,
        ("membership_requests_action", true) => {
            let decision = child.children().first().ok_or(IqError::BAD_REQUEST)?;
            let approve = match decision.tag.as_str() {
                "approve" => true,
                "reject" => false,
                _ => return Err(IqError::BAD_REQUEST),
            };
            let who: Vec<String> = decision
                .children()
                .iter()
                .filter_map(|p| p.attr("jid").and_then(|j| j.to_jid()).filter(is_user_jid))
                .map(|j| j.to_string())
                .collect();
            if who.is_empty() {
                return Err(IqError::BAD_REQUEST);
            }
            Request::Decide(approve, who)
        }
        ("accept", true) => Request::Accept {
            code: stanzas::attr(child, "code").ok_or(IqError::BAD_REQUEST)?,
        },
        _ => return Ok(None),
    };
    Ok(Some((to.to_string(), request)))
}
