//! The stanza inspector through the built `wuts` binary.

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn wuts(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wuts"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wuts runs");
    // Feed stdin from another thread: wuts writes while it reads, and both pipes are finite.
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_owned();
    let feeder = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wuts exits");
    feeder.join().expect("feeder").expect("write stdin");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn encode_then_decode_reproduces_the_vectors() {
    let nodes: Vec<&str> = include_str!("data/vectors/nodes.jsonl")
        .lines()
        .take(50)
        .collect();
    let frames: Vec<&str> = include_str!("data/vectors/frames.hex")
        .lines()
        .take(50)
        .collect();
    let enc = wuts(&["stanza", "encode"], &(nodes.join("\n") + "\n"));
    assert!(enc.status.success(), "{}", text(&enc.stderr));
    assert_eq!(text(&enc.stdout).lines().collect::<Vec<_>>(), frames);

    let dec = wuts(&["stanza", "decode"], &text(&enc.stdout));
    assert!(dec.status.success(), "{}", text(&dec.stderr));
    let again = wuts(&["stanza", "encode"], &text(&dec.stdout));
    assert_eq!(
        text(&again.stdout),
        text(&enc.stdout),
        "decode | encode is the identity"
    );
}

#[test]
fn bad_lines_are_reported_and_the_rest_still_processed() {
    let input = "{\"tag\":\"iq\",\"attrs\":{},\"content\":null}\nnot json\n\
                 {\"tag\":\"\",\"attrs\":{},\"content\":null}\n{\"tag\":\"ack\",\"attrs\":{}}\n";
    let out = wuts(&["stanza", "encode"], input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "00f80119\n00f8011b\n");
    let err = text(&out.stderr);
    assert!(err.contains("line 2: invalid JSON"), "{err}");
    assert!(
        err.contains("line 3: cannot encode a node with an empty tag"),
        "{err}"
    );

    let out = wuts(&["stanza", "decode"], "00f80119\nzz\n00f802\n00f8011b\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 2);
    let err = text(&out.stderr);
    assert!(err.contains("line 2: not a hex string"), "{err}");
    assert!(
        err.contains("line 3: unexpected end of input at byte 2"),
        "{err}"
    );
}

#[test]
fn show_prints_the_text_form() {
    let out = wuts(&["stanza", "show"], "00f8061908550429f801f80156\n");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "<iq id=\"1\" type=\"get\"><ping/></iq>\n"
    );
    // A compressed frame is inflated first.
    let out = wuts(
        &["stanza", "show"],
        "02789cfbc126c911caa2f983f107631800190603ea\n",
    );
    assert_eq!(
        text(&out.stdout),
        "<iq id=\"1\" type=\"get\"><ping/></iq>\n"
    );
}

#[test]
fn bench_reports_throughput() {
    let dir = std::env::temp_dir().join(format!("wuts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("nodes.jsonl");
    let nodes: Vec<&str> = include_str!("data/vectors/nodes.jsonl")
        .lines()
        .take(20)
        .collect();
    std::fs::write(&file, nodes.join("\n")).expect("write corpus");
    let path = file.to_str().expect("utf-8 path");
    let out = wuts(
        &["stanza", "bench", path, "--runs", "3", "--min-ms", "5"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("20 stanzas"), "{s}");
    for what in [
        "encode (reused buffer)",
        "decode (borrowed) ",
        "decode (borrowed) + read strings",
        "decode (owned)",
    ] {
        let line = s.lines().find(|l| l.starts_with(what)).expect(what);
        assert!(
            line.contains("stanzas/s") && line.contains("MB/s"),
            "{line}"
        );
    }

    // A mode flag measures that mode alone; both flags measure both.
    let lines = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["stanza", "bench", path, "--runs", "1", "--min-ms", "1"];
        all.extend_from_slice(args);
        let out = wuts(&all, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split("  ").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(lines(&["--owned"]), ["decode (owned)"]);
    assert_eq!(
        lines(&["--read-strings"]),
        ["decode (borrowed) + read strings"]
    );
    assert_eq!(
        lines(&["--read-strings", "--owned"]),
        ["decode (borrowed) + read strings", "decode (owned)"]
    );
    assert_eq!(lines(&["--only", "encode"]), ["encode (reused buffer)"]);
    let _ = std::fs::remove_dir_all(dir);
}
