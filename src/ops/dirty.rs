//! Dirty bits: the server's `<ib><dirty type timestamp/></ib>` says some of the account's state
//! changed while the companion was away (`account_sync`, `groups`, ...); the companion answers
//! that it is clean again (whatsmeow `MarkNotDirty`, Baileys `cleanDirtyBits`).

use super::{Iq, IqKind, IqSpec, ParseError};
use crate::binary::Node;

/// `<iq xmlns="urn:xmpp:whatsapp:dirty" type="set"><clean type timestamp/></iq>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clean {
    /// The dirty type, as the server named it.
    pub kind: String,
    /// The server's timestamp, passed back as given, when it sent one.
    pub timestamp: Option<String>,
}

impl Clean {
    /// The answer to an `<ib>` carrying `<dirty>`, if it carries one with a type.
    pub fn answering(ib: &Node) -> Option<Self> {
        let dirty = ib.child("dirty")?;
        let text = |k: &str| dirty.attr(k).map(|v| v.as_str().into_owned());
        Some(Clean {
            kind: text("type").filter(|t| !t.is_empty())?,
            timestamp: text("timestamp"),
        })
    }
}

impl IqSpec for Clean {
    type Output = ();

    fn iq(&self) -> Iq {
        let mut clean = Node::new("clean").with_attr("type", self.kind.clone());
        if let Some(ts) = &self.timestamp {
            clean = clean.with_attr("timestamp", ts.clone());
        }
        Iq::to_server("urn:xmpp:whatsapp:dirty", IqKind::Set, vec![clean])
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dirty_bit_is_answered_with_its_type_and_timestamp() {
        let ib = Node::new("ib").with_children(vec![
            Node::new("dirty")
                .with_attr("type", "account_sync")
                .with_attr("timestamp", "1800000000"),
        ]);
        let clean = Clean::answering(&ib).unwrap();
        let iq = clean.iq();
        assert_eq!(iq.xmlns, "urn:xmpp:whatsapp:dirty");
        let node = &iq.children[0];
        assert_eq!(node.tag, "clean");
        assert_eq!(
            node.attr("timestamp").map(|t| t.as_str().into_owned()),
            Some("1800000000".to_owned())
        );
        assert!(Clean::answering(&Node::new("ib")).is_none());
    }
}
