//! QR pairing on a connection: the refs shown as QR codes on their schedule, a scan checked and
//! handed to the driver to persist, and the answer to the phone once it is durable.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use wuts_store as store;

use super::{Connection, PendingPair, Qr};
use crate::binary::Node;
use crate::engine::CloseReason;
use crate::engine::event::Event;
use crate::engine::pair::{self, PairError};
use crate::ops::stanzas;

impl Connection {
    /// The driver made the pairing from [`Event::SavePairing`] durable (or failed to).
    pub fn pairing_saved(&mut self, now: Duration, result: Result<(), store::Error>) {
        let Some(p) = self.pending_pair.take() else {
            return;
        };
        if let Err(e) = result {
            let err = PairError::Malformed("could not save the pairing");
            let reply = pair::error_reply(&p.iq_id, &err);
            self.send_node(now, &reply);
            return self.close(now, CloseReason::Store(Arc::new(e)));
        }
        self.events.push_back(Event::Paired {
            jid: p.jid,
            platform: p.identity.platform.clone(),
            business_name: p.identity.business_name.clone(),
        });
        self.paired = Some(p.identity);
        self.send_node(now, &p.reply);
        // The server now ends the stream with 515; we wait for it.
        self.setup_deadline = Some(now + self.config.setup_timeout);
    }

    pub(super) fn handle_pair_device(&mut self, now: Duration, node: &Node) {
        if self.paired.is_some() {
            return;
        }
        self.setup_deadline = None;
        let reply = stanzas::result_to(node);
        self.send_node(now, &reply);
        let refs: VecDeque<String> = node
            .child("pair-device")
            .map(|p| {
                p.children()
                    .iter()
                    .filter(|c| c.tag == "ref")
                    .filter_map(|c| c.content_bytes())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        self.qr = Some(Qr {
            refs,
            first: true,
            next_at: now,
        });
        self.show_next_qr(now);
        self.after_pair_device(now);
    }

    pub(super) fn show_next_qr(&mut self, now: Duration) {
        let Some(qr) = self.qr.as_mut() else { return };
        let Some(reference) = qr.refs.pop_front() else {
            // A valid pairing code keeps the connection open until it expires.
            match self.code_holds_until(now) {
                Some(until) => {
                    if let Some(qr) = self.qr.as_mut() {
                        qr.next_at = until;
                    }
                    return;
                }
                None => return self.close(now, CloseReason::PairingTimedOut),
            }
        };
        let ttl = if qr.first {
            self.config.qr_ttl.0
        } else {
            self.config.qr_ttl.1
        };
        qr.first = false;
        qr.next_at = now + ttl;
        let code = pair::qr_string(&reference, &self.keys);
        let expires_at = self.unix(now) + ttl.as_secs();
        self.events.push_back(Event::Qr {
            code,
            ttl,
            expires_at,
        });
    }

    pub(super) fn handle_pair_success(&mut self, now: Duration, node: &Node) {
        self.qr = None;
        let mut z = [0u8; 64];
        self.rng.fill_bytes(&mut z);
        let iq_id = node
            .attr("id")
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        // Paired by code, the HMAC key is the secret the code exchange derived.
        let by_code = self.code.take().and_then(|c| c.adv_secret);
        let keys = match by_code {
            Some(secret) => {
                let mut keys = self.keys.clone();
                keys.adv_secret = store::AdvSecret::from_bytes(*secret);
                std::borrow::Cow::Owned(keys)
            }
            None => std::borrow::Cow::Borrowed(&self.keys),
        };
        match pair::handle_pair_success(node, &keys, &z) {
            Ok(paired) => {
                // Saved and flushed by the driver before anyone hears of it, the phone included.
                self.events
                    .push_back(Event::SavePairing(Box::new(paired.identity.clone())));
                self.pending_pair = Some(PendingPair {
                    jid: paired.jid,
                    identity: paired.identity,
                    reply: paired.reply,
                    iq_id,
                });
            }
            Err(err) => {
                let reply = pair::error_reply(&iq_id, &err);
                self.send_node(now, &reply);
                self.close(now, CloseReason::PairingFailed(err));
            }
        }
    }
}
