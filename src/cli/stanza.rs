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
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use wuts::binary::{self, Tree, json};

#[derive(Subcommand)]
pub enum StanzaCommand {
    /// Node JSON lines in, hex frames (flag byte first) out.
    Encode,
    /// Hex frames in, node JSON lines out (compressed frames are inflated).
    Decode,
    /// Hex frames in, the XML-like text form out.
    Show,
    /// Encode and decode throughput over the node JSON lines of FILE.
    Bench {
        /// Node JSON lines, one stanza a line.
        file: PathBuf,
        /// Timed runs; the median is reported.
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Minimum duration of each run, in milliseconds.
        #[arg(long, default_value_t = 200)]
        min_ms: u64,
        /// Measure only this: encode, decode or owned (for profilers).
        #[arg(long)]
        only: Option<Measure>,
    },
}

/// One of the bench's measurements.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Measure {
    Encode,
    Decode,
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
            only,
        } => bench(&file, runs.max(1), Duration::from_millis(min_ms), only),
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

fn bench(file: &PathBuf, runs: usize, min: Duration, only: Option<Measure>) -> io::Result<usize> {
    let wanted = |m: Measure| only.is_none_or(|o| o == m);
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
    let frames: Vec<Vec<u8>> = nodes
        .iter()
        .filter_map(|n| binary::encode_to_vec(n).ok())
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "{} stanzas, {} frame bytes (mean {} B), median of {runs} runs",
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

/// Median time of one pass over the corpus.
fn measure(runs: usize, min: Duration, mut pass: impl FnMut()) -> Duration {
    pass(); // warm up caches and the allocator
    let mut per_pass: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < min || n == 0 {
                pass();
                n += 1;
            }
            start.elapsed() / n
        })
        .collect();
    per_pass.sort();
    per_pass[per_pass.len() / 2]
}

fn report(what: &str, per_pass: Duration, stanzas: usize, bytes: usize) {
    let secs = per_pass.as_secs_f64().max(1e-12);
    println!(
        "{what:<24} {:>12.0} stanzas/s {:>9.1} MB/s",
        stanzas as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
