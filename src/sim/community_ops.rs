//! Community requests on the live state (`sub_groups`, `links`, `unlink` addressed to a
//! community): find the records, apply [`groups::community`]'s rules, store the changed group
//! and notify every member of the community and of the group, from the community, as
//! WhatsApp's `w:gp2` `link` / `unlink` notifications.

use super::deliver::notify;
use super::groups::admin::Actor;
use super::groups::community::{self, Request};
use super::shared::Shared;
use super::stanzas::IqError;
use super::state::State;
use crate::binary::Node;

/// Runs a community request from `actor` to `to` (`…@g.us`); `None` when `iq` is not one.
pub(crate) fn run(
    shared: &Shared,
    st: &mut State,
    actor: &Actor<'_>,
    to: &str,
    iq: &Node,
    now: u64,
) -> Option<Result<Vec<Node>, IqError>> {
    let request = match community::parse(iq) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => return Some(Err(e)),
    };
    Some(apply(shared, st, actor, to, request, now))
}

fn apply(
    shared: &Shared,
    st: &mut State,
    actor: &Actor<'_>,
    to: &str,
    request: Request,
    now: u64,
) -> Result<Vec<Node>, IqError> {
    let c = community::community(st.groups.iter().find(|g| g.jid == to))?;
    let (target, linked) = match request {
        Request::SubGroups => {
            community::check_list(c, actor)?;
            let linked = st
                .groups
                .iter()
                .filter(|g| g.linked_parent.as_deref() == Some(to));
            return Ok(vec![community::sub_groups(linked)]);
        }
        Request::Link(target) => {
            let group = st.groups.iter().find(|g| g.jid == target);
            community::check_link(c, group, actor)?;
            (target, true)
        }
        Request::Unlink(target) => {
            let group = st.groups.iter().find(|g| g.jid == target);
            community::check_unlink(c, group, actor)?;
            (target, false)
        }
    };
    let mut recipients: Vec<String> = c.participants.iter().map(|m| m.jid.clone()).collect();
    let g = st
        .groups
        .iter_mut()
        .find(|g| g.jid == target)
        .ok_or(IqError::ITEM_NOT_FOUND)?;
    g.linked_parent = linked.then(|| to.to_owned());
    let g = g.clone();
    if let Some(seq) = st.group_seqs.get(&g.jid).copied() {
        shared.persist(|s| s.put_group(seq, &g));
    }
    recipients.extend(g.participants.iter().map(|m| m.jid.clone()));
    let id = st.next_iq_id();
    let change = community::change(&g, linked);
    let node = super::groups::notify::notification(&id, to, actor.pn, now, vec![change]);
    notify(shared, st, &recipients, &node, now);
    Ok(vec![community::reply(&g, linked)])
}
