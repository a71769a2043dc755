//! Communities as WhatsApp's server runs them, pure functions over [`GroupRecord`]s: read a
//! request addressed to a community ([`parse`]: `sub_groups`, `links`, `unlink`), check it
//! ([`check_link`], [`check_unlink`]) and say what to answer and notify. The caller
//! ([`crate::sim::group_ops`]) finds the records, stores the change and delivers it.
//!
//! A group belongs to a community through its own `linked_parent`, so it can have one parent
//! only; the community's groups are the groups naming it. Creating a community also creates its
//! announcement group ([`announcement_group`]), marked `<default_sub_group/>`.
//!
//! Rules (whatsmeow `LinkGroup` / `UnlinkGroup` / `GetSubGroups`; where the references are
//! silent, a strict choice): the community must exist (404) and be one (406); listing needs a
//! member (403); linking and unlinking need an admin of the community (401, 403 for a
//! non-member), and linking an admin of the group too (401, 403 when not in it); the group must
//! exist (404) and not be a community (406); a group already in a community is 409; unlinking a
//! group the community does not hold is 404 and unlinking the announcement group 406.

use super::super::model::{GroupRecord, Member};
use super::super::stanzas::{self, IqError};
use super::admin::{Actor, is_admin, is_member};
use crate::binary::Node;
use crate::binary::jid::SERVER_GROUP;

/// The only link type this sandbox knows (whatsmeow `GroupLinkChangeTypeSub`).
const SUB_GROUP: &str = "sub_group";

/// A request addressed to a community.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `<sub_groups/>` (get): the linked groups.
    SubGroups,
    /// `<links><link link_type="sub_group"><group jid/></link></links>` (set).
    Link(String),
    /// `<unlink unlink_type="sub_group"><group jid/></unlink>` (set).
    Unlink(String),
}

/// Reads a community request, or `None` if the IQ is not one.
pub fn parse(iq: &Node) -> Result<Option<Request>, IqError> {
    let Some(child) = iq.children().first() else {
        return Ok(None);
    };
    let set = stanzas::attr(iq, "type").as_deref() == Some("set");
    let target = |holder: &Node| -> Result<String, IqError> {
        let groups: Vec<&Node> = holder
            .children()
            .iter()
            .filter(|g| g.tag == "group")
            .collect();
        let [one] = groups.as_slice() else {
            return Err(IqError::BAD_REQUEST);
        };
        one.attr("jid")
            .and_then(|j| j.to_jid())
            .filter(|j| j.server == SERVER_GROUP && !j.user.is_empty() && j.device.is_none())
            .map(|j| j.to_string())
            .ok_or(IqError::BAD_REQUEST)
    };
    let request = match (child.tag.as_str(), set) {
        ("sub_groups", false) => Request::SubGroups,
        ("links", true) => {
            let [link] = child.children() else {
                return Err(IqError::BAD_REQUEST);
            };
            if link.tag != "link" || stanzas::attr(link, "link_type").as_deref() != Some(SUB_GROUP)
            {
                return Err(IqError::BAD_REQUEST);
            }
            Request::Link(target(link)?)
        }
        ("unlink", true) => {
            if stanzas::attr(child, "unlink_type").as_deref() != Some(SUB_GROUP) {
                return Err(IqError::BAD_REQUEST);
            }
            Request::Unlink(target(child)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(request))
}

/// The community exists (the caller looked it up: `None` is 404) and is one.
pub fn community(found: Option<&GroupRecord>) -> Result<&GroupRecord, IqError> {
    let c = found.ok_or(IqError::ITEM_NOT_FOUND)?;
    if c.community {
        Ok(c)
    } else {
        Err(IqError::NOT_ACCEPTABLE)
    }
}

/// Who may list: a member of the community.
pub fn check_list(c: &GroupRecord, actor: &Actor<'_>) -> Result<(), IqError> {
    if is_member(c, actor) {
        Ok(())
    } else {
        Err(IqError::FORBIDDEN)
    }
}

fn check_admin(g: &GroupRecord, actor: &Actor<'_>) -> Result<(), IqError> {
    if !is_member(g, actor) {
        Err(IqError::FORBIDDEN)
    } else if !is_admin(g, actor) {
        Err(IqError::NOT_AUTHORIZED)
    } else {
        Ok(())
    }
}

/// May `actor` link `group` (`None`: unknown) into community `c`?
pub fn check_link(
    c: &GroupRecord,
    group: Option<&GroupRecord>,
    actor: &Actor<'_>,
) -> Result<(), IqError> {
    check_admin(c, actor)?;
    let g = group.ok_or(IqError::ITEM_NOT_FOUND)?;
    if g.community {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    check_admin(g, actor)?;
    if g.linked_parent.is_some() {
        return Err(IqError::CONFLICT);
    }
    Ok(())
}

/// May `actor` unlink `group` (`None`: unknown) from community `c`?
pub fn check_unlink(
    c: &GroupRecord,
    group: Option<&GroupRecord>,
    actor: &Actor<'_>,
) -> Result<(), IqError> {
    check_admin(c, actor)?;
    let g = group
        .filter(|g| g.linked_parent.as_deref() == Some(c.jid.as_str()))
        .ok_or(IqError::ITEM_NOT_FOUND)?;
    if g.default_sub_group {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    Ok(())
}

/// A linked group as lists and notifications name it: `<group jid subject s_t>`, with
/// `<default_sub_group/>` for the announcement group.
pub fn group_ref(g: &GroupRecord) -> Node {
    let node = Node::new("group")
        .with_attr("jid", jid(&g.jid))
        .with_attr("subject", g.subject.as_str())
        .with_attr("s_t", g.creation.to_string());
    if g.default_sub_group {
        node.with_children(vec![Node::new("default_sub_group")])
    } else {
        node
    }
}

/// The answer to `<sub_groups/>`: the announcement group first, then the others as created.
pub fn sub_groups<'a>(groups: impl Iterator<Item = &'a GroupRecord>) -> Node {
    let mut list: Vec<&GroupRecord> = groups.collect();
    list.sort_by_key(|g| !g.default_sub_group);
    Node::new("sub_groups").with_children(list.into_iter().map(group_ref).collect())
}

/// The change element of a link (`true`) or unlink notification, sent from the community.
pub fn change(g: &GroupRecord, linked: bool) -> Node {
    if linked {
        Node::new("link")
            .with_attr("link_type", SUB_GROUP)
            .with_children(vec![group_ref(g)])
    } else {
        Node::new("unlink")
            .with_attr("unlink_type", SUB_GROUP)
            .with_attr("unlink_reason", "unlink_group")
            .with_children(vec![group_ref(g)])
    }
}

/// The reply to a link or unlink: the request's element echoed.
pub fn reply(g: &GroupRecord, linked: bool) -> Node {
    let target = Node::new("group").with_attr("jid", jid(&g.jid));
    if linked {
        Node::new("links").with_children(vec![
            Node::new("link")
                .with_attr("link_type", SUB_GROUP)
                .with_children(vec![target]),
        ])
    } else {
        Node::new("unlink")
            .with_attr("unlink_type", SUB_GROUP)
            .with_children(vec![target])
    }
}

/// The announcement group the server creates with community `c` (id `id`): same name, only
/// admins send, the creator its only member and admin, linked as the default sub-group.
pub fn announcement_group(c: &GroupRecord, id: &str) -> GroupRecord {
    GroupRecord {
        jid: format!("{id}@{SERVER_GROUP}"),
        subject: c.subject.clone(),
        creator: c.creator.clone(),
        created_by: c.created_by.clone(),
        creation: c.creation,
        description: None,
        announcement: true,
        locked: true,
        join_approval: false,
        member_add_mode: "admin_add".to_owned(),
        ephemeral: 0,
        community: false,
        linked_parent: Some(c.jid.clone()),
        participants: vec![Member {
            jid: c.creator.clone(),
            role: "superadmin".to_owned(),
        }],
        failed: Vec::new(),
        description_id: None,
        invite_code: None,
        revoked_codes: Vec::new(),
        requests: Vec::new(),
        linked_groups: Vec::new(),
        default_sub_group: true,
        picture_id: None,
        picture_sha256: None,
        request_id: c.request_id.clone(),
    }
}

fn jid(text: &str) -> crate::binary::Jid {
    text.parse()
        .unwrap_or_else(|_| crate::binary::Jid::new(text, SERVER_GROUP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::Jid;

    fn group(n: u64, members: &[(&str, &str)]) -> GroupRecord {
        GroupRecord {
            jid: format!("120363{n:012}@g.us"),
            subject: "c".into(),
            creator: "1@s.whatsapp.net".into(),
            created_by: "1:1@s.whatsapp.net".into(),
            creation: 1,
            description: None,
            announcement: false,
            locked: false,
            join_approval: false,
            member_add_mode: "all_member_add".into(),
            ephemeral: 0,
            community: false,
            linked_parent: None,
            participants: members
                .iter()
                .map(|(j, r)| Member {
                    jid: (*j).into(),
                    role: (*r).into(),
                })
                .collect(),
            failed: Vec::new(),
            description_id: None,
            invite_code: None,
            revoked_codes: Vec::new(),
            requests: Vec::new(),
            linked_groups: Vec::new(),
            default_sub_group: false,
            picture_id: None,
            picture_sha256: None,
            request_id: None,
        }
    }

    fn iq(ty: &str, child: Node) -> Node {
        Node::new("iq")
            .with_attr("type", ty)
            .with_attr("to", Jid::new("120363000000000001", SERVER_GROUP))
            .with_children(vec![child])
    }

    const ADMIN: Actor<'static> = Actor {
        pn: "1@s.whatsapp.net",
        lid: "9@lid",
    };
    const MEMBER: Actor<'static> = Actor {
        pn: "2@s.whatsapp.net",
        lid: "8@lid",
    };

    #[test]
    fn reads_whatsmeows_stanzas_strictly() {
        let g = Jid::new("120363000000000002", SERVER_GROUP);
        let link = Node::new("links").with_children(vec![
            Node::new("link")
                .with_attr("link_type", "sub_group")
                .with_children(vec![Node::new("group").with_attr("jid", g.clone())]),
        ]);
        assert_eq!(
            parse(&iq("set", link)),
            Ok(Some(Request::Link(g.to_string())))
        );
        let untyped =
            Node::new("unlink").with_children(vec![Node::new("group").with_attr("jid", g.clone())]);
        assert_eq!(parse(&iq("set", untyped)), Err(IqError::BAD_REQUEST));
        let user = Node::new("unlink")
            .with_attr("unlink_type", "sub_group")
            .with_children(vec![
                Node::new("group").with_attr("jid", Jid::new("5511", "s.whatsapp.net")),
            ]);
        assert_eq!(parse(&iq("set", user)), Err(IqError::BAD_REQUEST));
        assert_eq!(
            parse(&iq("get", Node::new("sub_groups"))),
            Ok(Some(Request::SubGroups))
        );
        assert_eq!(parse(&iq("get", Node::new("query"))), Ok(None));
    }

    #[test]
    fn only_admins_of_both_link_and_a_group_has_one_parent() {
        let mut c = group(
            1,
            &[
                ("1@s.whatsapp.net", "superadmin"),
                ("2@s.whatsapp.net", "member"),
            ],
        );
        c.community = true;
        let mut g = group(
            2,
            &[
                ("1@s.whatsapp.net", "admin"),
                ("2@s.whatsapp.net", "member"),
            ],
        );
        assert_eq!(
            check_link(&c, Some(&g), &MEMBER),
            Err(IqError::NOT_AUTHORIZED)
        );
        assert_eq!(check_link(&c, None, &ADMIN), Err(IqError::ITEM_NOT_FOUND));
        assert_eq!(check_link(&c, Some(&g), &ADMIN), Ok(()));
        assert_eq!(
            check_link(&c, Some(&c), &ADMIN),
            Err(IqError::NOT_ACCEPTABLE)
        );
        g.linked_parent = Some("120363000000000009@g.us".into());
        assert_eq!(check_link(&c, Some(&g), &ADMIN), Err(IqError::CONFLICT));
        assert_eq!(
            check_unlink(&c, Some(&g), &ADMIN),
            Err(IqError::ITEM_NOT_FOUND)
        );
        g.linked_parent = Some(c.jid.clone());
        assert_eq!(
            check_unlink(&c, Some(&g), &MEMBER),
            Err(IqError::NOT_AUTHORIZED)
        );
        assert_eq!(check_unlink(&c, Some(&g), &ADMIN), Ok(()));
        let news = announcement_group(&c, "120363000000000003");
        assert_eq!(
            check_unlink(&c, Some(&news), &ADMIN),
            Err(IqError::NOT_ACCEPTABLE)
        );
        assert_eq!(community(Some(&g)).err(), Some(IqError::NOT_ACCEPTABLE));
    }

    #[test]
    fn lists_the_announcement_group_first_and_notifies_in_whatsmeows_shape() {
        let mut c = group(1, &[("1@s.whatsapp.net", "superadmin")]);
        c.community = true;
        let news = announcement_group(&c, "120363000000000003");
        let g = group(2, &[]);
        let list = sub_groups([&g, &news].into_iter());
        assert_eq!(
            list.children()[0].to_string(),
            r#"<group jid="120363000000000003@g.us" subject="c" s_t="1"><default_sub_group/></group>"#
        );
        assert_eq!(
            change(&g, false).to_string(),
            r#"<unlink unlink_type="sub_group" unlink_reason="unlink_group"><group jid="120363000000000002@g.us" subject="c" s_t="1"/></unlink>"#
        );
    }
}
