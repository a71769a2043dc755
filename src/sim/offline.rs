//! The offline queue: what the server keeps for a linked device while it is away, and how it
//! hands it over after the device goes active, as WhatsApp Web sees it (whatsapp-rust
//! `offline_resume.rs`, WA Web `WAWebOfflineHandler`):
//!
//! 1. `<ib><offline_preview count=N …/>` announces the backlog;
//! 2. nothing is delivered until the device asks with `<ib><offline_batch count=K/>`; each
//!    batch is up to K stanzas, marked `offline="1"`;
//! 3. `<ib><offline count=N/>` ends it (at once when nothing was queued).
//!
//! The queue holds at most [`MAX_QUEUED`] stanzas per device, dropping the oldest, and is kept
//! in the data directory when there is one (`persist/offline.rs`): a restarted sandbox still
//! hands a device what it missed. A stanza leaves the queue when it is handed over in a batch
//! (the real server waits for the device's ack; a device that drops mid-batch loses it here).

use super::shared::Shared;
use super::stanzas;
use super::state::State;
use crate::binary::Node;

/// Most stanzas kept for one offline device.
pub const MAX_QUEUED: usize = 1000;

/// Keeps `node` for every linked device of `phone` that is not connected now. Called with the
/// state lock held, so the store sees each queue's writes and removals in order.
pub(crate) fn queue_for_absent(shared: &Shared, st: &mut State, phone: &str, node: &Node) {
    let absent: Vec<String> = st
        .devices
        .values()
        .filter(|d| d.phone == phone && !d.removed)
        .map(|d| d.jid())
        .filter(|jid| !st.online.contains_key(jid))
        .collect();
    for jid in absent {
        let seq = st.next_offline;
        st.next_offline += 1;
        let queue = st.offline.entry(jid.clone()).or_default();
        if queue.len() >= MAX_QUEUED {
            if let Some((old, _)) = queue.pop_front() {
                shared.persist(|s| s.delete_offline(&jid, old));
            }
        }
        queue.push_back((seq, node.clone()));
        shared.persist(|s| s.put_offline(&jid, seq, node));
    }
}

/// After `<active/>`: the preview of what is queued, or the end marker when nothing is.
pub(crate) fn on_active(shared: &Shared, jid: &str) -> Node {
    let mut st = shared.lock();
    let queued = st.offline.get(jid).map_or(0, |q| q.len());
    if queued == 0 {
        st.offline_sent.remove(jid);
        return stanzas::offline_done(0);
    }
    st.offline_sent.insert(jid.to_owned(), 0);
    let n = queued.to_string();
    Node::new("ib")
        .with_attr("from", stanzas::server_jid())
        .with_children(vec![
            Node::new("offline_preview")
                .with_attr("count", n.clone())
                .with_attr("message", "0")
                .with_attr("notification", n)
                .with_attr("receipt", "0")
                .with_attr("call", "0")
                .with_attr("appdata", "0"),
        ])
}

/// An `<ib>` from the device: `offline_batch count=K` delivers up to K queued stanzas, then
/// the end marker once the queue is empty. Other `<ib>` (telemetry) need no answer.
pub(crate) fn on_ib(shared: &Shared, jid: &str, ib: &Node) -> Vec<Node> {
    let Some(want) = ib
        .child("offline_batch")
        .and_then(|b| stanzas::attr(b, "count"))
        .and_then(|c| c.parse::<usize>().ok())
    else {
        return Vec::new();
    };
    let mut st = shared.lock();
    // Only after a preview, and not again after the end marker.
    let Some(sent) = st.offline_sent.get(jid).copied() else {
        return Vec::new();
    };
    let queue = st.offline.entry(jid.to_owned()).or_default();
    let taken: Vec<(u64, Node)> = (0..want).map_while(|_| queue.pop_front()).collect();
    let empty = queue.is_empty();
    let batch: Vec<Node> = taken
        .into_iter()
        .map(|(seq, n)| {
            shared.persist(|s| s.delete_offline(jid, seq));
            n.with_attr("offline", "1")
        })
        .collect();
    let total = sent.saturating_add(u32::try_from(batch.len()).unwrap_or(u32::MAX));
    let now = super::shared::unix_now();
    for node in &batch {
        st.log_sent(jid, now, node);
    }
    let mut out = batch;
    if empty {
        st.offline.remove(jid);
        st.offline_sent.remove(jid);
        out.push(stanzas::offline_done(total));
    } else {
        st.offline_sent.insert(jid.to_owned(), total);
    }
    out
}
