//! What a cluster checker needs from the sandbox: every accepted login (when, which device,
//! which connection, from which address, under which ownership epoch) and every `replaced`
//! kick (which connection was cut for which). `GET /control/logins` and `GET /control/kicks`.
//!
//! The epoch comes from the `x-wuts-test-epoch` header a debug build's cluster node adds to
//! its websocket upgrade; the sandbox only records it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde::Serialize;
/// A connection's number (the sandbox's `ConnId`).
pub type ConnId = u64;

/// The newest records kept (a long run replaces the oldest).
const KEEP: usize = 100_000;

tokio::task_local! {
    /// The peer of the connection this task serves.
    pub(crate) static PEER: Peer;
}

/// Where a connection came from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Peer {
    pub(crate) source: Option<SocketAddr>,
    pub(crate) epoch: Option<u64>,
}

/// One accepted login.
#[derive(Clone, Debug, Serialize)]
pub struct LoginRecord {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The device JID.
    pub jid: String,
    /// The connection.
    pub conn: ConnId,
    /// The client's address.
    pub source: Option<String>,
    /// The epoch the client presented.
    pub epoch: Option<u64>,
}

/// One `replaced` kick.
#[derive(Clone, Debug, Serialize)]
pub struct KickRecord {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The device JID.
    pub jid: String,
    /// The connection cut.
    pub old_conn: ConnId,
    /// Its login's epoch.
    pub old_epoch: Option<u64>,
    /// The connection that took over.
    pub new_conn: ConnId,
    /// Its login's epoch.
    pub new_epoch: Option<u64>,
}

/// The records.
#[derive(Default)]
pub(crate) struct Audit {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    logins: Vec<LoginRecord>,
    kicks: Vec<KickRecord>,
    epochs: HashMap<ConnId, Option<u64>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Audit {
    /// Every login recorded, oldest first.
    pub(crate) fn logins(&self) -> Vec<LoginRecord> {
        self.inner().logins.clone()
    }

    /// Every kick recorded, oldest first.
    pub(crate) fn kicks(&self) -> Vec<KickRecord> {
        self.inner().kicks.clone()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a login of `jid` on `conn`, and the kick of `old` if it replaced one.
    pub(crate) fn login(&self, jid: &str, conn: ConnId, old: Option<ConnId>) {
        let peer = PEER.try_with(|p| *p).unwrap_or_default();
        let at_ms = now_ms();
        let mut inner = self.inner();
        if inner.logins.len() >= KEEP {
            inner.logins.remove(0);
        }
        inner.epochs.insert(conn, peer.epoch);
        if let Some(old_conn) = old {
            let old_epoch = inner.epochs.get(&old_conn).copied().flatten();
            if inner.kicks.len() >= KEEP {
                inner.kicks.remove(0);
            }
            inner.kicks.push(KickRecord {
                at_ms,
                jid: jid.to_owned(),
                old_conn,
                old_epoch,
                new_conn: conn,
                new_epoch: peer.epoch,
            });
        }
        inner.logins.push(LoginRecord {
            at_ms,
            jid: jid.to_owned(),
            conn,
            source: peer.source.map(|s| s.to_string()),
            epoch: peer.epoch,
        });
    }
}
