//! Codec speed: ours beside wacore-binary 0.7.0 (whatsapp-rust's codec) on the same prepared
//! stanzas, on three corpora of tests/data/vectors/: traffic-mixed (traffic-shaped, per-node
//! work dominates), group-create (JID-heavy IQs) and nodes (the 500 vectors, mostly payload).
//!
//! Run: `cargo bench --bench binary`. First a paired table: for each corpus and measurement the
//! two codecs run alternately, run by run, each run timed in thread CPU time (the machine is
//! shared, and wall time would count other processes' work); the figure is the median of the
//! per-run ratios theirs / ours (above 1: we are faster). Criterion's own report follows on the
//! mixed corpus; `WUTS_BENCH_PAIRED_ONLY=1` skips it, `WUTS_BENCH_RUNS` sets the paired runs.

// A panic in a bench is a failed bench: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use wacore_binary as wa;
use wuts::binary::{self, AttrValue, Content, Node, NodeRef, Str, Tree, json, sum_strings};

/// One corpus, prepared for both codecs.
struct Corpus {
    name: &'static str,
    ours: Vec<Node>,
    theirs: Vec<wa::Node>,
    frames: Vec<Vec<u8>>,
}

impl Corpus {
    fn load(name: &'static str, file: &str) -> Corpus {
        let path = format!("{}/tests/data/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("corpus file");
        let parsed: Vec<Node> = text
            .lines()
            .map(|l| json::from_json_str(l).expect("vector node"))
            .collect();
        // Both sets are built the same way, by a walk over the prepared nodes that allocates as
        // it goes, so the allocator lays both out alike. (Nodes parsed from JSON sit between
        // the freed JSON values, which made every first touch of ours a cache miss.)
        // JID-looking attribute values are typed for both codecs, as the engine's builders
        // (and whatsapp-rust's) make them: neither encoder parses them again.
        let ours: Vec<Node> = parsed.into_iter().map(Node::with_typed_jids).collect();
        let theirs = ours.iter().map(theirs).collect();
        // `deep_copy`, not `clone`: a clone would share the payloads where they were parsed.
        let ours: Vec<Node> = ours.iter().map(Node::deep_copy).collect();
        let frames = ours
            .iter()
            .map(|n| binary::encode_to_vec(n).expect("encodes"))
            .collect();
        Corpus {
            name,
            ours,
            theirs,
            frames,
        }
    }

    fn bytes(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }
}

/// The same stanza as wacore-binary's node: text as text (both encoders classify it), typed
/// JIDs as its typed JIDs.
fn theirs(n: &Node) -> wa::Node {
    let mut attrs = wa::Attrs::with_capacity(n.attrs.len());
    for (k, v) in &n.attrs {
        let v = match v {
            AttrValue::Str(s) => wa::NodeValue::String(s.to_string().into()),
            AttrValue::Jid(j) => wa::NodeValue::Jid(j.to_string().parse().expect("their JID")),
        };
        attrs.insert(Cow::Owned(k.to_string()), v);
    }
    let content = match &n.content {
        Content::None => None,
        Content::Bytes(b) => Some(wa::NodeContent::Bytes(b.to_vec())),
        Content::Str(s) => Some(wa::NodeContent::String(s.to_string().into())),
        Content::Jid(j) => Some(wa::NodeContent::String(j.to_string().into())),
        Content::Nodes(c) => Some(wa::NodeContent::Nodes(c.iter().map(theirs).collect())),
    };
    wa::Node {
        tag: Cow::Owned(n.tag.to_string()),
        attrs,
        content,
    }
}

/// Reads every string of a borrowed node as text (`Str::with_text`: a packed string is
/// unpacked on the stack, nothing allocates), and sums lengths and first bytes so nothing is
/// optimised away. Payload bytes count by length only.
fn read_ours(n: NodeRef<'_, '_>) -> usize {
    sum_strings(n, &|x: Str<'_>| x.with_text(checksum))
}

/// The same through `Str::as_str`, which allocates for every packed string.
fn read_ours_as_str(n: NodeRef<'_, '_>) -> usize {
    sum_strings(n, &|x: Str<'_>| checksum(&x.as_str()))
}

fn checksum(t: &str) -> usize {
    t.len() + usize::from(t.as_bytes().first().copied().unwrap_or(0))
}

/// The same walk over wacore-binary's borrowed node.
fn read_theirs(n: &wa::NodeRef<'_>) -> usize {
    let s = checksum;
    fn v(x: &wa::node::ValueRef<'_>) -> usize {
        let s = checksum;
        match x {
            wa::node::ValueRef::String(x) => s(x),
            wa::node::ValueRef::Jid(j) => s(&j.user) + s(j.server.as_str()) + usize::from(j.device),
        }
    }
    let mut acc = s(&n.tag);
    for (k, x) in n.attrs.iter() {
        acc += s(k) + v(x);
    }
    acc + match &n.content {
        None => 0,
        Some(wa::NodeContentRef::Bytes(b)) => b.len(),
        Some(wa::NodeContentRef::String(x)) => s(x),
        Some(wa::NodeContentRef::Nodes(c)) => c.iter().map(read_theirs).sum(),
    }
}

/// This thread's CPU time.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn timed(reps: u32, pass: &mut impl FnMut()) -> Duration {
    let start = cpu_now();
    for _ in 0..reps {
        pass();
    }
    (cpu_now() - start) / reps
}

/// One cell of the table: per-pass CPU times (medians) and the median of per-run ratios.
struct Paired {
    ours: Duration,
    theirs: Duration,
    ratio: f64,
}

/// Runs the two passes alternately (which one goes first alternates too), `runs` times, each
/// run repeating its pass for about `run_ms` of CPU time.
fn paired(runs: usize, run_ms: u64, mut ours: impl FnMut(), mut theirs: impl FnMut()) -> Paired {
    ours();
    theirs();
    let once = timed(1, &mut ours).max(Duration::from_micros(1));
    let reps = (Duration::from_millis(run_ms).as_nanos() / once.as_nanos()).clamp(1, 10_000) as u32;
    let (mut o, mut t, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (a, b) = if run % 2 == 0 {
            let a = timed(reps, &mut ours);
            (a, timed(reps, &mut theirs))
        } else {
            let b = timed(reps, &mut theirs);
            (timed(reps, &mut ours), b)
        };
        r.push(b.as_secs_f64() / a.as_secs_f64().max(1e-12));
        o.push(a);
        t.push(b);
    }
    o.sort();
    t.sort();
    r.sort_by(f64::total_cmp);
    Paired {
        ours: o[runs / 2],
        theirs: t[runs / 2],
        ratio: r[runs / 2],
    }
}

fn table(corpora: &[Corpus], runs: usize) {
    println!(
        "paired runs: {runs} per cell, thread CPU time, ratio = median of per-run (wacore / wuts)"
    );
    println!(
        "{:<14} {:<34} {:>11} {:>11} {:>7}",
        "corpus", "measurement", "wuts/pass", "wacore/pass", "ratio"
    );
    let mut buf = Vec::with_capacity(1 << 20);
    for c in corpora {
        let mut rows: Vec<(&str, Paired)> = Vec::new();
        let mut buf2 = Vec::with_capacity(1 << 20);
        rows.push((
            "encode into reused buffer",
            paired(
                runs,
                40,
                || {
                    for n in &c.ours {
                        buf.clear();
                        binary::encode(black_box(n), &mut buf).expect("encode");
                    }
                },
                || {
                    for n in &c.theirs {
                        wa::marshal_to_vec(black_box(n), &mut buf2).expect("encode");
                    }
                },
            ),
        ));
        rows.push((
            "borrowed decode, read every string",
            paired(
                runs,
                40,
                || {
                    for f in &c.frames {
                        let t = Tree::decode(black_box(&f[1..])).expect("decode");
                        black_box(read_ours(t.root()));
                    }
                },
                || {
                    for f in &c.frames {
                        let n = wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode");
                        black_box(read_theirs(&n));
                    }
                },
            ),
        ));
        rows.push((
            "borrowed decode, read via as_str",
            paired(
                runs,
                40,
                || {
                    for f in &c.frames {
                        let t = Tree::decode(black_box(&f[1..])).expect("decode");
                        black_box(read_ours_as_str(t.root()));
                    }
                },
                || {
                    for f in &c.frames {
                        let n = wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode");
                        black_box(read_theirs(&n));
                    }
                },
            ),
        ));
        rows.push((
            "owned decode",
            paired(
                runs,
                40,
                || {
                    for f in &c.frames {
                        black_box(binary::decode_owned(black_box(f)).expect("decode"));
                    }
                },
                || {
                    for f in &c.frames {
                        let n = wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode");
                        black_box(n.to_owned());
                    }
                },
            ),
        ));
        rows.push((
            "borrowed decode only (no reads)",
            paired(
                runs,
                40,
                || {
                    for f in &c.frames {
                        black_box(Tree::decode(black_box(&f[1..])).expect("decode"));
                    }
                },
                || {
                    for f in &c.frames {
                        black_box(wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode"));
                    }
                },
            ),
        ));
        for (what, p) in rows {
            println!(
                "{:<14} {what:<34} {:>9.1}µs {:>9.1}µs {:>6.2}x",
                c.name,
                p.ours.as_secs_f64() * 1e6,
                p.theirs.as_secs_f64() * 1e6,
                p.ratio
            );
        }
    }
}

fn main() {
    let smoke = mode::smoke("binary");
    let mut corpora = [
        Corpus::load("mixed", "traffic-mixed.jsonl"),
        Corpus::load("group-create", "group-create.jsonl"),
        Corpus::load("vectors", "nodes.jsonl"),
    ];
    if smoke {
        // A few stanzas of each corpus take every path once.
        for c in &mut corpora {
            c.ours.truncate(8);
            c.theirs.truncate(8);
            c.frames.truncate(8);
        }
    }
    for c in &corpora {
        let same = c
            .theirs
            .iter()
            .zip(&c.frames)
            .filter(|(w, f)| wa::marshal(w).ok().as_deref() == Some(f.as_slice()))
            .count();
        println!(
            "{}: {} stanzas, {} frame bytes; wacore-binary writes identical bytes for {same}",
            c.name,
            c.ours.len(),
            c.bytes()
        );
    }
    let runs = if smoke {
        1
    } else {
        std::env::var("WUTS_BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(15usize)
            .max(1)
    };
    table(&corpora, runs);
    if std::env::var_os("WUTS_BENCH_PAIRED_ONLY").is_some() {
        return;
    }

    let mixed = &corpora[0];
    let mut buf = Vec::with_capacity(1 << 20);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("mixed");
    g.throughput(Throughput::Bytes(mixed.bytes() as u64));
    g.bench_function("encode wuts", |b| {
        b.iter(|| {
            for n in &mixed.ours {
                buf.clear();
                binary::encode(black_box(n), &mut buf).expect("encode");
            }
        })
    });
    g.bench_function("encode wacore-binary", |b| {
        b.iter(|| {
            for n in &mixed.theirs {
                wa::marshal_to_vec(black_box(n), &mut buf).expect("encode");
            }
        })
    });
    g.bench_function("decode wuts borrowed", |b| {
        b.iter(|| {
            for f in &mixed.frames {
                black_box(Tree::decode(black_box(&f[1..])).expect("decode"));
            }
        })
    });
    g.bench_function("decode wacore-binary borrowed", |b| {
        b.iter(|| {
            for f in &mixed.frames {
                black_box(wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode"));
            }
        })
    });
    g.bench_function("decode wuts owned", |b| {
        b.iter(|| {
            for f in &mixed.frames {
                black_box(binary::decode_owned(black_box(f)).expect("decode"));
            }
        })
    });
    g.finish();
    c.final_summary();
}
