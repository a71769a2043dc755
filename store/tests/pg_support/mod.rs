//! A real PostgreSQL for tests: a throw-away cluster in a temp dir, on a loopback port, killed
//! when dropped. No Docker and no network: Debian's `postgresql` package (`.ci/run` installs
//! it when missing). As root, the server runs as the `postgres` user, since `initdb` refuses
//! root.
//!
//! Where PostgreSQL truly cannot run, [`TempPostgres::start`] prints a loud SKIPPED line and
//! returns `None`; with `CI` set it panics instead, so a skip never passes in CI.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running throw-away PostgreSQL.
pub struct TempPostgres {
    server: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl TempPostgres {
    /// Starts one, or says loudly why it cannot (and fails under CI).
    pub fn start(test: &str) -> Option<TempPostgres> {
        match Self::try_start() {
            Ok(pg) => Some(pg),
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!("{test}: PostgreSQL is required in CI but could not start: {why}");
                }
                // Written to the stderr handle itself: the test harness captures `eprintln!`,
                // and a skip must be seen even when the test is reported as passing.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: PostgreSQL could not start here ({why})"
                );
                None
            }
        }
    }

    fn try_start() -> Result<TempPostgres, String> {
        let bin = bin_dir().ok_or("no PostgreSQL server binaries (install Debian's postgresql)")?;
        let dir = tempfile::Builder::new()
            .prefix("wuts-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let as_root = is_root();
        if as_root {
            // The server must run as an unprivileged user who can reach the temp dir.
            chmod_world_traversable(dir.path())?;
            chown_postgres(dir.path())?;
        }
        let run = |program: &Path| {
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        let out = run(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "wuts",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        let server = run(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let pg = TempPostgres { server, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("the server did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(pg)
    }

    /// A connection URL for the `postgres` database as `wuts`.
    pub fn url(&self) -> String {
        format!("postgres://wuts@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a fresh database and returns its URL, so tests sharing a server stay apart.
    pub fn database(&self, name: &str) -> String {
        let status = Command::new("psql")
            .arg(self.url())
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .stdout(Stdio::null())
            .status()
            .expect("psql runs");
        assert!(status.success(), "CREATE DATABASE {name}");
        format!("postgres://wuts@127.0.0.1:{}/{name}", self.port)
    }

    /// The data directory's parent (sockets, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WUTS_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("postgres").exists().then_some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(path: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "chown to postgres failed (no postgres user?)".to_owned())
}

/// Lets the `postgres` user reach a temp dir under a root-only parent.
fn chmod_world_traversable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut at = Some(path);
    while let Some(p) = at {
        if let Ok(meta) = std::fs::metadata(p) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 && p != path {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001))
                    .map_err(|e| format!("chmod {}: {e}", p.display()))?;
            }
        }
        at = p.parent();
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
