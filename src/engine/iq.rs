//! IQ correlation: ids from a random prefix and a counter (whatsmeow `request.go`), one table of
//! pending requests with deadlines, completed by the matching reply, failed all at once when the
//! connection ends. Nothing leaks if a caller gives up: its entry expires at its deadline.

use std::collections::HashMap;
use std::time::Duration;

use crate::binary::{AttrValue, Node};

/// A caller's request, as the driver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IqId(pub u64);

/// Who waits for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Waiter {
    /// A caller outside the engine.
    Caller(IqId),
    /// The engine itself.
    Internal(Internal),
}

/// The engine's own requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Internal {
    Ping,
    Active,
    PreKeyCount,
    PreKeyUpload,
    Digest,
    Rotate,
    Logout,
    PairCodeHello,
    PairCodeFinish,
    Clean,
}

/// How an IQ ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqError {
    /// `type="error"` with WhatsApp's code and text.
    Rejected {
        /// The code (`406`, ...).
        code: u16,
        /// The text (`not-acceptable`, ...).
        text: String,
    },
    /// No reply within this long.
    Timeout(Duration),
    /// Not sent: the connection is not logged in.
    Disconnected,
    /// Sent, then the connection ended before the reply: WhatsApp may have acted on it.
    Lost,
}

struct Pending {
    waiter: Waiter,
    sent: Duration,
    deadline: Duration,
}

pub(super) struct IqTable {
    prefix: String,
    counter: u64,
    pending: HashMap<String, Pending>,
}

impl IqTable {
    /// `prefix_bytes` come from the caller's RNG: two bytes printed as `"b0.b1-"`.
    pub(super) fn new(prefix_bytes: [u8; 2]) -> Self {
        IqTable {
            prefix: format!("{}.{}-", prefix_bytes[0], prefix_bytes[1]),
            counter: 0,
            pending: HashMap::new(),
        }
    }

    /// A fresh id (`"173.42-1"`, always nibble-packable).
    pub(super) fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}{}", self.prefix, self.counter)
    }

    pub(super) fn insert(
        &mut self,
        id: String,
        waiter: Waiter,
        sent: Duration,
        deadline: Duration,
    ) {
        self.pending.insert(
            id,
            Pending {
                waiter,
                sent,
                deadline,
            },
        );
    }

    /// Whether the engine is waiting for one of its own requests of this kind.
    pub(super) fn has_internal(&self, kind: Internal) -> bool {
        self.pending
            .values()
            .any(|p| p.waiter == Waiter::Internal(kind))
    }

    /// Completes the request a reply answers, if it is one of ours.
    pub(super) fn complete(&mut self, reply: &Node) -> Option<(Waiter, Result<Node, IqError>)> {
        let id = reply.attr("id").map(AttrValue::as_str)?;
        let p = self.pending.remove(id.as_ref())?;
        let result = match reply.attr("type").map(AttrValue::as_str).as_deref() {
            Some("error") => Err(rejection(reply)),
            _ => Ok(reply.clone()),
        };
        Some((p.waiter, result))
    }

    /// Removes and returns the requests whose deadline has passed, each with how long it
    /// waited.
    pub(super) fn expire(&mut self, now: Duration) -> Vec<(Waiter, Duration)> {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| {
                self.pending
                    .remove(&k)
                    .map(|p| (p.waiter, p.deadline.saturating_sub(p.sent)))
            })
            .collect()
    }

    /// Everything still pending, emptied (the connection ended).
    pub(super) fn drain(&mut self) -> Vec<Waiter> {
        self.pending.drain().map(|(_, p)| p.waiter).collect()
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Duration> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

/// WhatsApp's `<error code text>`; a malformed one reads as 500.
pub fn rejection(reply: &Node) -> IqError {
    let e = reply.child("error");
    let code = e
        .and_then(|e| e.attr("code"))
        .and_then(|c| c.as_str().parse().ok())
        .unwrap_or(500);
    let text = e
        .and_then(|e| e.attr("text"))
        .map(|t| t.as_str().into_owned())
        .unwrap_or_default();
    IqError::Rejected { code, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefix_and_counter_and_nibble_packable() {
        let mut t = IqTable::new([173, 42]);
        assert_eq!(t.next_id(), "173.42-1");
        assert_eq!(t.next_id(), "173.42-2");
    }

    #[test]
    fn replies_complete_and_deadlines_expire() {
        let mut t = IqTable::new([1, 2]);
        let a = t.next_id();
        let b = t.next_id();
        t.insert(
            a.clone(),
            Waiter::Caller(IqId(1)),
            Duration::ZERO,
            Duration::from_secs(10),
        );
        t.insert(
            b.clone(),
            Waiter::Caller(IqId(2)),
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        let reply = Node::new("iq")
            .with_attr("id", a.as_str())
            .with_attr("type", "error")
            .with_children(vec![
                Node::new("error")
                    .with_attr("code", "406")
                    .with_attr("text", "not-acceptable"),
            ]);
        let (w, r) = t.complete(&reply).expect("ours");
        assert_eq!(w, Waiter::Caller(IqId(1)));
        assert_eq!(
            r,
            Err(IqError::Rejected {
                code: 406,
                text: "not-acceptable".into()
            })
        );
        assert!(t.complete(&reply).is_none(), "a second reply is ignored");
        assert_eq!(t.next_deadline(), Some(Duration::from_secs(5)));
        assert_eq!(
            t.expire(Duration::from_secs(5)),
            [(Waiter::Caller(IqId(2)), Duration::from_secs(4))]
        );
        assert!(t.drain().is_empty());
    }
}
