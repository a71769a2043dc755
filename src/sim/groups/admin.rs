//! What WhatsApp's server does with a group request after create, as pure functions over a
//! [`GroupRecord`]: read the request ([`parse`]), check who may do it and apply it
//! ([`apply`]), and say what to answer and which change elements to notify. The request is
//! read by [`super::request::parse`].
//!
//! Rules (WhatsApp's, and where the references are silent, a strict choice documented here):
//! - the actor must be a participant: else 403 `forbidden`;
//! - admin-only (else 401 `not-authorized`): remove, promote, demote, the invite link,
//!   announcement, locked, join approval, member add mode; adding too unless the member add
//!   mode is `all_member_add`; subject, description and the disappearing timer when `locked`;
//! - per participant: adding a member is 409, removing, promoting or demoting a non-member
//!   is 404, touching the creator (remove or demote) by anyone but the creator is 401, a full
//!   group is 419, and adding follows the number's behaviour (403 with an invite, 404 ...);
//! - subject: blank 400, over [`MAX_SUBJECT_CHARS`] 406; description: over
//!   [`MAX_DESCRIPTION_CHARS`] 406, a `prev` that is not the current description's id 409;
//!   timer: one of [`EPHEMERAL_TIMERS`] or 400;
//! - a change to what already holds is accepted and notifies nobody;
//! - when the last admin leaves (or is removed or demoted), the longest-standing member
//!   becomes admin, as WhatsApp does, and that is notified as a `promote`.

use super::super::model::{GroupRecord, JoinRequest, Member};
use super::super::stanzas::IqError;
use super::create::{Fate, MAX_DESCRIPTION_CHARS, MAX_GROUP_SIZE, MAX_SUBJECT_CHARS, Requested};
pub use super::request::Request;
use crate::binary::{Jid, Node};

/// Who acts: the account's phone-number and LID JIDs (a member may be listed by either).
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// `phone@s.whatsapp.net`.
    pub pn: &'a str,
    /// `lid@lid`.
    pub lid: &'a str,
}

impl Actor<'_> {
    fn is(&self, jid: &str) -> bool {
        jid == self.pn || jid == self.lid
    }
}

/// What the server needs from outside the record while applying a request.
pub struct Env<'a> {
    /// Unix seconds.
    pub now: u64,
    /// What happens to someone added (their number's behaviour).
    pub fate: &'a mut dyn FnMut(&Requested) -> Fate,
    /// A fresh invite-link code.
    pub new_code: &'a mut dyn FnMut() -> String,
}

/// The outcome of an applied request.
#[derive(Debug, Default)]
pub struct Applied {
    /// The children of the IQ result.
    pub reply: Vec<Node>,
    /// Change elements for a `w:gp2` notification to every member (none: nothing changed).
    pub changes: Vec<Node>,
    /// Accounts (JID text) that are no longer members but must hear of the change.
    pub also_notify: Vec<String>,
}

/// Whether `actor` is in the group.
pub fn is_member(g: &GroupRecord, actor: &Actor<'_>) -> bool {
    g.participants.iter().any(|m| actor.is(&m.jid))
}

fn role_of<'a>(g: &'a GroupRecord, actor: &Actor<'_>) -> Option<&'a str> {
    g.participants
        .iter()
        .find(|m| actor.is(&m.jid))
        .map(|m| m.role.as_str())
}

/// Whether `actor` is an admin (or the superadmin) of the group.
pub fn is_admin(g: &GroupRecord, actor: &Actor<'_>) -> bool {
    role_of(g, actor).is_some_and(|r| r != "member")
}

/// Applies `req` from `actor` to `g` (the caller has found the group: an unknown one is 404).
pub fn apply(
    g: &mut GroupRecord,
    actor: &Actor<'_>,
    req: Request,
    env: &mut Env<'_>,
) -> Result<Applied, IqError> {
    if let Request::Accept { code } = req {
        return accept(g, actor, &code, env.now);
    }
    if !is_member(g, actor) {
        return Err(IqError::FORBIDDEN);
    }
    let admin = is_admin(g, actor);
    let need_admin = |yes: bool| {
        if yes {
            Ok(())
        } else {
            Err(IqError::NOT_AUTHORIZED)
        }
    };
    let mut out = Applied::default();
    match req {
        Request::Query => out.reply.push(super::create::group_node(g, false)),
        Request::Participants(action, list) => {
            let may = admin || (action == "add" && g.member_add_mode == "all_member_add");
            need_admin(may)?;
            participants(g, actor, action, &list, env, &mut out);
        }
        Request::Subject(subject) => {
            need_admin(admin || !g.locked)?;
            if subject.trim().is_empty() {
                return Err(IqError::BAD_REQUEST);
            }
            if subject.chars().count() > MAX_SUBJECT_CHARS {
                return Err(IqError::NOT_ACCEPTABLE);
            }
            if g.subject != subject {
                g.subject = subject.clone();
                out.changes.push(
                    Node::new("subject")
                        .with_attr("subject", subject)
                        .with_attr("s_t", env.now.to_string())
                        .with_attr("s_o", jid(actor.pn)),
                );
            }
        }
        Request::Description { id, prev, body } => {
            need_admin(admin || !g.locked)?;
            if body
                .as_ref()
                .is_some_and(|b| b.chars().count() > MAX_DESCRIPTION_CHARS)
            {
                return Err(IqError::NOT_ACCEPTABLE);
            }
            if g.description.is_some() && prev != g.description_id {
                return Err(IqError::CONFLICT);
            }
            let body = body.filter(|b| !b.is_empty());
            if g.description != body {
                g.description = body.clone();
                g.description_id = body.as_ref().map(|_| id.clone());
                let change = Node::new("description").with_attr("id", id);
                out.changes.push(match body {
                    Some(b) => {
                        change.with_children(vec![Node::new("body").with_bytes(b.into_bytes())])
                    }
                    None => change.with_children(vec![Node::new("delete")]),
                });
            }
        }
        Request::Announce(on) => {
            need_admin(admin)?;
            if g.announcement != on {
                g.announcement = on;
                out.changes.push(Node::new(if on {
                    "announcement"
                } else {
                    "not_announcement"
                }));
            }
        }
        Request::Locked(on) => {
            need_admin(admin)?;
            if g.locked != on {
                g.locked = on;
                out.changes
                    .push(Node::new(if on { "locked" } else { "unlocked" }));
            }
        }
        Request::JoinApproval(on) => {
            need_admin(admin)?;
            if g.join_approval != on {
                g.join_approval = on;
                let state = if on { "on" } else { "off" };
                out.changes.push(
                    Node::new("membership_approval_mode")
                        .with_children(vec![Node::new("group_join").with_attr("state", state)]),
                );
            }
        }
        Request::MemberAddMode(mode) => {
            need_admin(admin)?;
            if g.member_add_mode != mode {
                g.member_add_mode = mode.clone();
                out.changes
                    .push(Node::new("member_add_mode").with_bytes(mode.into_bytes()));
            }
        }
        Request::Ephemeral(secs) => {
            need_admin(admin || !g.locked)?;
            if g.ephemeral != secs {
                g.ephemeral = secs;
                out.changes.push(if secs == 0 {
                    Node::new("not_ephemeral")
                } else {
                    Node::new("ephemeral").with_attr("expiration", secs.to_string())
                });
            }
        }
        Request::Invite(reset) => {
            need_admin(admin)?;
            let code = match (&g.invite_code, reset) {
                (Some(code), false) => code.clone(),
                (old, _) => {
                    let fresh = (env.new_code)();
                    if let Some(old) = old.clone() {
                        g.revoked_codes.push(old);
                        out.changes
                            .push(Node::new("invite").with_attr("code", fresh.as_str()));
                    }
                    g.invite_code = Some(fresh.clone());
                    fresh
                }
            };
            out.reply
                .push(Node::new("invite").with_attr("code", code.as_str()));
        }
        Request::ListRequests => {
            need_admin(admin)?;
            let list = g
                .requests
                .iter()
                .map(|r| {
                    Node::new("membership_approval_request")
                        .with_attr("jid", jid(&r.jid))
                        .with_attr("request_time", r.requested_at.to_string())
                })
                .collect();
            out.reply
                .push(Node::new("membership_approval_requests").with_children(list));
        }
        Request::Decide(approve, who) => {
            need_admin(admin)?;
            decide(g, approve, &who, &mut out);
        }
        Request::Accept { .. } => {}
    }
    Ok(out)
}

fn jid(text: &str) -> Jid {
    text.parse()
        .unwrap_or_else(|_| Jid::new(text, crate::binary::jid::SERVER_PN))
}

fn participant_node(text: &str) -> Node {
    Node::new("participant").with_attr("jid", jid(text))
}

/// Add, remove, promote or demote, each participant on its own (the reply lists every one,
/// with `error` when refused).
fn participants(
    g: &mut GroupRecord,
    actor: &Actor<'_>,
    action: &'static str,
    list: &[Requested],
    env: &mut Env<'_>,
    out: &mut Applied,
) {
    let mut reply = Vec::new();
    let mut done = Vec::new();
    let actor_is_creator = actor.is(&g.creator);
    for p in list {
        let text = p.jid.to_string();
        let index = g.participants.iter().position(|m| m.jid == text);
        let node = participant_node(&text);
        let error = |code: u16| node.clone().with_attr("error", code.to_string());
        let touches_creator = text == g.creator && !actor_is_creator;
        match (action, index) {
            ("add", Some(_)) => reply.push(error(409)),
            ("add", None) if g.participants.len() >= MAX_GROUP_SIZE => reply.push(error(419)),
            ("add", None) => match (env.fate)(p) {
                Fate::Added => {
                    g.participants.push(Member {
                        jid: text.clone(),
                        role: "member".to_owned(),
                    });
                    g.failed.retain(|f| f.jid != text);
                    g.requests.retain(|r| r.jid != text);
                    done.push(text);
                    reply.push(node);
                }
                Fate::Failed { code, add_request } => {
                    let mut n = error(code);
                    if let Some(r) = &add_request {
                        n = n.with_children(vec![
                            Node::new("add_request")
                                .with_attr("code", r.code.as_str())
                                .with_attr("expiration", r.expiration.to_string()),
                        ]);
                    }
                    g.failed.retain(|f| f.jid != text);
                    g.failed.push(super::super::model::FailedParticipant {
                        jid: text,
                        code,
                        add_request,
                    });
                    reply.push(n);
                }
            },
            (_, None) => reply.push(error(404)),
            ("remove" | "demote", Some(_)) if touches_creator => reply.push(error(401)),
            ("remove", Some(i)) => {
                g.participants.remove(i);
                out.also_notify.push(text.clone());
                done.push(text);
                reply.push(node);
            }
            (_, Some(i)) => {
                let role = if action == "promote" {
                    "admin"
                } else {
                    "member"
                };
                if g.participants[i].role != "superadmin" && g.participants[i].role != role {
                    g.participants[i].role = role.to_owned();
                    done.push(text);
                }
                reply.push(node);
            }
        }
    }
    out.reply.push(Node::new(action).with_children(reply));
    if !done.is_empty() {
        out.changes.push(
            Node::new(action).with_children(done.iter().map(|d| participant_node(d)).collect()),
        );
    }
    if let Some(promoted) = ensure_admin(g) {
        out.changes.push(promoted);
    }
}

/// Approves (adds) or rejects pending join requests; someone who did not ask is their 404.
fn decide(g: &mut GroupRecord, approve: bool, who: &[String], out: &mut Applied) {
    let tag = if approve { "approve" } else { "reject" };
    let mut reply = Vec::new();
    let mut done = Vec::new();
    for w in who {
        let node = participant_node(w);
        match g.requests.iter().position(|r| r.jid == *w) {
            None => reply.push(node.with_attr("error", "404")),
            Some(i) => {
                g.requests.remove(i);
                if approve && !g.participants.iter().any(|m| m.jid == *w) {
                    g.participants.push(Member {
                        jid: w.clone(),
                        role: "member".to_owned(),
                    });
                }
                done.push(participant_node(w));
                reply.push(node);
            }
        }
    }
    out.reply.push(
        Node::new("membership_requests_action")
            .with_children(vec![Node::new(tag).with_children(reply)]),
    );
    if !done.is_empty() {
        out.changes.push(if approve {
            Node::new("add")
                .with_attr("reason", "approved")
                .with_children(done)
        } else {
            Node::new("revoked_membership_requests").with_children(done)
        });
    }
}

/// When members remain and none is an admin, the longest-standing member becomes one; the
/// `promote` change to notify.
pub fn ensure_admin(g: &mut GroupRecord) -> Option<Node> {
    if g.participants.is_empty() || g.participants.iter().any(|m| m.role != "member") {
        return None;
    }
    let first = g.participants.first_mut()?;
    first.role = "admin".to_owned();
    Some(Node::new("promote").with_children(vec![participant_node(&first.jid)]))
}

/// `actor` leaves `g` (the caller found it). 403 when not a member.
pub fn leave(g: &mut GroupRecord, actor: &Actor<'_>) -> Result<Applied, IqError> {
    let i = g
        .participants
        .iter()
        .position(|m| actor.is(&m.jid))
        .ok_or(IqError::FORBIDDEN)?;
    let gone = g.participants.remove(i);
    let mut out = Applied {
        changes: vec![Node::new("remove").with_children(vec![participant_node(&gone.jid)])],
        also_notify: vec![gone.jid],
        ..Applied::default()
    };
    out.changes.extend(ensure_admin(g));
    Ok(out)
}

/// `actor` joins `g` by its link code (the caller matched the code): a member already gets
/// the group back; a join-approval group files a request (notified to admins only, through
/// [`Applied::also_notify`] staying empty and `changes` holding the request); else added.
pub fn join_by_link(g: &mut GroupRecord, actor: &Actor<'_>, now: u64) -> (Applied, bool) {
    let group = jid(&g.jid);
    let mut out = Applied::default();
    if is_member(g, actor) {
        out.reply.push(Node::new("group").with_attr("jid", group));
        return (out, false);
    }
    if g.join_approval {
        if !g.requests.iter().any(|r| actor.is(&r.jid)) {
            g.requests.push(JoinRequest {
                jid: actor.pn.to_owned(),
                requested_at: now,
                method: "invite_link".to_owned(),
            });
            out.changes.push(
                Node::new("created_membership_requests")
                    .with_attr("request_method", "invite_link")
                    .with_children(vec![participant_node(actor.pn)]),
            );
        }
        out.reply
            .push(Node::new("membership_approval_request").with_attr("jid", group));
        return (out, true);
    }
    g.participants.push(Member {
        jid: actor.pn.to_owned(),
        role: "member".to_owned(),
    });
    out.changes.push(
        Node::new("add")
            .with_attr("reason", "invite")
            .with_children(vec![participant_node(actor.pn)]),
    );
    out.reply.push(Node::new("group").with_attr("jid", group));
    (out, false)
}

/// Joining with the invite a privacy-restricted participant was sent: the code must be the
/// one offered to this account (406 otherwise) and not expired (410).
fn accept(
    g: &mut GroupRecord,
    actor: &Actor<'_>,
    code: &str,
    now: u64,
) -> Result<Applied, IqError> {
    if is_member(g, actor) {
        return Ok(Applied::default());
    }
    let offered = g
        .failed
        .iter()
        .position(|f| actor.is(&f.jid) && f.add_request.as_ref().is_some_and(|r| r.code == code))
        .ok_or(IqError::NOT_ACCEPTABLE)?;
    if g.failed[offered]
        .add_request
        .as_ref()
        .is_some_and(|r| r.expiration < now)
    {
        return Err(IqError::GONE);
    }
    let f = g.failed.remove(offered);
    g.participants.push(Member {
        jid: f.jid.clone(),
        role: "member".to_owned(),
    });
    Ok(Applied {
        changes: vec![
            Node::new("add")
                .with_attr("reason", "invite")
                .with_children(vec![participant_node(&f.jid)]),
        ],
        ..Applied::default()
    })
}
