//! A group's picture as WhatsApp's server takes it (`w:profile:picture` set, `to` the server,
//! `target` the group; whatsmeow `SetGroupPhoto`): the group must exist (404) and hold the
//! actor (403); a locked group's picture is its admins' (401); what is not a JPEG (SOI ... EOI)
//! or is over [`MAX_PICTURE_BYTES`] is 406 `not-acceptable`, as WhatsApp answers. The record
//! keeps the new picture's id and digest, the answer is `<picture id>`, and every member hears
//! a `picture` notification (`<set jid id author>`, what Baileys reads).

use sha2::{Digest, Sha256};

use super::deliver::notify;
use super::groups::admin::{Actor, is_admin, is_member};
use super::shared::Shared;
use super::stanzas::{self, IqError};
use crate::binary::jid::{SERVER_GROUP, SERVER_LID, SERVER_PN};
use crate::binary::{Jid, Node};

/// Largest picture taken, in bytes (WhatsApp's own pictures are far smaller).
pub const MAX_PICTURE_BYTES: usize = 1024 * 1024;

/// Handles a `w:profile:picture` set from device `device`; `None` when it is not about a group
/// (the sandbox keeps no profile pictures: the session answers 501).
pub(crate) fn handle_iq(shared: &Shared, device: &str, iq: &Node, now: u64) -> Option<Vec<Node>> {
    let id = stanzas::attr(iq, "id")?;
    let target = iq.attr("target").and_then(|t| t.to_jid())?;
    if target.server != SERVER_GROUP {
        return None;
    }
    let phone = shared.lock().devices.get(device)?.phone.clone();
    let result = set(shared, &phone, &target, iq, now);
    Some(vec![match result {
        Ok(children) => stanzas::iq_result(&id, stanzas::server_jid(), children),
        Err(e) => stanzas::iq_error(&id, stanzas::server_jid(), e),
    }])
}

fn set(
    shared: &Shared,
    phone: &str,
    target: &Jid,
    iq: &Node,
    now: u64,
) -> Result<Vec<Node>, IqError> {
    let picture = iq
        .child("picture")
        .filter(|p| stanzas::attr(p, "type").as_deref() == Some("image"))
        .and_then(Node::content_bytes)
        .ok_or(IqError::BAD_REQUEST)?;
    let is_jpeg = picture.starts_with(&[0xFF, 0xD8]) && picture.ends_with(&[0xFF, 0xD9]);
    let mut st = shared.lock();
    let pn = Jid::new(phone, SERVER_PN).to_string();
    let lid = st
        .accounts
        .get(phone)
        .map(|a| Jid::new(a.lid.as_str(), SERVER_LID).to_string())
        .unwrap_or_default();
    let actor = Actor { pn: &pn, lid: &lid };
    let target = target.to_string();
    let i = st
        .groups
        .iter()
        .position(|g| g.jid == target)
        .ok_or(IqError::ITEM_NOT_FOUND)?;
    let g = &st.groups[i];
    if !is_member(g, &actor) {
        return Err(IqError::FORBIDDEN);
    }
    if g.locked && !is_admin(g, &actor) {
        return Err(IqError::NOT_AUTHORIZED);
    }
    if !is_jpeg || picture.len() > MAX_PICTURE_BYTES {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    let picture_id = st.next_iq_id();
    let digest: String = Sha256::digest(&picture)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut g = st.groups[i].clone();
    g.picture_id = Some(picture_id.clone());
    g.picture_sha256 = Some(digest);
    if let Some(seq) = st.group_seqs.get(&g.jid).copied() {
        shared.persist(|s| s.put_group(seq, &g));
    }
    let members: Vec<String> = g.participants.iter().map(|m| m.jid.clone()).collect();
    let group_jid: Jid = g.jid.parse().map_err(|_| IqError::BAD_REQUEST)?;
    st.groups[i] = g;
    let note_id = st.next_iq_id();
    let author: Jid = pn.parse().map_err(|_| IqError::BAD_REQUEST)?;
    let note = Node::new("notification")
        .with_attr("from", group_jid.clone())
        .with_attr("type", "picture")
        .with_attr("id", note_id)
        .with_attr("t", now.to_string())
        .with_children(vec![
            Node::new("set")
                .with_attr("jid", group_jid)
                .with_attr("id", picture_id.as_str())
                .with_attr("author", author),
        ]);
    notify(shared, &mut st, &members, &note, now);
    Ok(vec![Node::new("picture").with_attr("id", picture_id)])
}
