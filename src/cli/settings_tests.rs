//! The settings' resolution: flags, environment, file, defaults.

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
    assert_eq!(config.limits, ServerLimits::default());
    assert_eq!(config.store_cache_bytes, 64 * 1024 * 1024);
    assert_eq!(config.idempotency_keys_per_user, 10_000);
    assert_eq!(config.wa_request_timeout, Duration::from_secs(55));
}

#[test]
fn limits_come_from_flags_env_and_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "shutdown_timeout = 4\nstore_cache_mb = 8").unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let config = resolve(
        &["--config", &path, "--max-connections", "100"],
        &[
            ("WUTS_HEADER_TIMEOUT", "7"),
            ("WUTS_IDEMPOTENCY_KEYS_PER_USER", "5"),
        ],
    )
    .unwrap();
    assert_eq!(config.limits.shutdown_deadline, Duration::from_secs(4));
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(7));
    assert_eq!(config.limits.max_connections, 100);
    assert_eq!(config.store_cache_bytes, 8 * 1024 * 1024);
    assert_eq!(config.idempotency_keys_per_user, 5);
    let bad = resolve(&["--shutdown-timeout", "soon"], &[]);
    assert!(matches!(bad, Err(ServeError::Config(m)) if m.contains("shutdown_timeout")));
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

#[test]
fn source_address_is_an_ip() {
    let config = resolve(&["--wa-source-address", "127.0.0.3"], &[]).unwrap();
    assert_eq!(config.wa.source, Some("127.0.0.3".parse().unwrap()));
    let config = resolve(&[], &[("WUTS_WA_SOURCE_ADDRESS", "::1")]).unwrap();
    assert_eq!(config.wa.source, Some("::1".parse().unwrap()));
    assert!(matches!(
        resolve(&["--wa-source-address", "127.0.0.3:80"], &[]),
        Err(ServeError::Config(m)) if m.contains("wa_source_address")
    ));
}

#[test]
fn node_weight_is_for_cluster_mode_and_bounded() {
    let db = [
        "--database-url",
        "postgres:///w",
        "--node-id",
        "n1",
        "--rpc-listen",
        "127.0.0.1:7101",
    ];
    let cluster = |extra: &[&str]| {
        let flags: Vec<&str> = db.iter().chain(extra).copied().collect();
        resolve(&flags, &[])
    };
    assert_eq!(cluster(&[]).unwrap().cluster.unwrap().weight, 100);
    assert_eq!(
        cluster(&["--node-weight", "0"])
            .unwrap()
            .cluster
            .unwrap()
            .weight,
        0
    );
    assert!(matches!(
        cluster(&["--node-weight", "10001"]),
        Err(ServeError::Config(m)) if m.contains("node_weight")
    ));
    assert!(matches!(
        resolve(&["--node-weight", "5"], &[]),
        Err(ServeError::Config(m)) if m.contains("database_url")
    ));
}
