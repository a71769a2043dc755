//! The synchronous store traits on an asynchronous driver.
//!
//! [`Store`](crate::Store) and [`GatewayStore`](crate::gateway::GatewayStore) are synchronous:
//! sled answers from memory, and every caller (engine driver, HTTP handlers, CLI) already calls
//! them inline. PostgreSQL's driver is async. Rather than make every trait async at once, the
//! PostgreSQL stores run their queries on a small runtime they own and wait for the answer on a
//! plain channel. That works from any thread (inside another runtime too, where `block_on`
//! would panic), and every wait is bounded, so a database that stops answering turns into a
//! typed error instead of a hung caller. The cost is one blocked caller thread per query, for
//! the length of a loopback round trip.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::error::{PgError, backend};
use super::schema;

/// How long one store call waits for PostgreSQL by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool on a runtime of its own. Cheap to share behind an `Arc`.
pub struct Bridge {
    /// `Some` until drop, which shuts it down without blocking (dropping a runtime inside
    /// another one's thread would panic).
    runtime: Option<tokio::runtime::Runtime>,
    pool: PgPool,
    timeout: Duration,
}

impl Bridge {
    /// Connects to `url` with at most `connections` connections and brings the schema up to
    /// date. Every later call waits at most `timeout`.
    pub fn connect(url: &str, connections: u32, timeout: Duration) -> Result<Self, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wuts-pg")
            .enable_all()
            .build()
            .map_err(|source| PgError::Runtime { source })?;
        let options = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(timeout);
        // Connect and migrate on a thread of our own, blocking on the new runtime: that works
        // whether or not the caller runs inside another runtime, and the migration's future
        // (sqlx's `raw_sql` is not `Send` for every lifetime) never has to cross threads.
        let pool = std::thread::scope(|scope| {
            let connect = scope.spawn(|| {
                runtime.block_on(async {
                    tokio::time::timeout(timeout, async {
                        let pool = options
                            .connect(url)
                            .await
                            .map_err(backend("connect to the database"))?;
                        let mut conn = pool
                            .acquire()
                            .await
                            .map_err(backend("connect to the database"))?;
                        schema::migrate(&mut conn).await?;
                        drop(conn);
                        Ok(pool)
                    })
                    .await
                    .map_err(|_| PgError::TimedOut {
                        op: "connect",
                        after: timeout,
                    })?
                })
            });
            connect.join().unwrap_or(Err(PgError::Stopped))
        })?;
        Ok(Bridge {
            runtime: Some(runtime),
            pool,
            timeout,
        })
    }

    /// The pool, for async callers on the bridge's runtime.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `query` on the bridge's runtime and waits for it (at most the call timeout).
    pub fn run<T, E, F>(&self, op: &'static str, query: impl FnOnce(PgPool) -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<PgError> + Send + 'static,
    {
        self.run_within(op, self.timeout, query)
    }

    /// [`Bridge::run`], waiting at most `limit` (and never longer than the call timeout).
    pub fn run_within<T, E, F>(
        &self,
        op: &'static str,
        limit: Duration,
        query: impl FnOnce(PgPool) -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<PgError> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(PgError::Stopped.into());
        };
        if limit.is_zero() {
            return Err(PgError::TimedOut { op, after: limit }.into());
        }
        wait(
            runtime,
            self.timeout.min(limit),
            op,
            query(self.pool.clone()),
        )
    }
}

/// Spawns `task` on `runtime` and blocks this thread until it answers or `timeout` passes.
fn wait<T, E, F>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    op: &'static str,
    task: F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<PgError> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = runtime.spawn(async move {
        let _ = tx.send(task.await);
    });
    // On a worker of a multi-threaded runtime, tell it this thread blocks, so its other
    // tasks (a node's lease keeper among them) move to another thread instead of waiting
    // behind a slow database.
    let on_worker = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let answer = if on_worker {
        tokio::task::block_in_place(|| rx.recv_timeout(timeout))
    } else {
        rx.recv_timeout(timeout)
    };
    match answer {
        Ok(result) => result,
        Err(_) => {
            handle.abort();
            Err(PgError::TimedOut { op, after: timeout }.into())
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
