//! Group requests after create, on the live state: find the group, apply the request with
//! [`groups::admin`]'s rules, store the changed record, and deliver the `w:gp2` notification
//! to every connected device of every account it concerns (and log it for
//! `GET /control/notifications`).
//!
//! Devices and the control API go through the same [`run`]: a member played by the control
//! API (`POST /control/group-action`) follows the same rules and causes the same
//! notifications as a real device.

use super::deliver::notify;
use super::groups::{self, admin, admin::Actor};
use super::model::GroupRecord;
use super::shared::Shared;
use super::stanzas::{self, IqError};
use super::state::State;
use crate::binary::jid::{SERVER_GROUP, SERVER_LID, SERVER_PN};
use crate::binary::{Jid, Node};

/// Handles a `w:g2` IQ from device `device` that is not a create. `None`: not a group
/// request this module knows (the session answers 501).
pub(crate) fn handle_iq(shared: &Shared, device: &str, iq: &Node, now: u64) -> Option<Vec<Node>> {
    let id = stanzas::attr(iq, "id")?;
    let phone = shared.lock().devices.get(device)?.phone.clone();
    let (from, result) = run(shared, &phone, iq, now)?;
    Some(vec![match result {
        Ok(children) => stanzas::iq_result(&id, from, children),
        Err(e) => stanzas::iq_error(&id, from, e),
    }])
}

/// What a request produced: whom the answer comes from, and its children or the refusal.
pub(crate) type Outcome = (Jid, Result<Vec<Node>, IqError>);

/// Runs a `w:g2` request as the account of `phone`.
pub(crate) fn run(shared: &Shared, phone: &str, iq: &Node, now: u64) -> Option<Outcome> {
    let to = iq.attr("to").and_then(|t| t.to_jid())?;
    let ty = stanzas::attr(iq, "type").unwrap_or_default();
    let child = iq.children().first()?;
    let groups_jid = stanzas::group_server_jid();
    let mut st = shared.lock();
    let pn = Jid::new(phone, SERVER_PN).to_string();
    let lid = st
        .accounts
        .get(phone)
        .map(|a| Jid::new(a.lid.as_str(), SERVER_LID).to_string())
        .unwrap_or_default();
    let actor = Actor { pn: &pn, lid: &lid };
    if to.user.is_empty() && to.server == SERVER_GROUP {
        let result = match (child.tag.as_str(), ty.as_str()) {
            ("participating", "get") => Ok(participating(&st, &actor)),
            ("leave", "set") => leave(shared, &mut st, &actor, child, now),
            ("invite", "set") => join_by_link(shared, &mut st, &actor, child, now),
            _ => return None,
        };
        return Some((groups_jid, result));
    }
    let to_text = to.to_string();
    if let Some(result) = super::community_ops::run(shared, &mut st, &actor, &to_text, iq, now) {
        return Some((to, result));
    }
    let parsed = groups::request::parse(iq);
    let (group, request) = match parsed {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(e) => return Some((to, Err(e))),
    };
    let Some(i) = st.groups.iter().position(|g| g.jid == group) else {
        return Some((to, Err(IqError::ITEM_NOT_FOUND)));
    };
    // Worked on a copy: adding asks the state for each number's fate. A fresh invite code
    // is drawn first, only for invite requests, so seeded runs stay reproducible.
    let mut g = st.groups[i].clone();
    let mut spare = matches!(request, admin::Request::Invite(_)).then(|| st.new_invite_code());
    let applied = {
        let state = &mut *st;
        let mut fate = |p: &groups::Requested| state.fate(p, now);
        let mut new_code = || spare.take().unwrap_or_default();
        let mut env = admin::Env {
            now,
            fate: &mut fate,
            new_code: &mut new_code,
        };
        admin::apply(&mut g, &actor, request, &mut env)
    };
    let result = applied.map(|mut applied| {
        let reply = std::mem::take(&mut applied.reply);
        commit(shared, &mut st, i, g, &actor, applied, now);
        reply
    });
    Some((to, result))
}

/// Stores the changed group at index `i` and notifies everyone concerned.
fn commit(
    shared: &Shared,
    st: &mut State,
    i: usize,
    g: GroupRecord,
    actor: &Actor<'_>,
    applied: admin::Applied,
    now: u64,
) {
    let changed = st.groups.get(i) != Some(&g);
    if changed {
        if let Some(seq) = st.group_seqs.get(&g.jid).copied() {
            // Under the lock, so records reach the store in the order of the changes.
            shared.persist(|s| s.put_group(seq, &g));
        }
    }
    let (jid, changes, extra) = (g.jid.clone(), applied.changes, applied.also_notify);
    let admins_only = groups::notify::admins_only(&changes);
    let recipients: Vec<String> = g
        .participants
        .iter()
        .filter(|m| !admins_only || m.role != "member")
        .map(|m| m.jid.clone())
        .chain(extra)
        .collect();
    if let Some(slot) = st.groups.get_mut(i) {
        *slot = g;
    }
    if changes.is_empty() {
        return;
    }
    let id = st.next_iq_id();
    let node = groups::notify::notification(&id, &jid, actor.pn, now, changes);
    notify(shared, st, &recipients, &node, now);
}

fn participating(st: &State, actor: &Actor<'_>) -> Vec<Node> {
    let groups = st
        .groups
        .iter()
        .filter(|g| admin::is_member(g, actor))
        .map(|g| groups::group_node(g, false))
        .collect();
    vec![Node::new("groups").with_children(groups)]
}

fn find(st: &State, jid: &str) -> Result<usize, IqError> {
    st.groups
        .iter()
        .position(|g| g.jid == jid)
        .ok_or(IqError::ITEM_NOT_FOUND)
}

/// `<leave><group id/></leave>`: one group per request.
fn leave(
    shared: &Shared,
    st: &mut State,
    actor: &Actor<'_>,
    child: &Node,
    now: u64,
) -> Result<Vec<Node>, IqError> {
    let target = child
        .child("group")
        .and_then(|g| g.attr("id"))
        .and_then(|j| j.to_jid())
        .filter(|j| j.server == SERVER_GROUP && !j.user.is_empty())
        .ok_or(IqError::BAD_REQUEST)?
        .to_string();
    let i = find(st, &target)?;
    let mut g = st.groups[i].clone();
    let applied = admin::leave(&mut g, actor)?;
    commit(shared, st, i, g, actor, applied, now);
    Ok(vec![Node::new("leave").with_children(vec![
        Node::new("group").with_attr(
            "id",
            target.parse::<Jid>().map_err(|_| IqError::BAD_REQUEST)?,
        ),
    ])])
}

/// `<invite code/>` to `@g.us`: join by link. An unknown code is 406, a revoked one 410.
fn join_by_link(
    shared: &Shared,
    st: &mut State,
    actor: &Actor<'_>,
    child: &Node,
    now: u64,
) -> Result<Vec<Node>, IqError> {
    let code = stanzas::attr(child, "code")
        .filter(|c| !c.is_empty())
        .ok_or(IqError::BAD_REQUEST)?;
    let Some(i) = st
        .groups
        .iter()
        .position(|g| g.invite_code.as_deref() == Some(code.as_str()))
    else {
        let revoked = st.groups.iter().any(|g| g.revoked_codes.contains(&code));
        return Err(if revoked {
            IqError::GONE
        } else {
            IqError::NOT_ACCEPTABLE
        });
    };
    let mut g = st.groups[i].clone();
    let (mut applied, _pending) = admin::join_by_link(&mut g, actor, now);
    let reply = std::mem::take(&mut applied.reply);
    commit(shared, st, i, g, actor, applied, now);
    Ok(reply)
}

/// What the control API asks a simulated member to do (`POST /control/group-action`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Action {
    /// The group, `…@g.us`.
    pub group: String,
    /// The member who acts (digits).
    pub actor_phone: String,
    /// `add`, `remove`, `promote`, `demote`, `subject`, `description`, `announce`, `locked`,
    /// `join_approval`, `member_add_mode`, `ephemeral`, `invite_reset`, `leave`, and on a
    /// community `link` / `unlink` (the group's JID in `value`).
    pub action: String,
    /// Phone numbers or JIDs, for the participant actions.
    #[serde(default)]
    pub participants: Vec<String>,
    /// The new value: text for subject, description and member_add_mode (`admin_add` /
    /// `all_member_add`), true/false for the switches, seconds for ephemeral, a group JID for
    /// link and unlink.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// Builds the IQ the member's phone would send for `action`, or says what is wrong with it.
pub(crate) fn action_iq(a: &Action) -> Result<Node, String> {
    let group: Jid = a
        .group
        .parse()
        .ok()
        .filter(|j: &Jid| j.server == SERVER_GROUP && !j.user.is_empty())
        .ok_or("group must be a group JID (…@g.us)")?;
    let on = || {
        a.value
            .as_ref()
            .and_then(serde_json::Value::as_bool)
            .ok_or("value must be true or false")
    };
    let text = || {
        a.value
            .as_ref()
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or("value must be a string")
    };
    let people = || -> Result<Vec<Node>, String> {
        if a.participants.is_empty() {
            return Err("participants is required".to_owned());
        }
        a.participants
            .iter()
            .map(|p| {
                let jid = if p.contains('@') {
                    p.parse().ok()
                } else {
                    Some(Jid::new(p.trim_start_matches('+'), SERVER_PN))
                };
                jid.map(|j: Jid| Node::new("participant").with_attr("jid", j))
                    .ok_or_else(|| format!("{p} is not a phone number or JID"))
            })
            .collect()
    };
    let (to, child) = match a.action.as_str() {
        "add" | "remove" | "promote" | "demote" => {
            (group, Node::new(a.action.as_str()).with_children(people()?))
        }
        "subject" => (group, Node::new("subject").with_bytes(text()?.into_bytes())),
        "description" => {
            let body = text()?;
            (
                group,
                Node::new("description")
                    .with_attr("id", "C0FFEE00")
                    .with_children(vec![Node::new("body").with_bytes(body.into_bytes())]),
            )
        }
        "announce" => (
            group,
            Node::new(if on()? {
                "announcement"
            } else {
                "not_announcement"
            }),
        ),
        "locked" => (group, Node::new(if on()? { "locked" } else { "unlocked" })),
        "join_approval" => (
            group,
            Node::new("membership_approval_mode").with_children(vec![
                Node::new("group_join").with_attr("state", if on()? { "on" } else { "off" }),
            ]),
        ),
        "member_add_mode" => (
            group,
            Node::new("member_add_mode").with_bytes(text()?.into_bytes()),
        ),
        "ephemeral" => {
            let secs = a
                .value
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .ok_or("value must be seconds")?;
            (
                group,
                if secs == 0 {
                    Node::new("not_ephemeral")
                } else {
                    Node::new("ephemeral").with_attr("expiration", secs.to_string())
                },
            )
        }
        "invite_reset" => (group, Node::new("invite")),
        "link" | "unlink" => {
            let target: Jid = text()?
                .parse()
                .map_err(|_| "value must be the group's JID (…@g.us)".to_owned())?;
            let target = Node::new("group").with_attr("jid", target);
            let child = if a.action == "link" {
                Node::new("links").with_children(vec![
                    Node::new("link")
                        .with_attr("link_type", "sub_group")
                        .with_children(vec![target]),
                ])
            } else {
                Node::new("unlink")
                    .with_attr("unlink_type", "sub_group")
                    .with_children(vec![target])
            };
            (group, child)
        }
        "leave" => (
            stanzas::group_server_jid(),
            Node::new("leave").with_children(vec![Node::new("group").with_attr("id", group)]),
        ),
        other => return Err(format!("unknown action {other:?}")),
    };
    let kind = "set";
    Ok(Node::new("iq")
        .with_attr("id", "control")
        .with_attr("xmlns", "w:g2")
        .with_attr("type", kind)
        .with_attr("to", to)
        .with_children(vec![child]))
}

/// The member `phone` asks to join `group` (`POST /control/join-request`), as if by its
/// link: a join-approval group files the request (admins are notified), another adds them.
pub(crate) fn join_request(
    shared: &Shared,
    group: &str,
    phone: &str,
    now: u64,
) -> Result<bool, IqError> {
    let mut st = shared.lock();
    let pn = Jid::new(phone, SERVER_PN).to_string();
    let lid = st
        .accounts
        .get(phone)
        .map(|a| Jid::new(a.lid.as_str(), SERVER_LID).to_string())
        .unwrap_or_default();
    let actor = Actor { pn: &pn, lid: &lid };
    let i = find(&st, group)?;
    let mut g = st.groups[i].clone();
    let (applied, pending) = admin::join_by_link(&mut g, &actor, now);
    commit(shared, &mut st, i, g, &actor, applied, now);
    Ok(pending)
}
