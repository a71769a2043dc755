//! The keepalive ping (`xmlns="w:p"`), and the answer to the server's own `urn:xmpp:ping`.

use super::{Iq, IqKind, IqSpec, ParseError};
use crate::binary::Node;

/// `<iq xmlns="w:p" type="get"/>`: any result means the link is alive (whatsmeow
/// `keepalive.go` sends it with no children).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ping;

impl IqSpec for Ping {
    type Output = ();

    fn iq(&self) -> Iq {
        Iq::to_server("w:p", IqKind::Get, Vec::new())
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}

/// Whether a server request is its ping (answered with a bare result).
pub fn is_server_ping(iq: &Node) -> bool {
    iq.attr("xmlns")
        .is_some_and(|x| x.as_str() == "urn:xmpp:ping")
}
