//! Delivering what the sandbox sends on its own initiative (group notifications) to every
//! connected device of the accounts concerned, logged for `GET /control/notifications`. Below
//! the request handlers (`group_ops`, `community_ops`, `picture_ops`), which all use it.

use super::shared::Shared;
use super::state::{Command, State};
use crate::binary::jid::SERVER_LID;
use crate::binary::{Jid, Node};

/// Sends `node` to every connected device of the accounts `members` (JID text, phone number
/// or LID), logging each send.
pub(crate) fn notify(shared: &Shared, st: &mut State, members: &[String], node: &Node, now: u64) {
    let mut phones: Vec<String> = Vec::new();
    for m in members {
        let Ok(j) = m.parse::<Jid>() else { continue };
        let phone = if j.server == SERVER_LID {
            st.phone_of_lid(&j.user)
        } else {
            Some(j.user.to_string())
        };
        if let Some(p) = phone.filter(|p| !phones.contains(p)) {
            phones.push(p);
        }
    }
    let mut sends = Vec::new();
    for phone in &phones {
        for (device, tx) in st.online_devices_of(phone) {
            st.log_sent(&device, now, node);
            sends.push(tx);
        }
        super::offline::queue_for_absent(shared, st, phone, node);
    }
    if sends.is_empty() {
        return;
    }
    let node = node.clone();
    // After the reply: the requester's own task sends its reply before it reads commands.
    tokio::spawn(async move {
        for tx in sends {
            let _ = tx.send(Command::Send(node.clone())).await;
        }
    });
}
