//! The driver loop's small waits: store work on the blocking pool, the next socket message,
//! the connect in progress, the next deadline (each pending when there is nothing to wait on,
//! so `select!` can list them all).

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Connecting, Live, Socket};

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs store work on the blocking pool. A panic there is a bug and is passed on; cancellation
/// only happens when the runtime shuts down, which ends this task too.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => std::future::pending().await,
    }
}

pub(super) async fn next_message(live: &mut Option<Live>) -> Option<Result<Message, ()>> {
    match live {
        Some(l) => l.socket.next().await.map(|r| r.map_err(|_| ())),
        None => std::future::pending().await,
    }
}

/// Feeds the connection every message the socket has received already, without waiting.
pub(super) fn read_buffered(live: &mut Live, now: std::time::Duration) {
    use futures_util::FutureExt as _;
    while let Some(Some(Ok(message))) = live.socket.next().now_or_never() {
        if let Message::Binary(bytes) = message {
            live.conn.handle_bytes(now, &bytes);
        }
    }
}

pub(super) async fn connected(connecting: &mut Option<Connecting>) -> Option<Socket> {
    match connecting {
        Some(c) => c.await,
        None => std::future::pending().await,
    }
}

pub(super) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
