//! The codec against stanza encodings made by an independent implementation (Baileys), in
//! `tests/data/vectors/` (see its README): every line, both directions, for the 500 vectors
//! and the two speed corpora (traffic-mixed, group-create).

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value as Json;
use wuts::binary::{self, json};

/// The vector files: node JSON lines, hex frames, and how many lines each has.
const FILES: [(&str, &str, usize); 3] = [
    ("nodes.jsonl", "frames.hex", 500),
    ("traffic-mixed.jsonl", "traffic-mixed.hex", 2000),
    ("group-create.jsonl", "group-create.hex", 300),
];

/// `(file:line, node JSON, hex frame)` for every line of every vector file. Read at run time:
/// the speed corpora are megabytes, too much to compile into the test binary.
fn vectors() -> Vec<(String, String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vectors");
    let mut all = Vec::new();
    for (nodes, frames, count) in FILES {
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).expect(f);
        let (n, f) = (read(nodes), read(frames));
        let before = all.len();
        all.extend(
            n.lines()
                .zip(f.lines())
                .enumerate()
                .map(|(i, (n, f))| (format!("{nodes}:{}", i + 1), n.to_owned(), f.to_owned())),
        );
        assert_eq!(all.len() - before, count, "{nodes}");
        assert_eq!(f.lines().count(), count, "{frames}");
    }
    all
}

/// Node equality as the vectors README defines it: string content compares by its UTF-8
/// bytes, whether it came back as text or as `{"hex"}`.
fn same(a: &Json, b: &Json) -> bool {
    fn bytes(v: &Json) -> Option<Vec<u8>> {
        match v {
            Json::String(s) => Some(s.as_bytes().to_vec()),
            Json::Object(m) => json::decode_hex(m.get("hex")?.as_str()?),
            _ => None,
        }
    }
    match (a, b) {
        (Json::Object(x), Json::Object(y)) if x.contains_key("tag") => {
            x.get("tag") == y.get("tag")
                && x.get("attrs") == y.get("attrs")
                && match (x.get("content"), y.get("content")) {
                    (Some(Json::Array(p)), Some(Json::Array(q))) => {
                        p.len() == q.len() && p.iter().zip(q).all(|(p, q)| same(p, q))
                    }
                    (Some(p), Some(q)) if p == q => true,
                    (Some(p), Some(q)) => bytes(p).is_some() && bytes(p) == bytes(q),
                    _ => false,
                }
        }
        _ => a == b,
    }
}

#[test]
fn encoder_matches_every_vector_byte_for_byte() {
    let mut failures = Vec::new();
    for (line, node, frame) in vectors() {
        let n = json::from_json_str(&node).expect("vector node parses");
        let got = json::encode_hex(&binary::encode_to_vec(&n).expect("vector node encodes"));
        if got != frame {
            let at = got.bytes().zip(frame.bytes()).position(|(a, b)| a != b);
            failures.push(format!("line {line}: first difference at hex char {at:?}"));
        }
        // With its JID-looking values typed, as builders make them (and the bench uses them),
        // the node writes the same bytes.
        let typed = binary::encode_to_vec(&n.with_typed_jids()).expect("typed node encodes");
        if json::encode_hex(&typed) != frame {
            failures.push(format!("line {line}: typed JIDs change the bytes"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn decoder_gives_back_every_vector_node() {
    let mut failures = Vec::new();
    for (line, node, frame) in vectors() {
        let bytes = json::decode_hex(&frame).expect("hex");
        let body = binary::unpack(&bytes, binary::DEFAULT_MAX_INFLATED).expect("unpack");
        let tree = binary::Tree::decode(&body).unwrap_or_else(|e| panic!("line {line}: {e}"));
        let got = json::to_json(tree.root());
        let want: Json = serde_json::from_str(&node).expect("json");
        if !same(&got, &want) {
            failures.push(format!("line {line}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches: {}",
        failures.len(),
        failures.join(", ")
    );
}

#[test]
fn decoded_json_reencodes_to_the_same_bytes() {
    for (line, _, frame) in vectors() {
        let bytes = json::decode_hex(&frame).expect("hex");
        let tree = binary::Tree::decode(&bytes[1..]).expect("decode");
        let n = json::from_json(&json::to_json(tree.root())).expect("json");
        let again = binary::encode_to_vec(&n).expect("encode");
        assert_eq!(json::encode_hex(&again), frame, "line {line}");
        // The owned copy re-encodes identically too.
        let owned = binary::encode_to_vec(&tree.root().to_owned()).expect("encode owned");
        assert_eq!(owned, bytes, "line {line}");
    }
}
