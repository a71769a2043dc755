//! Passive mode: a companion tells the server it is active after login, so messages flow
//! (whatsmeow `SetPassive(false)` right after `success`).

use super::{Iq, IqKind, IqSpec, ParseError};
use crate::binary::Node;

/// `<iq xmlns="passive" type="set"><active/></iq>` (or `<passive/>`).
#[derive(Clone, Copy, Debug)]
pub struct SetPassive(pub bool);

impl IqSpec for SetPassive {
    type Output = ();

    fn iq(&self) -> Iq {
        let child = if self.0 { "passive" } else { "active" };
        Iq::to_server("passive", IqKind::Set, vec![Node::new(child)])
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}
