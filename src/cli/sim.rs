//! `wuts sim`: runs the sandbox server until interrupted. Prints one JSON line with the URLs and
//! the root key on stdout (for scripts and test harnesses), then logs to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wuts::sim::{Sandbox, SandboxConfig};

/// Options of `wuts sim`.
#[derive(Args)]
pub struct SimArgs {
    /// Address to serve the websocket (/ws/chat) and the control API (/control) on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Keep the root key, accounts, devices, phone behaviours and groups in DIR (a sled store,
    /// one record per change; a DIR/sandbox.json of an earlier build is moved into it).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Derive every key from this seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

pub fn run(args: SimArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wuts sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wuts sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: SimArgs) -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start(SandboxConfig {
        listen: args.listen,
        data_dir: args.data,
        seed: args.seed,
        ..SandboxConfig::default()
    })
    .await?;
    let line = sandbox.info();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    stopped().await?;
    tracing::info!("stopping");
    sandbox.shutdown().await?;
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
