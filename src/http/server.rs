//! The accept loop: connections with a header-read (and idle) timeout, a cap with headroom for
//! the admin API and probes, a back-off when the process runs out of file descriptors, and a
//! shutdown that ends within its deadline whatever the clients do.
//!
//! axum's own `serve` sets no timer, so a client that sends half a header holds its connection
//! (and a file descriptor) forever; this loop is hyper's auto builder with a timer, fed one
//! connection at a time.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::AppState;

/// Limits of the HTTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// A client must send a request's whole header within this long; an idle keep-alive
    /// connection is closed after it too.
    pub header_read_timeout: Duration,
    /// Connections served normally. Past this, new connections only reach the admin API and
    /// the probes (`/healthz`, `/readyz`, `/metrics`); others get 503 `SERVER_BUSY`.
    pub max_connections: usize,
    /// Connections kept for the admin API and probes beyond `max_connections`; past both, a new
    /// connection is closed at once.
    pub reserved_connections: usize,
    /// How long a shutdown waits for in-flight requests before answering them 503 and closing
    /// every connection.
    pub shutdown_deadline: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(20),
            max_connections: 4096,
            reserved_connections: 64,
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// Open connections, shared with the request middleware.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: AtomicUsize,
}

impl Connections {
    /// How many are open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Decrements the count when a connection ends, however it ends.
struct Counted(Arc<AppState>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether an accept error means "out of file descriptors" (the process's or the system's).
fn out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// Serves `router` until `shutdown` completes, then drains: stop accepting, let in-flight
/// requests finish until the deadline, answer the rest 503, close every connection.
pub(crate) async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = state.config.limits.clone();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout));
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(5);
                    accepted
                }
                Err(error) if out_of_descriptors(&error) => {
                    // Spinning on accept would starve everything else; wait for descriptors
                    // to come back (timeouts close slow connections meanwhile).
                    tracing::warn!(%error, wait_ms = backoff.as_millis(), "out of file descriptors");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    continue;
                }
            },
        };
        let open = state.connections.open.fetch_add(1, Ordering::Relaxed) + 1;
        let counted = Counted(state.clone());
        if open > limits.max_connections + limits.reserved_connections {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tasks.spawn(async move {
            let _counted = counted;
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
        // Reap finished connection tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    state.begin_shutdown();
    if tokio::time::timeout(limits.shutdown_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        // Past the deadline: in-flight requests answer 503 (the middleware is watching), get
        // a moment to be written, then every connection closes.
        tracing::warn!("shutdown deadline reached: answering in-flight requests 503");
        state.hard_stop();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
