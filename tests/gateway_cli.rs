//! `wuts serve` through the built binary: configuration errors, and (until the engine lands)
//! a clear refusal to start without printing an admin token it would then never show again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn serve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wuts"));
    command.arg("serve").args(args);
    for var in [
        "WUTS_CONFIG",
        "WUTS_LISTEN",
        "WUTS_DATA",
        "WUTS_WA_URL",
        "WUTS_WA_ROOT_KEY",
        "WUTS_SANDBOX",
        "WUTS_RESPONSE_STYLE",
        "WUTS_LOG_FORMAT",
        "WUTS_ADMIN_TOKEN",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("wuts runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_setting() {
    let out = serve(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--data",
        "--wa-url",
        "--wa-root-key",
        "--sandbox",
        "--response-style",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
}

#[test]
fn bad_settings_exit_with_status_2() {
    let out = serve(&["--response-style", "fancy"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown response style"));
    let out = serve(&[], &[("WUTS_WA_ROOT_KEY", "xyz")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("wa_root_key"));
}

#[test]
fn without_the_engine_it_refuses_to_start_and_prints_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = serve(
        &["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("device engine is not available"));
    assert!(!text(&out.stdout).contains("admin token"));
}
