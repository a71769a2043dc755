//! IQs of a logged-in device (facts sheet protocol-connection.md 5.5, protocol-binary.md §6):
//! keepalive, passive/active, pre-keys (count, upload, digest, rotation: `prekeys`), group creation, logout. Everything else gets
//! 501 `feature-not-implemented`, so an engine that depends on an IQ the sandbox lacks finds
//! out at once.
//!
//! Synchronous: takes the state lock for lookups and updates, returns the stanzas to send.

use super::group_ops;
use super::groups::{self, Creation};
use super::model::SimEvent;
use super::offline;
use super::prekeys;
use super::shared::Shared;
use super::stanzas::{self, IqError};
use crate::binary::jid::{SERVER_LID, SERVER_PN};
use crate::binary::{Jid, Node};

/// Handles one `get`/`set` IQ from device `jid`; returns the stanzas to send back (the reply
/// first). An IQ without an id cannot be answered and is dropped.
pub(crate) fn handle_iq(shared: &Shared, jid: &str, iq: &Node, now: u64) -> Vec<Node> {
    let Some(id) = stanzas::attr(iq, "id") else {
        return Vec::new();
    };
    let xmlns = stanzas::attr(iq, "xmlns").unwrap_or_default();
    let ty = stanzas::attr(iq, "type").unwrap_or_default();
    let server = stanzas::server_jid();
    let reply = |r: Result<Vec<Node>, IqError>| match r {
        Ok(children) => stanzas::iq_result(&id, server.clone(), children),
        Err(e) => stanzas::iq_error(&id, server.clone(), e),
    };
    match (xmlns.as_str(), ty.as_str()) {
        // Keepalive, with or without Baileys' <ping/> child.
        ("w:p", "get") => vec![stanzas::pong(&id, now)],
        ("passive", "set") => match iq.children().first().map(|c| c.tag.as_str()) {
            // Going active starts the offline hand-over (`offline`), and tells of state to
            // catch up on (dirty bits).
            Some("active") => {
                let mut out = vec![reply(Ok(Vec::new())), offline::on_active(shared, jid)];
                if let Some((kind, ts)) = shared.lock().dirty.get(jid) {
                    out.push(stanzas::dirty(kind, *ts));
                }
                out
            }
            Some("passive") => vec![reply(Ok(Vec::new()))],
            _ => vec![reply(Err(IqError::BAD_REQUEST))],
        },
        ("encrypt", "get") if iq.child("count").is_some() => {
            let count = shared.lock().devices.get(jid).map_or(0, |d| d.keys.count());
            let node = Node::new("count").with_attr("value", count.to_string());
            vec![reply(Ok(vec![node]))]
        }
        ("encrypt", "get") if iq.child("digest").is_some() => {
            vec![reply(prekeys::digest(shared, jid))]
        }
        ("encrypt", "set") if iq.child("registration").is_some() => {
            vec![reply(prekeys::upload(shared, jid, iq))]
        }
        ("encrypt", "set") if iq.child("rotate").is_some() => {
            vec![reply(prekeys::rotate(shared, jid, iq))]
        }
        ("w:g2", "set") if iq.child("create").is_some() => {
            match create_group(shared, jid, iq, now) {
                Ok(node) => vec![groups::result(&id, &node)],
                Err(e) => vec![stanzas::iq_error(&id, stanzas::group_server_jid(), e)],
            }
        }
        ("urn:xmpp:whatsapp:dirty", "set") => vec![reply(clean(shared, jid, iq))],
        ("md", "set") if iq.child("remove-companion-device").is_some() => {
            vec![reply(logout(shared, jid, iq))]
        }
        ("w:profile:picture", "set") => super::picture_ops::handle_iq(shared, jid, iq, now)
            .unwrap_or_else(|| vec![reply(Err(IqError::NOT_IMPLEMENTED))]),
        ("w:g2", _) => group_ops::handle_iq(shared, jid, iq, now)
            .unwrap_or_else(|| vec![reply(Err(IqError::NOT_IMPLEMENTED))]),
        _ => vec![reply(Err(IqError::NOT_IMPLEMENTED))],
    }
}

/// `<clean type timestamp?>`: clears the device's dirty bit when type (and timestamp, when
/// given) are the ones the server sent; a clean of something never dirty is acknowledged.
fn clean(shared: &Shared, jid: &str, iq: &Node) -> Result<Vec<Node>, IqError> {
    let clean = iq.child("clean").ok_or(IqError::BAD_REQUEST)?;
    let kind = stanzas::attr(clean, "type").ok_or(IqError::BAD_REQUEST)?;
    let ts = stanzas::attr(clean, "timestamp");
    let mut st = shared.lock();
    match st.dirty.get(jid) {
        Some((dirty, at)) if *dirty == kind => {
            if ts.is_some_and(|t| t != at.to_string()) {
                return Err(IqError::BAD_REQUEST);
            }
            st.dirty.remove(jid);
            Ok(Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

/// A companion logging itself out (whatsmeow `Logout`): `<remove-companion-device jid=own
/// reason/>`. The device is unlinked, so later logins fail with 401; the client disconnects.
/// Removing another device of the account is the phone's business, not a companion's: 403.
fn logout(shared: &Shared, jid: &str, iq: &Node) -> Result<Vec<Node>, IqError> {
    let target = iq
        .child("remove-companion-device")
        .and_then(|r| r.attr("jid"))
        .and_then(|j| j.to_jid())
        .ok_or(IqError::BAD_REQUEST)?;
    if target.to_string() != jid {
        return Err(IqError::FORBIDDEN);
    }
    let mut st = shared.lock();
    let device = st.devices.get_mut(jid).ok_or(IqError::NOT_AUTHORIZED)?;
    device.removed = true;
    shared.persist(|s| s.put_device(device));
    Ok(Vec::new())
}

/// Validates and applies a `w:g2` create from device `jid`, stores the group and returns it.
fn create_group(
    shared: &Shared,
    jid: &str,
    iq: &Node,
    now: u64,
) -> Result<super::model::GroupRecord, IqError> {
    let req = groups::parse_create(iq)?;
    let mut st = shared.lock();
    let device = st.devices.get(jid).ok_or(IqError::NOT_AUTHORIZED)?;
    let creator = Jid::new(device.phone.as_str(), SERVER_PN);
    let creator_lid = Jid::new(device.lid.as_str(), SERVER_LID);
    let device_jid: Jid = jid.parse().map_err(|_| IqError::NOT_AUTHORIZED)?;
    if let Some(parent) = &req.linked_parent {
        let parent = parent.to_string();
        let community = st
            .groups
            .iter()
            .find(|g| g.jid == parent)
            .ok_or(IqError::ITEM_NOT_FOUND)?;
        if !community.community {
            return Err(IqError::NOT_ACCEPTABLE);
        }
        let creator_text = creator.to_string();
        let is_admin = community
            .participants
            .iter()
            .any(|m| m.jid == creator_text && m.role != "member");
        if !is_admin {
            return Err(IqError::FORBIDDEN);
        }
    }
    let id = st.new_group_id();
    let creation = Creation {
        id: &id,
        creator: &creator,
        creator_lid: &creator_lid,
        device: &device_jid,
        now,
    };
    let mut record = groups::create(&req, &creation, |p| st.fate(p, now))?;
    record.request_id = iq.attr("id").map(|id| id.as_str().into_owned());
    // A community comes with its announcement group (whatsmeow `ReqCreateGroup`: "created
    // automatically by the server").
    let announcement = record.community.then(|| {
        let id = st.new_group_id();
        groups::community::announcement_group(&record, &id)
    });
    for g in std::iter::once(record.clone()).chain(announcement) {
        st.groups.push(g.clone());
        let seq = st.next_group;
        st.next_group += 1;
        st.group_seqs.insert(g.jid.clone(), seq);
        // Under the lock: a change right after creation must reach the store after it.
        shared.persist(|s| s.put_group(seq, &g));
    }
    drop(st);
    shared.emit(SimEvent::GroupCreated {
        jid: record.jid.clone(),
    });
    Ok(record)
}
