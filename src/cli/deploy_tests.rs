//! The files under `src/cli/deploy/` stay true to the CLI: the example configuration names every
//! setting and parses; the systemd unit's `ExecStart` is a valid `wuts serve` command line that
//! reads that file from where the unit's comments install it.

use clap::{CommandFactory, Parser};

use super::settings::{ServeArgs, ServeConfig};

const EXAMPLE: &str = include_str!("deploy/wuts.toml");
const UNIT: &str = include_str!("deploy/wuts.service");

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

/// Settings that are not in the file: where the file is, and the secret.
const NOT_IN_FILE: &[&str] = &["config", "admin_token"];

#[test]
fn the_example_config_lists_every_setting_and_parses() {
    let command = Serve::command();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let key = long.replace('-', "_");
        if NOT_IN_FILE.contains(&key.as_str()) || key == "help" {
            continue;
        }
        let listed = EXAMPLE.lines().any(|line| {
            let line = line.trim_start_matches('#').trim_start();
            line.starts_with(&format!("{key} ="))
        });
        assert!(listed, "src/cli/deploy/wuts.toml does not mention {key}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wuts.toml");
    std::fs::write(&path, EXAMPLE).expect("written");
    let cli = Serve::try_parse_from(["serve", "--config", path.to_str().expect("utf-8")])
        .expect("flags parse");
    let config = ServeConfig::resolve(cli.args, &|_| None).expect("the example parses");
    assert_eq!(config.data, std::path::PathBuf::from("/var/lib/wuts"));
    assert_eq!(config.wa_request_timeout.as_secs(), 55);
}

#[test]
fn the_unit_runs_wuts_serve_with_the_example_config() {
    let exec = UNIT
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert!(words[0].ends_with("/wuts"), "{exec}");
    assert_eq!(words[1], "serve", "{exec}");
    let cli = Serve::try_parse_from(std::iter::once("serve").chain(words[2..].iter().copied()))
        .unwrap_or_else(|e| panic!("ExecStart does not parse: {e}"));
    let _ = cli;
    assert!(exec.contains("--config /etc/wuts/wuts.toml"), "{exec}");
    assert!(
        UNIT.contains("install -D -m 0644 src/cli/deploy/wuts.toml /etc/wuts/wuts.toml"),
        "the unit's comments install the example where ExecStart reads it"
    );
    assert!(UNIT.contains("StateDirectory=wuts") && EXAMPLE.contains("data = \"/var/lib/wuts\""));
    assert!(
        !UNIT.contains("WUTS_ADMIN_TOKEN=") || UNIT.contains("EnvironmentFile="),
        "no token in the unit"
    );
}
