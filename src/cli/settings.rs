//! The settings of `wuts serve`: flags, then `WUTS_*` environment variables, then an optional
//! TOML file (`--config`), then defaults that work; the first that sets a value wins.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use wuts::engine::payload::ClientVersion;
use wuts::http::{ResponseStyle, ServerLimits};
use wuts::noise::{PublicKey, WHATSAPP_ROOT_KEY};

/// WhatsApp Web's websocket endpoint.
const DEFAULT_WA_URL: &str = "wss://web.whatsapp.com/ws/chat";
const DEFAULT_LISTEN: &str = "127.0.0.1:7001";
const DEFAULT_DATA: &str = "./data";
/// Below the 60 s read timeout of nginx and most load balancers, so a slow WhatsApp reply ends
/// as our typed timeout, not as the proxy's 504.
const DEFAULT_WA_REQUEST_TIMEOUT: Duration = Duration::from_secs(55);

/// Flags of `wuts serve`. Every one can also be set as `WUTS_<NAME>` or in the TOML file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below.
    #[arg(long, value_name = "FILE", env = "WUTS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7001].
    #[arg(long, value_name = "ADDR", env = "WUTS_LISTEN")]
    listen: Option<String>,
    /// Data directory (device keys, users, tokens) [default: ./data].
    #[arg(long, value_name = "DIR", env = "WUTS_DATA")]
    data: Option<PathBuf>,
    /// WhatsApp-compatible websocket URL [default: WhatsApp's].
    #[arg(long, value_name = "URL", env = "WUTS_WA_URL")]
    wa_url: Option<String>,
    /// The server's trusted root public key, 64 hex digits [default: WhatsApp's].
    #[arg(long, value_name = "HEX", env = "WUTS_WA_ROOT_KEY")]
    wa_root_key: Option<String>,
    /// Local address the connections to WhatsApp leave from, for a host with several
    /// addresses [default: the system's choice].
    #[arg(long, value_name = "IP", env = "WUTS_WA_SOURCE_ADDRESS")]
    wa_source_address: Option<String>,
    /// WhatsApp Web version presented at login, `2.3000.N` [default: the newest known]; follow
    /// a WhatsApp version bump (failure 405, client outdated) without a new build.
    #[arg(long, value_name = "VERSION", env = "WUTS_WA_VERSION")]
    wa_version: Option<String>,
    /// Run the simulated WhatsApp server in-process and point every device at it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", env = "WUTS_SANDBOX",
        value_parser = clap::builder::BoolishValueParser::new())]
    sandbox: Option<bool>,
    /// Envelope of POST /groups responses: wuts or status [default: wuts].
    #[arg(long, value_name = "STYLE", env = "WUTS_RESPONSE_STYLE")]
    response_style: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT", env = "WUTS_LOG_FORMAT")]
    log_format: Option<String>,
    /// Seconds a shutdown waits for in-flight requests before answering them 503 and exiting
    /// [default: 10].
    #[arg(long, value_name = "SECONDS", env = "WUTS_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Option<String>,
    /// Seconds a client has to send a request's headers; idle connections close after it too
    /// [default: 20].
    #[arg(long, value_name = "SECONDS", env = "WUTS_HEADER_TIMEOUT")]
    header_timeout: Option<String>,
    /// Connections served normally; past this only the admin API and probes are served (64 more
    /// are kept for them) [default: 4096, lowered to fit the file-descriptor limit].
    #[arg(long, value_name = "N", env = "WUTS_MAX_CONNECTIONS")]
    max_connections: Option<String>,
    /// Memory sled may use for its cache, in MiB [default: 64].
    #[arg(long, value_name = "MIB", env = "WUTS_STORE_CACHE_MB")]
    store_cache_mb: Option<String>,
    /// Idempotency records a user may hold at once (within their TTL); beyond it, keyed requests
    /// answer 429 [default: 10000].
    #[arg(long, value_name = "N", env = "WUTS_IDEMPOTENCY_KEYS_PER_USER")]
    idempotency_keys_per_user: Option<String>,
    /// Seconds a request to WhatsApp waits for its reply before the API answers a timeout; keep
    /// it below the read timeout of any reverse proxy in front (nginx: 60 s) [default: 55].
    #[arg(long, value_name = "SECONDS", env = "WUTS_WA_REQUEST_TIMEOUT")]
    wa_request_timeout: Option<String>,
    /// The admin token. Prefer the environment variable: a flag shows in the process list.
    /// Setting it replaces a stored (or lost) admin token [default: the stored one, or a new
    /// one printed once].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WUTS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Allow webhook URLs on private, loopback and link-local addresses (checked again on the
    /// resolved address of every delivery) [default: false].
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        env = "WUTS_WEBHOOK_ALLOW_PRIVATE"
    )]
    webhook_allow_private: Option<bool>,
    /// Delay before a failed webhook delivery's first retry, in milliseconds; each further
    /// retry doubles it, with jitter [default: 5000].
    #[arg(long, value_name = "MS", env = "WUTS_WEBHOOK_RETRY_BASE_MS")]
    webhook_retry_base_ms: Option<String>,
    /// Cluster mode: `postgres://...` of the PostgreSQL all nodes share (devices, users,
    /// tokens, events, ownership); needs --node-id and --rpc-listen [default: none, sled under
    /// --data, one process].
    #[arg(
        long,
        value_name = "URL",
        env = "WUTS_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Cluster mode: this node's name, stable across restarts (1-64 of A-Z a-z 0-9 . _ -).
    #[arg(long, value_name = "NAME", env = "WUTS_NODE_ID")]
    node_id: Option<String>,
    /// Cluster mode: the address other nodes forward device requests to (keep it private).
    #[arg(long, value_name = "ADDR", env = "WUTS_RPC_LISTEN")]
    rpc_listen: Option<String>,
    /// Cluster mode: seconds a node's lease lasts without renewal; renewal and the takeover
    /// grace are a third of it. A dead node's devices move after about lease + grace
    /// [default: 15].
    #[arg(long, value_name = "SECONDS", env = "WUTS_LEASE_TTL")]
    lease_ttl: Option<String>,
    /// Cluster mode: this node's share of devices relative to the others, 0 to 10000; 0 takes
    /// none and hands its devices away (empty a node before maintenance) [default: 100].
    #[arg(long, value_name = "N", env = "WUTS_NODE_WEIGHT")]
    node_weight: Option<String>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    wa_url: Option<String>,
    wa_root_key: Option<String>,
    wa_source_address: Option<String>,
    wa_version: Option<String>,
    sandbox: Option<bool>,
    response_style: Option<String>,
    log_format: Option<String>,
    shutdown_timeout: Option<u64>,
    header_timeout: Option<u64>,
    max_connections: Option<usize>,
    store_cache_mb: Option<u64>,
    idempotency_keys_per_user: Option<usize>,
    wa_request_timeout: Option<u64>,
    webhook_allow_private: Option<bool>,
    webhook_retry_base_ms: Option<u64>,
    database_url: Option<String>,
    node_id: Option<String>,
    rpc_listen: Option<String>,
    lease_ttl: Option<u64>,
    node_weight: Option<u32>,
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
    /// The local address connections leave from.
    pub source: Option<IpAddr>,
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
    /// Connection limits and the shutdown deadline.
    pub limits: ServerLimits,
    /// sled's cache, in bytes.
    pub store_cache_bytes: u64,
    /// Idempotency records a user may hold at once.
    pub idempotency_keys_per_user: usize,
    /// How long a request to WhatsApp waits for its reply.
    pub wa_request_timeout: Duration,
    /// Webhook targets on private addresses are allowed.
    pub webhook_allow_private: bool,
    /// The first webhook retry's delay.
    pub webhook_retry_base: Duration,
    /// Cluster mode, when a database URL is set.
    pub cluster: Option<ClusterConfig>,
}

/// Cluster mode's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The shared PostgreSQL.
    pub database_url: String,
    /// This node's name.
    pub node_id: String,
    /// Where other nodes forward to this one.
    pub rpc_listen: SocketAddr,
    /// How long the node's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Its share of devices relative to the others.
    pub weight: u32,
}

impl std::fmt::Debug for ClusterConfig {
    /// The URL may carry a password: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("node_id", &self.node_id)
            .field("rpc_listen", &self.rpc_listen)
            .field("lease_ttl", &self.lease_ttl)
            .field("weight", &self.weight)
            .finish()
    }
}

/// `postgres://user:secret@host/db` shown as `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
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
    /// Cluster mode could not start (database unreachable, node id held by a live process).
    #[error("{0}")]
    Cluster(#[from] wuts::node::NodeError),
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

/// A number setting: flag or environment text, or the file's number.
fn number<T: std::str::FromStr>(
    name: &str,
    text: Option<String>,
    file: Option<T>,
) -> Result<Option<T>, ServeError> {
    match text {
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            ServeError::Config(format!("{name} must be a whole number, got {text:?}"))
        }),
        None => Ok(file),
    }
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
        let source = pick(
            args.wa_source_address,
            env("WUTS_WA_SOURCE_ADDRESS"),
            file.wa_source_address,
        )
        .map(|ip| {
            ip.trim().parse::<IpAddr>().map_err(|_| {
                ServeError::Config(format!("wa_source_address: not an IP address: {ip:?}"))
            })
        })
        .transpose()?;
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
        let defaults = ServerLimits::default();
        let seconds = |name: &str, flag: Option<String>, var: &str, file: Option<u64>| {
            number(name, flag.or_else(|| env(var)), file).map(|n| n.map(Duration::from_secs))
        };
        let limits = ServerLimits {
            shutdown_deadline: seconds(
                "shutdown_timeout",
                args.shutdown_timeout,
                "WUTS_SHUTDOWN_TIMEOUT",
                file.shutdown_timeout,
            )?
            .unwrap_or(defaults.shutdown_deadline),
            header_read_timeout: seconds(
                "header_timeout",
                args.header_timeout,
                "WUTS_HEADER_TIMEOUT",
                file.header_timeout,
            )?
            .unwrap_or(defaults.header_read_timeout),
            max_connections: number(
                "max_connections",
                args.max_connections.or_else(|| env("WUTS_MAX_CONNECTIONS")),
                file.max_connections,
            )?
            .unwrap_or(defaults.max_connections),
            ..defaults
        };
        let store_cache_mb = number(
            "store_cache_mb",
            args.store_cache_mb.or_else(|| env("WUTS_STORE_CACHE_MB")),
            file.store_cache_mb,
        )?
        .unwrap_or(64);
        let idempotency_keys_per_user = number(
            "idempotency_keys_per_user",
            args.idempotency_keys_per_user
                .or_else(|| env("WUTS_IDEMPOTENCY_KEYS_PER_USER")),
            file.idempotency_keys_per_user,
        )?
        .unwrap_or(10_000);
        let wa_request_timeout = seconds(
            "wa_request_timeout",
            args.wa_request_timeout,
            "WUTS_WA_REQUEST_TIMEOUT",
            file.wa_request_timeout,
        )?
        .unwrap_or(DEFAULT_WA_REQUEST_TIMEOUT);
        if wa_request_timeout.is_zero() {
            return Err(ServeError::Config(
                "wa_request_timeout must be at least 1 second".to_owned(),
            ));
        }
        let private_env = env("WUTS_WEBHOOK_ALLOW_PRIVATE")
            .map(|v| parse_bool("WUTS_WEBHOOK_ALLOW_PRIVATE", &v))
            .transpose()?;
        let webhook_allow_private = pick(
            args.webhook_allow_private,
            private_env,
            file.webhook_allow_private,
        )
        .unwrap_or(false);
        let webhook_retry_base = number(
            "webhook_retry_base_ms",
            args.webhook_retry_base_ms
                .or_else(|| env("WUTS_WEBHOOK_RETRY_BASE_MS")),
            file.webhook_retry_base_ms,
        )?
        .map_or(Duration::from_secs(5), Duration::from_millis);
        let lease_ttl = seconds(
            "lease_ttl",
            args.lease_ttl,
            "WUTS_LEASE_TTL",
            file.lease_ttl,
        )?;
        let weight = number(
            "node_weight",
            args.node_weight.or_else(|| env("WUTS_NODE_WEIGHT")),
            file.node_weight,
        )?;
        let cluster = cluster(
            pick(
                args.database_url,
                env("WUTS_DATABASE_URL"),
                file.database_url,
            ),
            pick(args.node_id, env("WUTS_NODE_ID"), file.node_id),
            pick(args.rpc_listen, env("WUTS_RPC_LISTEN"), file.rpc_listen),
            lease_ttl,
            weight,
        )?;
        Ok(Self {
            cluster,
            wa_request_timeout,
            webhook_allow_private,
            webhook_retry_base,
            limits,
            store_cache_bytes: store_cache_mb.saturating_mul(1024 * 1024),
            idempotency_keys_per_user,
            listen,
            data,
            wa: WaEndpoint {
                url,
                root_key,
                version,
                source,
            },
            sandbox,
            response_style,
            log_format,
        })
    }
}

/// Cluster mode is on when a database URL is set, and then needs a node id and an RPC address.
fn cluster(
    url: Option<String>,
    node: Option<String>,
    rpc: Option<String>,
    lease_ttl: Option<Duration>,
    weight: Option<u32>,
) -> Result<Option<ClusterConfig>, ServeError> {
    let Some(database_url) = url else {
        if node.is_some() || rpc.is_some() || lease_ttl.is_some() || weight.is_some() {
            return Err(ServeError::Config(
                "node_id, rpc_listen, lease_ttl and node_weight only apply with database_url \
                 (cluster mode)"
                    .to_owned(),
            ));
        }
        return Ok(None);
    };
    let weight = weight.unwrap_or(100);
    if weight > 10_000 {
        return Err(ServeError::Config(format!(
            "node_weight must be 0 to 10000, got {weight}"
        )));
    }
    let lease_ttl = lease_ttl.unwrap_or(Duration::from_secs(15));
    if lease_ttl < Duration::from_secs(3) {
        return Err(ServeError::Config(
            "lease_ttl must be at least 3 seconds".to_owned(),
        ));
    }
    if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
        return Err(ServeError::Config(
            "database_url must be a postgres:// URL".to_owned(),
        ));
    }
    let node_id = node.ok_or_else(|| {
        ServeError::Config("cluster mode (database_url) needs node_id".to_owned())
    })?;
    if wuts_store::pg::NodeId::new(node_id.as_str()).is_err() {
        return Err(ServeError::Config(format!(
            "node_id must be 1-64 of A-Z a-z 0-9 . _ -, got {node_id:?}"
        )));
    }
    let rpc = rpc.ok_or_else(|| {
        ServeError::Config("cluster mode (database_url) needs rpc_listen".to_owned())
    })?;
    let rpc_listen = rpc
        .trim()
        .parse()
        .map_err(|_| ServeError::Config(format!("rpc_listen: not an address: {rpc:?}")))?;
    Ok(Some(ClusterConfig {
        database_url,
        node_id,
        rpc_listen,
        lease_ttl,
        weight,
    }))
}

fn read_file(path: &Path) -> Result<FileConfig, ServeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
