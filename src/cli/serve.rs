//! `wuts serve`: the gateway process. Settings come from flags, then `WUTS_*` environment
//! variables, then an optional TOML file (`--config`), then defaults that work; the first that
//! sets a value wins.
//!
//! Start-up: open the store, start the sandbox (`--sandbox`), build the device registry
//! ([`build_devices`], which restores paired devices), bind, decide the admin token, serve until
//! Ctrl-C or SIGTERM, then shut down gracefully (`wuts::http::serve`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Deserialize;
use wuts::client::api::Devices;
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::engine::payload::ClientVersion;
use wuts::http::{self, AppState, GatewayConfig, ResponseStyle, SandboxInfo};
use wuts::noise::{PublicKey, WHATSAPP_ROOT_KEY};
use wuts_store::SledStore;
use wuts_store::gateway::GatewayStore;

/// WhatsApp Web's websocket endpoint.
const DEFAULT_WA_URL: &str = "wss://web.whatsapp.com/ws/chat";
const DEFAULT_LISTEN: &str = "127.0.0.1:7001";
const DEFAULT_DATA: &str = "./data";

/// Flags of `wuts serve`. Every one can also be set as `WUTS_<NAME>` or in the TOML file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (env: WUTS_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7001].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Data directory (device keys, users, tokens) [default: ./data].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// WhatsApp-compatible websocket URL [default: WhatsApp's].
    #[arg(long, value_name = "URL")]
    wa_url: Option<String>,
    /// The server's trusted root public key, 64 hex digits [default: WhatsApp's].
    #[arg(long, value_name = "HEX")]
    wa_root_key: Option<String>,
    /// WhatsApp Web version presented at login, `2.3000.N` [default: the newest known]; follow
    /// a WhatsApp version bump (failure 405, client outdated) without a new build.
    #[arg(long, value_name = "VERSION")]
    wa_version: Option<String>,
    /// Run the simulated WhatsApp server in-process and point every device at it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    sandbox: Option<bool>,
    /// Envelope of POST /groups responses: wuts or status [default: wuts].
    #[arg(long, value_name = "STYLE")]
    response_style: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    wa_url: Option<String>,
    wa_root_key: Option<String>,
    wa_version: Option<String>,
    sandbox: Option<bool>,
    response_style: Option<String>,
    log_format: Option<String>,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The server to connect devices to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaEndpoint {
    /// Websocket URL.
    pub url: String,
    /// Trusted root of the server's certificate chain.
    pub root_key: PublicKey,
    /// The WhatsApp Web version sent in the client payload.
    pub version: ClientVersion,
}

/// Every setting, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data: PathBuf,
    /// WhatsApp endpoint (replaced by the sandbox's in sandbox mode).
    pub wa: WaEndpoint,
    /// Sandbox mode.
    pub sandbox: bool,
    /// `POST /groups` envelope.
    pub response_style: ResponseStyle,
    /// Log format.
    pub log_format: LogFormat,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is invalid (exit status 2).
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory could not be opened.
    #[error("store: {0}")]
    Store(#[from] wuts_store::Error),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Picks the first value that is set: flag, environment, file.
fn pick<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(env).or(file)
}

fn parse_hex_key(text: &str) -> Result<PublicKey, ServeError> {
    let text = text.trim();
    let bad = || ServeError::Config(format!("wa_root_key must be 64 hex digits, got {text:?}"));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(PublicKey::from_bytes(key))
}

fn parse_bool(name: &str, text: &str) -> Result<bool, ServeError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(ServeError::Config(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

impl ServeConfig {
    /// Resolves the settings from `args`, the environment (`env` reads one variable) and the
    /// TOML file named by `--config` or `WUTS_CONFIG`.
    pub fn resolve(
        args: ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeError> {
        let path = args
            .config
            .clone()
            .or_else(|| env("WUTS_CONFIG").map(PathBuf::from));
        let file = match path {
            Some(path) => read_file(&path)?,
            None => FileConfig::default(),
        };
        let listen = pick(args.listen, env("WUTS_LISTEN"), file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen
            .trim()
            .parse()
            .map_err(|_| ServeError::Config(format!("listen: not an address: {listen:?}")))?;
        let data = pick(args.data, env("WUTS_DATA").map(PathBuf::from), file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        let url = pick(args.wa_url, env("WUTS_WA_URL"), file.wa_url)
            .unwrap_or_else(|| DEFAULT_WA_URL.to_owned());
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(ServeError::Config(format!(
                "wa_url must be a ws:// or wss:// URL, got {url:?}"
            )));
        }
        let root_key = match pick(args.wa_root_key, env("WUTS_WA_ROOT_KEY"), file.wa_root_key) {
            Some(hex) => parse_hex_key(&hex)?,
            None => WHATSAPP_ROOT_KEY,
        };
        let version = match pick(args.wa_version, env("WUTS_WA_VERSION"), file.wa_version) {
            Some(v) => v
                .trim()
                .parse::<ClientVersion>()
                .map_err(ServeError::Config)?,
            None => ClientVersion::default(),
        };
        let sandbox_env = env("WUTS_SANDBOX")
            .map(|v| parse_bool("WUTS_SANDBOX", &v))
            .transpose()?;
        let sandbox = pick(args.sandbox, sandbox_env, file.sandbox).unwrap_or(false);
        let response_style = pick(
            args.response_style,
            env("WUTS_RESPONSE_STYLE"),
            file.response_style,
        )
        .map(|s| {
            s.trim()
                .parse::<ResponseStyle>()
                .map_err(ServeError::Config)
        })
        .transpose()?
        .unwrap_or_default();
        let log_format = match pick(args.log_format, env("WUTS_LOG_FORMAT"), file.log_format)
            .as_deref()
            .map(str::trim)
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ServeError::Config(format!(
                    "log_format must be text or json, got {other:?}"
                )));
            }
        };
        Ok(Self {
            listen,
            data,
            wa: WaEndpoint {
                url,
                root_key,
                version,
            },
            sandbox,
            response_style,
            log_format,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ServeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
}

/// Builds the device registry over `store` (the same open `SledStore` the gateway uses: one
/// process per data directory), pointing every device at `wa`, and restores the paired devices
/// so they reconnect by themselves.
async fn build_devices(
    store: Arc<SledStore>,
    wa: &WaEndpoint,
) -> Result<Arc<dyn Devices>, ServeError> {
    let config = ClientConfig {
        ws_url: wa.url.clone(),
        engine: Arc::new(EngineConfig {
            trusted_root: wa.root_key,
            version: wa.version,
            ..EngineConfig::default()
        }),
        ..ClientConfig::default()
    };
    let registry = Registry::new(store, config);
    let restored = registry
        .restore()
        .map_err(|e| ServeError::Config(format!("restoring devices: {e}")))?;
    tracing::info!(devices = restored, url = %wa.url, "devices restored");
    Ok(Arc::new(registry))
}

/// A running in-process sandbox; dropping it stops the sandbox.
struct Sandbox {
    /// Where devices connect, and the root they must trust.
    wa: WaEndpoint,
    /// What `GET /admin/sandbox` shows.
    info: SandboxInfo,
    /// The running sandbox; shut down (which flushes its data directory) when serving ends.
    handle: wuts::sim::SandboxHandle,
}

/// Starts the simulated server on a loopback port (port 0),
/// keeping its state in `data/sandbox` so the root key, accounts and paired devices survive a
/// restart, and returns where devices connect: the sandbox's `ws_url()` with its
/// `root_public_key()`, and for `GET /admin/sandbox` its `ws_url()` and `control_url()`. The
/// running handle goes into `handle`.
async fn start_sandbox(data: &Path) -> Result<Sandbox, ServeError> {
    let handle = wuts::sim::Sandbox::start(wuts::sim::SandboxConfig {
        data_dir: Some(data.join("sandbox")),
        ..wuts::sim::SandboxConfig::default()
    })
    .await
    .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
    let info = SandboxInfo {
        ws_url: handle.ws_url(),
        control_url: handle.control_url(),
    };
    tracing::info!(ws_url = %info.ws_url, control_url = %info.control_url, "sandbox started");
    Ok(Sandbox {
        wa: WaEndpoint {
            url: handle.ws_url(),
            root_key: handle.root_public_key(),
            version: ClientVersion::default(),
        },
        info,
        handle,
    })
}

/// Runs `wuts serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let config = match ServeConfig::resolve(args, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("wuts serve: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wuts serve: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "wuts serve failed");
            eprintln!("wuts serve: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (tests calling run twice) is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn serve(mut config: ServeConfig) -> Result<(), ServeError> {
    let store = Arc::new(SledStore::open(&config.data)?);
    let sandbox = if config.sandbox {
        let sandbox = start_sandbox(&config.data).await?;
        // The sandbox replaces the endpoint and its root; the presented version stays.
        config.wa = WaEndpoint {
            version: config.wa.version,
            ..sandbox.wa.clone()
        };
        Some(sandbox)
    } else {
        None
    };
    let devices = build_devices(store.clone(), &config.wa).await?;
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            // The registry may already be connecting devices: close them cleanly.
            devices.shutdown().await;
            return Err(error.into());
        }
    };
    let gateway_store: Arc<dyn GatewayStore> = store.clone();
    let admin_env = std::env::var("WUTS_ADMIN_TOKEN").ok();
    let (admin_hash, generated) =
        http::resolve_admin_token(gateway_store.as_ref(), admin_env.as_deref())?;
    if let Some(token) = generated {
        // Printed once, on stdout (logs go to stderr); only its hash is kept.
        println!("admin token (shown once, keep it): {token}");
    }
    let gateway = GatewayConfig {
        response_style: config.response_style,
        sandbox: sandbox.as_ref().map(|s| s.info.clone()),
        ..GatewayConfig::default()
    };
    let state = AppState::new(devices, gateway_store, gateway, admin_hash);
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "gateway listening");
    // On stdout too, so scripts (and `--listen 127.0.0.1:0`) learn where it is.
    println!("listening on http://{addr}");
    http::serve(listener, state, shutdown_signal()).await?;
    if let Some(sandbox) = sandbox {
        // A failed flush loses at most the sandbox's last half second; say so and exit.
        if let Err(error) = sandbox.handle.shutdown().await {
            tracing::warn!(%error, "sandbox shutdown");
        }
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn resolve(flags: &[&str], env: &[(&str, &str)]) -> Result<ServeConfig, ServeError> {
        let cli = Cli::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .map_err(|e| ServeError::Config(e.to_string()))?;
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServeConfig::resolve(cli.args, &|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_work() {
        let config = resolve(&[], &[]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.data, PathBuf::from("./data"));
        assert_eq!(config.wa.url, DEFAULT_WA_URL);
        assert_eq!(config.wa.root_key, WHATSAPP_ROOT_KEY);
        assert!(!config.sandbox);
        assert_eq!(config.response_style, ResponseStyle::Wuts);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "listen = \"127.0.0.1:9000\"\ndata = \"/file\"\nresponse_style = \"status\"\n\
             sandbox = true\nwa_url = \"ws://file:1\"\nlog_format = \"json\""
        )
        .unwrap();
        let path = file.path().to_str().unwrap();
        let env = [
            ("WUTS_LISTEN", "127.0.0.1:8000"),
            ("WUTS_DATA", "/env"),
            ("WUTS_SANDBOX", "false"),
        ];
        let config = resolve(&["--config", path, "--listen", "127.0.0.1:7000"], &env).unwrap();
        assert_eq!(config.listen.port(), 7000, "flag wins");
        assert_eq!(config.data, PathBuf::from("/env"), "env beats file");
        assert!(!config.sandbox, "env false beats file true");
        assert_eq!(
            config.response_style,
            ResponseStyle::Status,
            "file beats default"
        );
        assert_eq!(config.wa.url, "ws://file:1");
        assert_eq!(config.log_format, LogFormat::Json);
        let config = resolve(&["--config", path, "--sandbox"], &env).unwrap();
        assert!(
            config.sandbox,
            "a bare --sandbox flag is true and beats env"
        );
    }

    #[test]
    fn root_key_is_hex_and_bad_values_are_reported() {
        let hex = "ab".repeat(32);
        let config = resolve(&["--wa-version", "2.3000.1"], &[]).unwrap();
        assert_eq!(config.wa.version.to_string(), "2.3000.1");
        assert!(resolve(&["--wa-version", "2.x"], &[]).is_err());
        let config = resolve(&["--wa-root-key", &hex], &[]).unwrap();
        assert_eq!(config.wa.root_key, PublicKey::from_bytes([0xab; 32]));
        for (flags, env) in [
            (vec!["--wa-root-key", "abc"], vec![]),
            (vec!["--listen", "nowhere"], vec![]),
            (vec!["--response-style", "fancy"], vec![]),
            (vec![], vec![("WUTS_WA_URL", "http://x")]),
            (vec![], vec![("WUTS_SANDBOX", "maybe")]),
        ] {
            assert!(
                matches!(resolve(&flags, &env), Err(ServeError::Config(_))),
                "{flags:?} {env:?}"
            );
        }
    }

    #[test]
    fn unknown_file_settings_are_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "lisen = \"127.0.0.1:1\"").unwrap();
        let path = file.path().to_str().unwrap();
        assert!(matches!(
            resolve(&[], &[("WUTS_CONFIG", path)]),
            Err(ServeError::Config(_))
        ));
    }
}
