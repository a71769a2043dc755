//! A TCP proxy between a node and PostgreSQL that can cut the link the way a real partition
//! does: `blackhole` keeps connections open but forwards nothing (no reset, so the client
//! only notices by timing out); `heal` drops every connection that lived through the cut
//! (their protocol state is lost) and passes new ones again.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    /// Even: passing; odd: blackholed. Each change bumps it, so connections know their era.
    era: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies 127.0.0.1:<any> to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let era = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let era = era.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(serve(client, upstream, era.clone()));
                }
            }
        });
        FaultProxy { addr, era, task }
    }

    /// The address nodes connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the link silently.
    pub fn blackhole(&self) {
        self.era.fetch_or(1, Ordering::SeqCst);
        if self.era.load(Ordering::SeqCst) % 2 == 0 {
            self.era.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Restores the link for new connections.
    pub fn heal(&self) {
        if self.era.load(Ordering::SeqCst) % 2 == 1 {
            self.era.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, era: Arc<AtomicU64>) {
    let born = era.load(Ordering::SeqCst);
    if born % 2 == 1 {
        // Accepted during a cut: hold it open and say nothing, like a partition.
        let mut sink = [0u8; 1024];
        while era.load(Ordering::SeqCst) == born {
            match tokio::time::timeout(std::time::Duration::from_millis(50), client.read(&mut sink))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut a = [0u8; 16 * 1024];
    let mut b = [0u8; 16 * 1024];
    loop {
        let tick = tokio::time::sleep(std::time::Duration::from_millis(50));
        tokio::select! {
            read = cr.read(&mut a) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if era.load(Ordering::SeqCst) == born => {
                    if sw.write_all(&a[..n]).await.is_err() { return; }
                }
                Ok(_) => {} // cut: dropped on the floor
            },
            read = sr.read(&mut b) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if era.load(Ordering::SeqCst) == born => {
                    if cw.write_all(&b[..n]).await.is_err() { return; }
                }
                Ok(_) => {}
            },
            _ = tick => {
                let now = era.load(Ordering::SeqCst);
                // Healed after a cut this connection lived through: its state is lost.
                if now != born && now % 2 == 0 {
                    return;
                }
            }
        }
    }
}
