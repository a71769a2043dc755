//! `wuts serve`: the gateway process. Settings come from flags, then `WUTS_*` environment
//! variables, then an optional TOML file (`--config`), then defaults that work; the first that
//! sets a value wins.
//!
//! Start-up: open the store, start the sandbox (`--sandbox`), build the device registry
//! ([`build_devices`], which restores paired devices), bind, decide the admin token, serve until
//! Ctrl-C or SIGTERM, then shut down gracefully (`wuts::http::serve`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wuts::client::api::Devices;
use wuts::client::{ClientConfig, Registry};
use wuts::cluster::LeaseTimings;
use wuts::engine::EngineConfig;
use wuts::engine::payload::ClientVersion;
use wuts::http::{self, AppState, GatewayConfig, SandboxInfo};
use wuts::node::{ClusterNode, ClusterStores};
use wuts_store::gateway::GatewayStore;
use wuts_store::pg::NodeId;
use wuts_store::{SledStore, Store};

pub use super::settings::{LogFormat, ServeArgs, ServeConfig, ServeError, WaEndpoint};

/// Builds the device registry over `store`, pointing every device at `wa`. One process on
/// sled restores the paired devices so they reconnect by themselves; in cluster mode the
/// node's follower starts the devices the node owns instead.
async fn build_devices(
    store: Arc<dyn Store>,
    wa: &WaEndpoint,
    request_timeout: Duration,
    cluster: Option<&ClusterStores>,
) -> Result<Registry, ServeError> {
    let config = ClientConfig {
        ws_url: wa.url.clone(),
        engine: Arc::new(EngineConfig {
            trusted_root: wa.root_key,
            version: wa.version,
            iq_timeout: request_timeout,
            ..EngineConfig::default()
        }),
        cluster_fences: cluster.map(ClusterStores::fences),
        source_address: wa.source,
        ..ClientConfig::default()
    };
    let registry = Registry::new(store, config);
    if cluster.is_none() {
        let restored = registry
            .restore()
            .map_err(|e| ServeError::Config(format!("restoring devices: {e}")))?;
        tracing::info!(devices = restored, url = %wa.url, "devices restored");
    }
    Ok(registry)
}

/// The stores of this process: sled under `--data`, or the cluster's PostgreSQL.
async fn open_stores(
    config: &ServeConfig,
    rpc_addr: Option<SocketAddr>,
) -> Result<(Arc<dyn Store>, Arc<dyn GatewayStore>, Option<ClusterStores>), ServeError> {
    let Some(cluster) = &config.cluster else {
        let store = Arc::new(SledStore::open_with_cache(
            &config.data,
            config.store_cache_bytes,
        )?);
        return Ok((store.clone(), store, None));
    };
    let node = NodeId::new(cluster.node_id.as_str())
        .map_err(|e| ServeError::Config(format!("node_id: {e}")))?;
    let rpc_addr = rpc_addr.unwrap_or(cluster.rpc_listen).to_string();
    let stores = wuts::node::open(&cluster.database_url, node, rpc_addr, cluster.weight)
        .await
        .map_err(ServeError::Cluster)?;
    tracing::info!(node = %cluster.node_id, "cluster database ready");
    Ok((stores.devices.clone(), stores.gateway.clone(), Some(stores)))
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
            source: None,
        },
        info,
        handle,
    })
}

/// Runs `wuts serve`.
pub fn run(mut args: ServeArgs) -> ExitCode {
    // Kept out of the resolved settings, which are printed and compared.
    let admin_token = args.admin_token.take();
    let config = match ServeConfig::resolve(args, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("wuts serve: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let config = fit_descriptors(config);
    // One screen an operator can read back when something is off (no secrets in it).
    print!("{}", summary(&config));
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
    match runtime.block_on(serve(config, admin_token)) {
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
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or a log file.
        .with_ansi(std::io::stderr().is_terminal());
    // A second subscriber (tests calling run twice) is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Raises the soft open-files limit to the hard one (each connection and device is a
/// descriptor; distributions default to 1,024) and keeps the connection cap inside it, with room
/// for devices and the store.
fn fit_descriptors(mut config: ServeConfig) -> ServeConfig {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let room = usize::try_from(limit / 2).unwrap_or(usize::MAX);
            let limits = &mut config.limits;
            if limits.max_connections + limits.reserved_connections > room {
                limits.max_connections = room.saturating_sub(limits.reserved_connections).max(1);
            }
            tracing::info!(
                open_files = limit,
                max_connections = limits.max_connections,
                "file descriptor limit"
            );
        }
        Err(error) => tracing::warn!(%error, "cannot read or raise the file descriptor limit"),
    }
    config
}

/// Binds the listen address, naming the address and the setting when it is taken.
async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        let why = if error.kind() == std::io::ErrorKind::AddrInUse {
            "the address is already in use (another wuts, or another program?)".to_owned()
        } else {
            error.to_string()
        };
        ServeError::Io(std::io::Error::new(
            error.kind(),
            format!(
                "cannot listen on {addr}: {why}; choose another with --{flag} or WUTS_{}",
                flag.replace('-', "_").to_uppercase()
            ),
        ))
    })
}

/// The effective settings, one per line: what `wuts serve` prints when it starts.
pub fn summary(config: &ServeConfig) -> String {
    let limits = &config.limits;
    format!(
        "wuts {version}\n\
         \x20 listen              {listen}\n\
         \x20 data                {data}\n\
         \x20 sandbox             {sandbox}\n\
         \x20 wa_url              {wa_url}\n\
         \x20 wa_source_address   {source}\n\
         \x20 wa_version          {wa_version}\n\
         \x20 wa_request_timeout  {timeout}s\n\
         \x20 response_style      {style:?}\n\
         \x20 log_format          {log:?}\n\
         \x20 max_connections     {max_connections}\n\
         \x20 header_timeout      {header}s\n\
         \x20 shutdown_timeout    {shutdown}s\n\
         \x20 store_cache_mb      {cache}\n\
         \x20 idempotency_keys    {keys} per user\n\
         \x20 webhook_private     {private}\n\
         \x20 webhook_retry_base  {retry}ms\n\
         \x20 cluster             {cluster}\n",
        version = env!("CARGO_PKG_VERSION"),
        source = config
            .wa
            .source
            .map_or_else(|| "(the system's choice)".to_owned(), |ip| ip.to_string()),
        listen = config.listen,
        data = config.data.display(),
        sandbox = config.sandbox,
        wa_url = if config.sandbox {
            "(the in-process sandbox)"
        } else {
            config.wa.url.as_str()
        },
        wa_version = config.wa.version,
        timeout = config.wa_request_timeout.as_secs(),
        style = config.response_style,
        log = config.log_format,
        max_connections = limits.max_connections,
        header = limits.header_read_timeout.as_secs(),
        shutdown = limits.shutdown_deadline.as_secs(),
        cache = config.store_cache_bytes / (1024 * 1024),
        keys = config.idempotency_keys_per_user,
        private = if config.webhook_allow_private {
            "allowed"
        } else {
            "refused"
        },
        retry = config.webhook_retry_base.as_millis(),
        cluster = match &config.cluster {
            None => "off (sled under data)".to_owned(),
            Some(c) => format!(
                "node {} on {}, rpc {}, lease {}s",
                c.node_id,
                super::settings::redact_url(&c.database_url),
                c.rpc_listen,
                c.lease_ttl.as_secs()
            ),
        },
    )
}

async fn serve(mut config: ServeConfig, admin_token: Option<String>) -> Result<(), ServeError> {
    // First, before the store or any device: a taken port is the commonest start-up failure,
    // and it must not restore (and connect) devices only to exit.
    let listener = bind(config.listen, "listen").await?;
    let rpc_listener = match &config.cluster {
        Some(cluster) => Some(bind(cluster.rpc_listen, "rpc-listen").await?),
        None => None,
    };
    let rpc_addr = rpc_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let (store, gateway_store, cluster) = open_stores(&config, rpc_addr).await?;
    let sandbox = if config.sandbox {
        let sandbox = start_sandbox(&config.data).await?;
        // The sandbox replaces the endpoint and its root; the presented version stays.
        config.wa = WaEndpoint {
            version: config.wa.version,
            source: config.wa.source,
            ..sandbox.wa.clone()
        };
        Some(sandbox)
    } else {
        None
    };
    let registry = build_devices(
        store,
        &config.wa,
        config.wa_request_timeout,
        cluster.as_ref(),
    )
    .await?;
    let node = match cluster {
        Some(stores) => Some(
            stores
                .start(
                    registry.clone(),
                    LeaseTimings::from_ttl(
                        config
                            .cluster
                            .as_ref()
                            .map_or(Duration::from_secs(15), |c| c.lease_ttl),
                    ),
                )
                .await
                .map_err(ServeError::Cluster)?,
        ),
        None => None,
    };
    let devices: Arc<dyn Devices> = Arc::new(registry);
    let (admin_hash, generated) =
        http::resolve_admin_token(gateway_store.as_ref(), admin_token.as_deref())?;
    if let Some(token) = generated {
        // Printed once, on stdout (logs go to stderr); only its hash is kept.
        println!("admin token (shown once, keep it): {token}");
    }
    let gateway = GatewayConfig {
        response_style: config.response_style,
        sandbox: sandbox.as_ref().map(|s| s.info.clone()),
        limits: config.limits.clone(),
        idempotency_keys_per_user: config.idempotency_keys_per_user,
        // A retry waits a little longer than the first attempt can take.
        idempotency_wait: config.wa_request_timeout + Duration::from_secs(5),
        webhooks: http::WebhookSettings {
            allow_private: config.webhook_allow_private,
            retry_base: config.webhook_retry_base,
            rescan: config.cluster.as_ref().map(|_| Duration::from_secs(5)),
            ..http::WebhookSettings::default()
        },
        cluster_lease: node.as_ref().map(ClusterNode::status),
        cluster_moves: node.as_ref().map(ClusterNode::moves),
        forward: node.as_ref().map(|node| http::ForwardSettings {
            secret: node.secret(),
            deadline: config.wa_request_timeout + Duration::from_secs(5),
        }),
        ..GatewayConfig::default()
    };
    let state = AppState::new(devices, gateway_store, gateway, admin_hash);
    let shutdown = shutdown_signal();
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "gateway listening");
    // On stdout too, so scripts (and `--listen 127.0.0.1:0`) learn where it is.
    println!("listening on http://{addr}");
    http::serve_with_rpc(listener, rpc_listener, state, shutdown).await?;
    if let Some(node) = node {
        // The devices are shut down by now: hand them over (or keep them for a restart in
        // place) rather than let them wait for the lease to run out.
        node.stop().await;
    }
    if let Some(sandbox) = sandbox {
        // A failed flush loses at most the sandbox's last half second; say so and exit.
        if let Err(error) = sandbox.handle.shutdown().await {
            tracing::warn!(%error, "sandbox shutdown");
        }
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what container runtimes send). The handlers are installed
/// when this is called, not when the future is first polled: a signal that arrives right
/// after "listening on" is printed must stop the gateway cleanly, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match handlers.0.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match handlers.1.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
