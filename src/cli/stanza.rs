//! `wuts stanza`: the stanza inspector. Line formats are those of tests/data/vectors/README.md:
//! node JSON lines, and lower-case hex frames that include the flag byte.
//!
//! A bad line is reported on stderr with its number and the reason; the other lines are still
//! processed, and the exit status is 1 if any line failed.

use std::fs;
use std::hint::black_box;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
#[cfg(not(unix))]
use std::time::Instant;

use clap::{Subcommand, ValueEnum};
use wuts::binary::{self, Node, NodeRef, Str, Tree, json, sum_strings};

#[derive(Subcommand)]
pub enum StanzaCommand {
    /// Node JSON lines in, hex frames (flag byte first) out.
    Encode,
    /// Hex frames in, node JSON lines out (compressed frames are inflated).
    Decode,
    /// Hex frames in, the XML-like text form out.
    Show,
    /// Encode and decode speed over the node JSON lines of FILE, in thread CPU time. Without a
    /// mode flag every measurement is made.
    Bench {
        /// Node JSON lines, one stanza a line.
        file: PathBuf,
        /// Timed runs; the median is reported.
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Minimum CPU time of each run, in milliseconds.
        #[arg(long, default_value_t = 200)]
        min_ms: u64,
        /// Measure decoding into owned nodes.
        #[arg(long)]
        owned: bool,
        /// Measure borrowed decoding followed by reading every string (tags, keys, values, JID
        /// parts), as a caller that looks at the whole stanza does.
        #[arg(long)]
        read_strings: bool,
        /// Measure only this one (for profilers).
        #[arg(long)]
        only: Option<Measure>,
    },
}

/// One of the bench's measurements.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Measure {
    /// Encode into a reused buffer.
    Encode,
    /// Borrowed decode (strings left in the frame).
    Decode,
    /// Borrowed decode, then read every string.
    Read,
    /// Decode into owned nodes.
    Owned,
}

pub fn run(cmd: StanzaCommand) -> ExitCode {
    let r = match cmd {
        StanzaCommand::Encode => each_line(|l| {
            let node = json::from_json_str(l).map_err(|e| e.to_string())?;
            let frame = binary::encode_to_vec(&node).map_err(|e| e.to_string())?;
            Ok(json::encode_hex(&frame))
        }),
        StanzaCommand::Decode => each_line(|l| {
            with_frame(l, |tree| {
                serde_json::to_string(&json::to_json(tree.root())).map_err(|e| e.to_string())
            })
        }),
        StanzaCommand::Show => each_line(|l| with_frame(l, |tree| Ok(tree.root().to_string()))),
        StanzaCommand::Bench {
            file,
            runs,
            min_ms,
            owned,
            read_strings,
            only,
        } => {
            let modes: Vec<Measure> = match only {
                Some(m) => vec![m],
                None if owned || read_strings => {
                    [(read_strings, Measure::Read), (owned, Measure::Owned)]
                        .into_iter()
                        .filter_map(|(on, m)| on.then_some(m))
                        .collect()
                }
                None => vec![
                    Measure::Encode,
                    Measure::Decode,
                    Measure::Read,
                    Measure::Owned,
                ],
            };
            bench(&file, runs.max(1), Duration::from_millis(min_ms), &modes)
        }
    };
    match r {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wuts stanza: {e}");
            ExitCode::from(2)
        }
    }
}

fn with_frame(
    line: &str,
    f: impl FnOnce(&Tree<'_>) -> Result<String, String>,
) -> Result<String, String> {
    let bytes = json::decode_hex(line).ok_or("not a hex string")?;
    let body = binary::unpack(&bytes, binary::DEFAULT_MAX_INFLATED).map_err(|e| e.to_string())?;
    let tree = Tree::decode(&body).map_err(|e| e.to_string())?;
    f(&tree)
}

/// Applies `f` to every non-empty stdin line; returns how many lines failed.
fn each_line(mut f: impl FnMut(&str) -> Result<String, String>) -> io::Result<usize> {
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failed = 0;
    for (i, line) in stdin.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match f(line) {
            Ok(s) => writeln!(out, "{s}")?,
            Err(e) => {
                failed += 1;
                out.flush()?;
                eprintln!("line {}: {e}", i + 1);
            }
        }
    }
    out.flush()?;
    Ok(failed)
}

fn bench(file: &PathBuf, runs: usize, min: Duration, modes: &[Measure]) -> io::Result<usize> {
    let wanted = |m: Measure| modes.contains(&m);
    let text = fs::read_to_string(file)?;
    let mut failed = 0;
    let mut nodes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match json::from_json_str(line)
            .map_err(|e| e.to_string())
            .and_then(|n| {
                binary::encode_to_vec(&n)
                    .map(|_| n)
                    .map_err(|e| e.to_string())
            }) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                failed += 1;
                eprintln!("line {}: {e}", i + 1);
            }
        }
    }
    if nodes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no stanza to measure",
        ));
    }
    // JID-looking values typed, as the engine's builders make them, and the nodes copied once
    // more, so that they lie in memory as a builder's do rather than between the freed JSON
    // values they were parsed from (whose gaps made every first touch a cache miss).
    let nodes: Vec<Node> = nodes.into_iter().map(Node::with_typed_jids).collect();
    let nodes = {
        // `deep_copy`, not `clone`: a clone would share the payloads where they were parsed.
        let copy: Vec<Node> = nodes.iter().map(Node::deep_copy).collect();
        drop(nodes);
        copy
    };
    let frames: Vec<Vec<u8>> = nodes
        .iter()
        .filter_map(|n| binary::encode_to_vec(n).ok())
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "{} stanzas, {} frame bytes (mean {} B), median of {runs} runs, thread CPU time",
        nodes.len(),
        bytes,
        bytes / nodes.len()
    );

    let mut buf = Vec::with_capacity(frames.iter().map(Vec::len).max().unwrap_or(0));
    if wanted(Measure::Encode) {
        let encode = measure(runs, min, || {
            for n in &nodes {
                buf.clear();
                let _ = black_box(binary::encode(black_box(n), &mut buf));
            }
        });
        report("encode (reused buffer)", encode, nodes.len(), bytes);
    }
    if wanted(Measure::Decode) {
        let decode = measure(runs, min, || {
            for f in &frames {
                let _ = black_box(Tree::decode(black_box(&f[1..])));
            }
        });
        report("decode (borrowed)", decode, nodes.len(), bytes);
    }
    if wanted(Measure::Read) {
        let read = measure(runs, min, || {
            for f in &frames {
                if let Ok(t) = Tree::decode(black_box(&f[1..])) {
                    black_box(read_strings(t.root()));
                }
            }
        });
        report("decode (borrowed) + read strings", read, nodes.len(), bytes);
    }
    if wanted(Measure::Owned) {
        let owned = measure(runs, min, || {
            for f in &frames {
                let _ = black_box(binary::decode_owned(black_box(f)));
            }
        });
        report("decode (owned)", owned, nodes.len(), bytes);
    }
    Ok(failed)
}

/// Reads every string of a node as text (`Str::with_text`, which unpacks packed digits on the
/// stack); returns a checksum (lengths and first bytes) so that nothing is optimised away.
/// Payloads count by length only.
fn read_strings(n: NodeRef<'_, '_>) -> usize {
    sum_strings(n, &|x: Str<'_>| {
        x.with_text(|t| t.len() + usize::from(t.as_bytes().first().copied().unwrap_or(0)))
    })
}

/// This thread's CPU time: other processes on a shared machine do not count in it. Where the
/// platform has no such clock, wall time since the first call.
fn cpu_now() -> Duration {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// Median CPU time of one pass over the corpus. Never inlined, so that a profiler can count
/// what happens inside it alone (`valgrind --tool=callgrind --toggle-collect='*stanza::measure*'`).
#[inline(never)]
fn measure(runs: usize, min: Duration, mut pass: impl FnMut()) -> Duration {
    pass(); // warm up caches and the allocator
    let mut per_pass: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = cpu_now();
            let mut n = 0u32;
            while cpu_now() - start < min || n == 0 {
                pass();
                n += 1;
            }
            (cpu_now() - start) / n
        })
        .collect();
    per_pass.sort();
    per_pass[per_pass.len() / 2]
}

fn report(what: &str, per_pass: Duration, stanzas: usize, bytes: usize) {
    let secs = per_pass.as_secs_f64().max(1e-12);
    println!(
        "{what:<32} {:>12.0} stanzas/s {:>9.1} MB/s",
        stanzas as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
