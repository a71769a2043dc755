//! `wuts store backup DEST` and `wuts store restore SRC`: copies of a data directory.
//! `wuts store migrate --from DIR --to postgres://...`: a sled deployment into cluster mode.
//!
//! A data directory is open in one process at a time. When no gateway holds it, `backup` copies
//! it here; when a running gateway holds it, `backup` asks that gateway to write the copy
//! (`POST /admin/backup`, admin token from `WUTS_ADMIN_TOKEN`), so the copy is taken from the
//! live store rather than from files being written. `restore` needs the gateway stopped and an
//! empty (or absent) data directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use wuts_store::SledStore;

/// Small: a copy only streams through the cache.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Write a copy of the data directory to DEST (absent or empty), also while the gateway runs.
    Backup(BackupArgs),
    /// Restore a backup into the data directory (absent or empty; the gateway stopped).
    Restore(RestoreArgs),
    /// Move a data directory (the gateway stopped) into an empty cluster database, losing
    /// nothing; then start nodes with --database-url.
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The data directory to move.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The cluster database (`postgres://...`), empty of devices and users.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    to: String,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where the copy goes: a directory that does not exist yet, or an empty one.
    dest: PathBuf,
    /// The data directory.
    #[arg(long, value_name = "DIR", env = "WUTS_DATA", default_value = "./data")]
    data: PathBuf,
    /// The running gateway that holds the data directory (asked to write the copy).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7001")]
    gateway: String,
    /// The admin token, for asking a running gateway.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WUTS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup (a directory written by `wuts store backup`).
    src: PathBuf,
    /// The data directory to restore into (absent or empty).
    #[arg(long, value_name = "DIR", env = "WUTS_DATA", default_value = "./data")]
    data: PathBuf,
}

/// Runs a `wuts store` command.
pub fn run(command: StoreCommand) -> ExitCode {
    let result = match command {
        StoreCommand::Backup(args) => backup(args),
        StoreCommand::Restore(args) => restore(args),
        StoreCommand::Migrate(args) => migrate(args),
    };
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("wuts store: {message}");
            ExitCode::FAILURE
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}

/// The message of an error and its causes, one after the other.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn backup(args: BackupArgs) -> Result<String, String> {
    let dest = absolute(&args.dest)?;
    match SledStore::open_with_cache(&args.data, CACHE_BYTES) {
        Ok(store) => {
            store.copy_to(&dest).map_err(|e| chain(&e))?;
            Ok(format!("backup written to {}", dest.display()))
        }
        Err(wuts_store::Error::Locked { .. }) => {
            let token = args.admin_token.ok_or(
                "the data directory is in use by a running gateway: set WUTS_ADMIN_TOKEN so it \
                 can be asked to write the backup",
            )?;
            ask_gateway(&args.gateway, &token, &dest)?;
            Ok(format!(
                "backup written to {} by the gateway at {}",
                dest.display(),
                args.gateway
            ))
        }
        Err(e) => Err(chain(&e)),
    }
}

fn restore(args: RestoreArgs) -> Result<String, String> {
    let data = absolute(&args.data)?;
    SledStore::restore(&args.src, &data).map_err(|e| chain(&e))?;
    Ok(format!(
        "restored {} into {}; start the gateway with --data {}",
        args.src.display(),
        data.display(),
        data.display()
    ))
}

/// `POST /admin/backup` to a gateway on plain HTTP (it listens on loopback; a proxy in front
/// is not needed to reach it from the same machine).
fn ask_gateway(url: &str, token: &str, dest: &Path) -> Result<(), String> {
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|host| !host.contains('/'))
        .ok_or_else(|| format!("--gateway must be http://HOST:PORT, got {url:?}"))?;
    let dest = dest.to_str().ok_or("the destination path is not UTF-8")?;
    let body = serde_json::json!({ "dest": dest }).to_string();
    let mut stream =
        TcpStream::connect(host).map_err(|e| format!("cannot reach the gateway at {url}: {e}"))?;
    // A copy of a large store takes a while; it still ends.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(600)));
    write!(
        stream,
        "POST /admin/backup HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("cannot send to the gateway: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer from the gateway: {e}"))?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if status == "201" {
        return Ok(());
    }
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    Err(format!("the gateway answered {status}: {body}"))
}

fn migrate(args: MigrateArgs) -> Result<String, String> {
    if !args.from.is_dir() {
        return Err(format!("{} is not a data directory", args.from.display()));
    }
    let store = SledStore::open_with_cache(&args.from, CACHE_BYTES).map_err(|e| {
        format!(
            "{e} (stop the gateway that uses {} first)",
            args.from.display()
        )
    })?;
    let report = wuts_store::migrate::sled_to_pg(&store, &args.to).map_err(|e| {
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        text
    })?;
    Ok(format!(
        "migrated {} devices ({} records), {} tenants, {} users, {} idempotency records, \
         {} events and {} webhooks into the cluster database; start nodes with --database-url",
        report.devices,
        report.device_records,
        report.tenants,
        report.users,
        report.idempotency_records,
        report.events,
        report.webhooks
    ))
}
