//! Where devices live, for the HTTP layer on any node: [`PgLocator`] answers from the owner
//! rows and the status board, and the publisher keeps this node's devices on that board.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wuts_store::DeviceId;
use wuts_store::pg::{self, Bridge, Fences, PgPool, StatusRow};

use super::lease::NodeIdentity;
use crate::client::Registry;
use crate::client::api::{
    BoxFuture, DeviceState, DeviceStatus, Devices, Error, Locator, PairCodeInfo, Placement, QrCode,
    Reason,
};
use crate::cluster::LeaseTimings;

/// How often this node's device states are compared with what it last published.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// The reason codes a status may carry ([`crate::engine::CloseReason::code`] and the
/// driver's); a code from a newer node shows as `unknown`, with its sentence kept.
const REASON_CODES: [&str; 23] = [
    "node_lost",
    "certificate_invalid",
    "closed_locally",
    "connect_failed",
    "connection_lost",
    "credentials_refused",
    "device_removed",
    "handshake_failed",
    "keepalive_timeout",
    "logged_out_by_whatsapp",
    "login_failed",
    "logout_requested",
    "pairing_failed",
    "pairing_interrupted",
    "pairing_timed_out",
    "protocol_error",
    "replaced",
    "restart_required",
    "session_conflict",
    "setup_timeout",
    "storage_error",
    "stream_error",
    "unknown",
];

const PHASES: [DeviceState; 7] = [
    DeviceState::Unpaired,
    DeviceState::Pairing,
    DeviceState::Connecting,
    DeviceState::Connected,
    DeviceState::Disconnected,
    DeviceState::LoggedOut,
    DeviceState::Error,
];

/// The cluster's answer to "where does this device run".
pub struct PgLocator {
    pool: PgPool,
    bridge: Arc<Bridge>,
    me: NodeIdentity,
    timings: LeaseTimings,
}

impl PgLocator {
    /// A locator reading `pool` (async) and `bridge` (sync status reads) as `me`.
    pub fn new(pool: PgPool, bridge: Arc<Bridge>, me: NodeIdentity, timings: LeaseTimings) -> Self {
        PgLocator {
            pool,
            bridge,
            me,
            timings,
        }
    }
}

impl Locator for PgLocator {
    fn locate(&self, id: DeviceId) -> BoxFuture<'_, Placement> {
        Box::pin(async move {
            let soon = Placement::Failover {
                retry_after: Duration::from_secs(1),
            };
            let Ok(mut conn) = self.pool.acquire().await else {
                return soon;
            };
            match pg::locate(&mut conn, id).await {
                Ok(Some(at)) => match (at.node, at.rpc_addr) {
                    // Ours, but the follower has not started it yet.
                    (Some(node), _) if node == self.me.node => soon,
                    (Some(_), Some(addr)) => match addr.parse() {
                        Ok(addr) => Placement::Owner {
                            addr,
                            epoch: at.epoch.0,
                        },
                        Err(_) => soon,
                    },
                    // No live owner: a survivor claims it after the lease and grace.
                    _ => Placement::Failover {
                        retry_after: self.timings.ttl + self.timings.grace,
                    },
                },
                Ok(None) => Placement::Here,
                Err(error) => {
                    tracing::warn!(%error, device = %id, "locating a device failed");
                    soon
                }
            }
        })
    }

    fn status(&self, id: DeviceId) -> Result<DeviceStatus, Error> {
        let row = self
            .bridge
            .run("read a device status", move |pool: PgPool| async move {
                pg::read_status(&pool, id).await
            })
            .map_err(wuts_store::Error::from)?;
        row.map(status_from).ok_or(Error::NotHere(id))
    }
}

fn status_from(row: StatusRow) -> DeviceStatus {
    if !row.live {
        // Its node died or gave it up; a survivor takes it over (or just did, and has not
        // published yet).
        return DeviceStatus {
            state: DeviceState::Disconnected,
            jid: row.jid.and_then(|j| j.parse().ok()),
            qr: None,
            pair_code: None,
            last_seen: row.last_seen,
            reason: Some(Reason {
                code: "node_lost",
                message: "its gateway node stopped; another node is taking it over".to_owned(),
            }),
        };
    }
    let state = PHASES
        .into_iter()
        .find(|p| p.as_str() == row.state)
        .unwrap_or(DeviceState::Error);
    DeviceStatus {
        state,
        jid: row.jid.and_then(|j| j.parse().ok()),
        qr: row.qr.map(|(code, expires_at, ttl_ms)| QrCode {
            code,
            expires_at,
            ttl: Duration::from_millis(ttl_ms),
        }),
        pair_code: row.pair_code.map(|(code, phone, expires_at)| PairCodeInfo {
            code,
            phone,
            expires_at,
        }),
        last_seen: row.last_seen,
        reason: row.reason.map(|(code, message)| Reason {
            code: REASON_CODES
                .into_iter()
                .find(|known| *known == code)
                .unwrap_or("unknown"),
            message,
        }),
    }
}

fn row_from(status: &DeviceStatus) -> StatusRow {
    StatusRow {
        state: status.state.as_str().to_owned(),
        jid: status.jid.as_ref().map(ToString::to_string),
        reason: status
            .reason
            .as_ref()
            .map(|r| (r.code.to_owned(), r.message.clone())),
        qr: status.qr.as_ref().map(|q| {
            let ttl = u64::try_from(q.ttl.as_millis()).unwrap_or(u64::MAX);
            (q.code.clone(), q.expires_at, ttl)
        }),
        pair_code: status
            .pair_code
            .as_ref()
            .map(|c| (c.code.clone(), c.phone.clone(), c.expires_at)),
        last_seen: status.last_seen,
        live: true,
    }
}

/// Publishes the status of every device this node runs whenever it changes.
pub fn start_publisher(
    pool: PgPool,
    fences: Arc<Fences>,
    registry: Registry,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut published: HashMap<DeviceId, StatusRow> = HashMap::new();
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ids = registry.ids();
            published.retain(|id, _| ids.contains(id));
            for id in ids {
                let (Ok(status), Some(fence)) = (registry.status(id), fences.get(id)) else {
                    continue;
                };
                let row = row_from(&status);
                if published.get(&id) == Some(&row) {
                    continue;
                }
                let Ok(mut conn) = pool.acquire().await else {
                    break;
                };
                match pg::publish_status(&mut conn, &fence, &row).await {
                    Ok(_) => {
                        published.insert(id, row);
                    }
                    Err(error) => tracing::warn!(%error, device = %id, "publishing a status"),
                }
            }
        }
    })
}
