//! `remove-companion-device`: a companion logging itself out tells the server first, so the
//! phone's "Linked devices" list drops it at once (whatsmeow `Logout`).

use std::time::Duration;

use super::{Iq, IqKind, IqSpec, ParseError};
use crate::binary::Node;
use crate::types::Jid;

/// How long a logout waits for the server before wiping anyway: the keys go either way.
pub const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// `<iq xmlns="md" type="set"><remove-companion-device jid=OWN reason="user_initiated"/></iq>`.
#[derive(Clone, Debug)]
pub struct RemoveCompanion {
    /// Our own device JID.
    pub own: Jid,
}

impl IqSpec for RemoveCompanion {
    type Output = ();

    fn iq(&self) -> Iq {
        let node = Node::new("remove-companion-device")
            .with_attr("jid", self.own.clone())
            .with_attr("reason", "user_initiated");
        Iq {
            timeout: Some(LOGOUT_TIMEOUT),
            ..Iq::to_server("md", IqKind::Set, vec![node])
        }
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}
