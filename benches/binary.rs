//! Codec throughput: ours beside wacore-binary 0.7.0 (whatsapp-rust's codec) on the same
//! stanzas, the 500 realistic stanzas of tests/data/vectors/nodes.jsonl.
//!
//! Run: `cargo bench --bench binary`. Before criterion's own report, a paired run prints the
//! ratio ours / theirs for encode and borrowed decode (median of 7 timed passes each).

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use wacore_binary as wa;
use wuts::binary::{self, AttrValue, Content, Node, Tree, json};

fn corpus() -> Vec<Node> {
    include_str!("../tests/data/vectors/nodes.jsonl")
        .lines()
        .map(|l| json::from_json_str(l).expect("vector node"))
        .collect()
}

/// The same stanza as wacore-binary's node (strings as strings: both codecs classify them).
fn theirs(n: &Node) -> wa::Node {
    let mut attrs = wa::Attrs::with_capacity(n.attrs.len());
    for (k, v) in &n.attrs {
        let v = match v {
            AttrValue::Str(s) => s.clone(),
            AttrValue::Jid(j) => j.to_string(),
        };
        attrs.insert(Cow::Owned(k.clone()), wa::NodeValue::String(v.into()));
    }
    let content = match &n.content {
        Content::None => None,
        Content::Bytes(b) => Some(wa::NodeContent::Bytes(b.clone())),
        Content::Str(s) => Some(wa::NodeContent::String(s.as_str().into())),
        Content::Jid(j) => Some(wa::NodeContent::String(j.to_string().into())),
        Content::Nodes(c) => Some(wa::NodeContent::Nodes(c.iter().map(theirs).collect())),
    };
    wa::Node {
        tag: Cow::Owned(n.tag.clone()),
        attrs,
        content,
    }
}

fn median_pass(mut pass: impl FnMut()) -> Duration {
    pass();
    let mut t: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < Duration::from_millis(150) {
                pass();
                n += 1;
            }
            start.elapsed() / n
        })
        .collect();
    t.sort();
    t[3]
}

fn main() {
    let ours: Vec<Node> = corpus();
    let wa_nodes: Vec<wa::Node> = ours.iter().map(theirs).collect();
    let frames: Vec<Vec<u8>> = ours
        .iter()
        .map(|n| binary::encode_to_vec(n).expect("encodes"))
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let same = wa_nodes
        .iter()
        .zip(&frames)
        .filter(|(w, f)| wa::marshal(w).ok().as_deref() == Some(f.as_slice()))
        .count();
    for f in &frames {
        wa::marshal::unmarshal_ref(&f[1..]).expect("wacore decodes our frames");
    }

    let mut buf = Vec::with_capacity(1 << 20);
    let enc_ours = median_pass(|| {
        for n in &ours {
            buf.clear();
            binary::encode(black_box(n), &mut buf).expect("encode");
        }
    });
    let enc_theirs = median_pass(|| {
        for n in &wa_nodes {
            wa::marshal_to_vec(black_box(n), &mut buf).expect("encode");
        }
    });
    let dec_ours = median_pass(|| {
        for f in &frames {
            black_box(Tree::decode(black_box(&f[1..])).expect("decode"));
        }
    });
    let dec_theirs = median_pass(|| {
        for f in &frames {
            black_box(wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode"));
        }
    });
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    let sps = |d: Duration| ours.len() as f64 / d.as_secs_f64();
    println!(
        "corpus: {} stanzas, {bytes} frame bytes; wacore-binary writes identical bytes for {same}",
        ours.len()
    );
    for (what, o, t) in [
        ("encode (reused buffer)", enc_ours, enc_theirs),
        ("decode (borrowed)", dec_ours, dec_theirs),
    ] {
        println!(
            "{what:<24} wuts {:>8.1} MB/s {:>9.0} st/s | wacore-binary {:>8.1} MB/s | ratio {:.2}x",
            mbps(o),
            sps(o),
            mbps(t),
            t.as_secs_f64() / o.as_secs_f64()
        );
    }

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("wuts", |b| {
        b.iter(|| {
            for n in &ours {
                buf.clear();
                binary::encode(black_box(n), &mut buf).expect("encode");
            }
        })
    });
    g.bench_function("wacore-binary", |b| {
        b.iter(|| {
            for n in &wa_nodes {
                wa::marshal_to_vec(black_box(n), &mut buf).expect("encode");
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("wuts borrowed", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(Tree::decode(black_box(&f[1..])).expect("decode"));
            }
        })
    });
    g.bench_function("wacore-binary borrowed", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(wa::marshal::unmarshal_ref(black_box(&f[1..])).expect("decode"));
            }
        })
    });
    g.bench_function("wuts owned", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(binary::decode_owned(black_box(f)).expect("decode"));
            }
        })
    });
    g.finish();
    c.final_summary();
}
