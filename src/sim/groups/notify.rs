//! The `w:gp2` notification that reports a group change to every member's devices, in the
//! shape clients parse (whatsmeow `parseGroupChange`, Baileys `handleGroupNotification`):
//! `<notification from="…@g.us" type="w:gp2" id t participant>` around the change elements
//! [`super::admin::apply`] produced.

use crate::binary::jid::{SERVER_GROUP, SERVER_PN};
use crate::binary::{Jid, Node};

/// The notification for `changes` made by `actor` (an account JID) in `group`, at `now`.
pub fn notification(id: &str, group: &str, actor: &str, now: u64, changes: Vec<Node>) -> Node {
    let parse = |text: &str, server: &str| {
        text.parse::<Jid>()
            .unwrap_or_else(|_| Jid::new(text.split('@').next().unwrap_or(text), server))
    };
    Node::new("notification")
        .with_attr("from", parse(group, SERVER_GROUP))
        .with_attr("type", "w:gp2")
        .with_attr("id", id)
        .with_attr("t", now.to_string())
        .with_attr("participant", parse(actor, SERVER_PN))
        .with_children(changes)
}

/// Whether the changes are for admins only (a join request is not shown to members).
pub fn admins_only(changes: &[Node]) -> bool {
    changes.iter().all(|c| {
        matches!(
            c.tag.as_str(),
            "created_membership_requests" | "revoked_membership_requests"
        )
    }) && !changes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_shape_clients_read() {
        let n = notification(
            "7",
            "120363000000000001@g.us",
            "5511@s.whatsapp.net",
            9,
            vec![Node::new("locked")],
        );
        assert_eq!(
            n.to_string(),
            r#"<notification from="120363000000000001@g.us" type="w:gp2" id="7" t="9" participant="5511@s.whatsapp.net"><locked/></notification>"#
        );
        assert!(!admins_only(&[Node::new("locked")]));
        assert!(admins_only(&[Node::new("created_membership_requests")]));
    }
}
