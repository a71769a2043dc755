//! The groups of a community (`w:g2` addressed to the community's parent group): list them
//! (`sub_groups`), link an existing group (`links`), unlink one (`unlink`). A community itself
//! is created with [`super::CreateGroup`] and `community: true` (`<parent>`); the server then
//! creates its announcement group, which the list marks with `<default_sub_group/>`.
//!
//! Stanzas (whatsmeow `group.go` `GetSubGroups` / `LinkGroup` / `UnlinkGroup`, Baileys
//! `Socket/communities.ts`): get `<sub_groups/>`, answered by `<sub_groups>` holding a
//! `<group id|jid subject s_t>` per linked group; set `<links><link link_type="sub_group"><group
//! jid/></link></links>`; set `<unlink unlink_type="sub_group"><group jid/></unlink>`. Only the
//! community's admins may link or unlink (401), a group has at most one community (409).

use super::info::text;
use crate::binary::{AttrValue, Node, jid};
use crate::ops::{FieldError, ParseError, Problem};
use crate::types::{GroupJid, Jid};

/// The link type of a group inside a community (whatsmeow `GroupLinkChangeTypeSub`).
pub const SUB_GROUP: &str = "sub_group";
/// Most linked groups read from one answer (a bound on work a peer can cause).
pub const MAX_SUB_GROUPS: usize = 1024;

/// One request about a community's groups.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CommunityCall {
    /// The linked groups, the announcement group included.
    SubGroups {
        /// The community, `…@g.us`.
        community: Jid,
    },
    /// Link an existing group into the community.
    Link {
        /// The community, `…@g.us`.
        community: Jid,
        /// The group to link, `…@g.us`.
        group: Jid,
    },
    /// Unlink a group from the community (it stays a group).
    Unlink {
        /// The community, `…@g.us`.
        community: Jid,
        /// The linked group, `…@g.us`.
        group: Jid,
    },
}

/// A group linked to a community, as the list names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedGroup {
    /// `…@g.us`.
    pub jid: Jid,
    /// Its name, when the server said.
    pub subject: Option<String>,
    /// The community's announcement group (`<default_sub_group/>`).
    pub is_announcement: bool,
}

impl CommunityCall {
    /// The community the request goes to.
    pub fn community(&self) -> &Jid {
        match self {
            Self::SubGroups { community }
            | Self::Link { community, .. }
            | Self::Unlink { community, .. } => community,
        }
    }

    /// Adds what WhatsApp would refuse to `errors`: both JIDs are group JIDs (the community in
    /// the path is `jid`, the other group `group_jid`), and a community is not linked to itself.
    pub(super) fn check(&self, errors: &mut Vec<FieldError>) {
        let (Self::Link { community, group } | Self::Unlink { community, group }) = self else {
            return;
        };
        if let Err(e) = GroupJid::from_jid(group.clone()) {
            errors.push(FieldError::new("group_jid", e.into()));
        } else if group == community {
            errors.push(FieldError::new("group_jid", Problem::LinkToItself));
        }
    }

    /// The IQ's child.
    pub(super) fn node(&self) -> Node {
        match self {
            Self::SubGroups { .. } => Node::new("sub_groups"),
            Self::Link { group, .. } => Node::new("links").with_children(vec![
                Node::new("link")
                    .with_attr("link_type", SUB_GROUP)
                    .with_children(vec![Node::new("group").with_attr("jid", group.clone())]),
            ]),
            Self::Unlink { group, .. } => Node::new("unlink")
                .with_attr("unlink_type", SUB_GROUP)
                .with_children(vec![Node::new("group").with_attr("jid", group.clone())]),
        }
    }

    /// Whether the request changes something (`set`) or reads (`get`).
    pub(super) fn is_set(&self) -> bool {
        !matches!(self, Self::SubGroups { .. })
    }

    /// Reads the answer: the list for `SubGroups`, nothing for the others.
    pub(super) fn parse(&self, reply: &Node) -> Result<Option<Vec<LinkedGroup>>, ParseError> {
        if self.is_set() {
            return Ok(None);
        }
        let list = reply
            .child("sub_groups")
            .ok_or(ParseError::Missing("sub_groups"))?;
        list.children()
            .iter()
            .filter(|g| g.tag == "group")
            .take(MAX_SUB_GROUPS)
            .map(parse_linked_group)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// One `<group>` of a sub-groups list or of a link notification: `jid`, or `id` without the
/// server (whatsmeow `parseGroupLinkTargetNode` reads both).
pub fn parse_linked_group(g: &Node) -> Result<LinkedGroup, ParseError> {
    let bad = ParseError::BadAttr {
        element: "group",
        attr: "jid",
    };
    let jid = match g.attr("jid").and_then(AttrValue::to_jid) {
        Some(j) => j,
        None => {
            let id = g.attr("id").map(text).ok_or(bad.clone())?;
            if id.contains('@') {
                id.parse::<Jid>().map_err(|_| bad.clone())?
            } else {
                Jid::new(id, jid::SERVER_GROUP)
            }
        }
    };
    if jid.server != jid::SERVER_GROUP || jid.user.is_empty() {
        return Err(bad);
    }
    Ok(LinkedGroup {
        jid,
        subject: g.attr("subject").map(text),
        is_announcement: g.child("default_sub_group").is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::{decode_owned, encode_to_vec};
    use crate::ops::IqSpec;
    use crate::ops::groups::{GroupAnswer, GroupCall};

    fn community() -> Jid {
        Jid::new("120363000000000001", "g.us")
    }

    fn group() -> Jid {
        Jid::new("120363000000000002", "g.us")
    }

    #[test]
    fn link_and_unlink_have_whatsmeows_shape() {
        let link = GroupCall::Community(CommunityCall::Link {
            community: community(),
            group: group(),
        });
        let iq = link.spec(0).iq();
        assert_eq!(iq.to, community());
        assert_eq!(iq.kind, crate::ops::IqKind::Set);
        assert_eq!(
            iq.children[0].to_string(),
            r#"<links><link link_type="sub_group"><group jid="120363000000000002@g.us"/></link></links>"#
        );
        let unlink = GroupCall::Community(CommunityCall::Unlink {
            community: community(),
            group: group(),
        });
        let node = unlink.spec(0).iq().into_node("1.2-3");
        let back = decode_owned(&encode_to_vec(&node).expect("encodes")).expect("decodes");
        assert_eq!(
            back.children()[0].to_string(),
            r#"<unlink unlink_type="sub_group"><group jid="120363000000000002@g.us"/></unlink>"#
        );
    }

    #[test]
    fn validation_names_the_fields() {
        let fields = |call: CommunityCall| -> Vec<(String, Problem)> {
            GroupCall::Community(call)
                .normalize()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.field, e.problem))
                .collect()
        };
        let itself = fields(CommunityCall::Link {
            community: community(),
            group: community(),
        });
        assert_eq!(itself, [("group_jid".to_owned(), Problem::LinkToItself)]);
        let both = fields(CommunityCall::Unlink {
            community: Jid::new("5511", "s.whatsapp.net"),
            group: Jid::new("5512", "s.whatsapp.net"),
        });
        let names: Vec<&str> = both.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["jid", "group_jid"]);
    }

    #[test]
    fn sub_groups_are_read_with_the_announcement_group_marked() {
        let call = GroupCall::Community(CommunityCall::SubGroups {
            community: community(),
        });
        let reply =
            Node::new("iq").with_children(vec![Node::new("sub_groups").with_children(vec![
                Node::new("group")
                    .with_attr("id", "120363000000000003")
                    .with_attr("subject", "News")
                    .with_children(vec![Node::new("default_sub_group")]),
                Node::new("group").with_attr("jid", group()),
            ])]);
        let GroupAnswer::SubGroups(list) = call.spec(0).parse(&reply).expect("parses") else {
            panic!("not a list");
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].jid.to_string(), "120363000000000003@g.us");
        assert!(list[0].is_announcement && !list[1].is_announcement);
        assert_eq!(list[0].subject.as_deref(), Some("News"));
        let missing = call.spec(0).parse(&Node::new("iq"));
        assert_eq!(missing, Err(ParseError::Missing("sub_groups")));
        let bad = Node::new("iq").with_children(vec![Node::new("sub_groups").with_children(vec![
            Node::new("group").with_attr("id", "5511@s.whatsapp.net"),
        ])]);
        assert!(call.spec(0).parse(&bad).is_err());
    }
}
