//! The protocol core is sans-IO: `binary`, `noise`, `engine`, `ops` and `types` never name the
//! runtime, sockets, storage backends, HTTP, clocks or OS randomness. Time, bytes and
//! randomness are their inputs. (clippy's `disallowed_methods`, denied in those modules, checks
//! the calls; this test checks the names, imports included.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

const CORE: [&str; 6] = [
    "src/binary",
    "src/cluster",
    "src/noise",
    "src/engine",
    "src/ops",
    "src/types.rs",
];

const BANNED: [&str; 16] = [
    "tokio",
    "tungstenite",
    "sled",
    "axum",
    "reqwest",
    "std::net",
    "std::fs",
    "TcpStream",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "OsRng",
    "from_entropy",
    "rand::random",
    "getrandom",
    "crate::client",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("readable dir") {
            rust_files(&entry.expect("entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The code of a file without its comments: a doc comment may explain why a name is banned.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_protocol_core_names_no_io_clock_or_os_randomness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in CORE {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = code(&fs::read_to_string(file).expect("source"));
        for banned in BANNED {
            if text.contains(banned) {
                found.push(format!("{} names {banned}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "sans-IO broken:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_violation() {
    let sample = "use tokio::net::TcpStream; // fine in a comment: Instant::now\nlet x = 1;";
    let text = code(sample);
    assert!(text.contains("tokio") && !text.contains("Instant::now"));
}

#[test]
fn ops_build_stanzas_and_the_engine_builds_none_of_its_own_requests() {
    // Every request the engine sends is an `ops` spec: its files never spell an `<iq>` out.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/engine"), &mut files);
    rust_files(&root.join("src/client"), &mut files);
    for file in files {
        if file.ends_with("lifecycle_tests.rs") {
            continue;
        }
        let text = code(&fs::read_to_string(&file).expect("source"));
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        assert!(
            !text.contains("Node::new(\"iq\")"),
            "{} builds an <iq> itself; put it in ops/",
            file.display()
        );
    }
}
