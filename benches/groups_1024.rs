//! A group of 1,024 participants (the creator and 1,023 others, WhatsApp's limit), created and
//! read back. Two parts:
//! 1. The stanzas alone, with the real codec, ops and the sandbox's server logic (criterion):
//!    the create IQ built and encoded; the server decoding it, applying it and encoding its
//!    result; the client decoding and reading that result; then the metadata query's answer
//!    encoded by the server and read by the client. The sizes of each stanza are printed first.
//! 2. The whole round trip against the in-process sandbox on loopback (a real device: websocket,
//!    Noise, codec, engine): `Devices::create_group` with 1,023 participants, then
//!    `GroupCall::Info` reading it back; the median and p90 of a few runs are printed.
//!
//! Run: `cargo bench --bench groups_1024` (`-- --quick` for criterion's short mode).

// A panic in a bench is a failed bench: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mode.rs"]
mod mode;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use wuts::binary::{Jid, Node, decode_owned, encode_to_vec};
use wuts::client::api::{DeviceEvent, Devices};
use wuts::client::{ClientConfig, Registry};
use wuts::engine::EngineConfig;
use wuts::ops::IqSpec;
use wuts::ops::groups::{CreateGroup, GroupAnswer, GroupCall, parse_create_result};
use wuts::sim::groups::{self as server, Creation, Fate};
use wuts::sim::{GroupRecord, Sandbox, SandboxConfig};
use wuts_store::SledStore;

const OTHERS: u64 = 1023;

fn request() -> CreateGroup {
    CreateGroup {
        subject: "A full group".into(),
        participants: (0..OTHERS)
            .map(|i| Jid::new((5_511_900_000_001 + i).to_string(), "s.whatsapp.net"))
            .collect(),
        description: Some("1,024 members".into()),
        ..CreateGroup::default()
    }
    .normalize()
    .expect("a valid request")
}

/// What the server does with a create IQ's bytes: decode, check, apply, answer (as bytes).
fn serve_create(frame: &[u8]) -> (GroupRecord, Vec<u8>) {
    let iq = decode_owned(frame).unwrap();
    let req = server::parse_create(&iq).unwrap();
    let creator = Jid::new("5511900000000", "s.whatsapp.net");
    let c = Creation {
        id: "120363000000001024",
        creator: &creator,
        creator_lid: &Jid::new("100000000000000", "lid"),
        device: &Jid::with_device("5511900000000", "s.whatsapp.net", 1),
        now: 1_781_517_600,
    };
    let g = server::create(&req, &c, |_| Fate::Added).unwrap();
    let reply = encode_to_vec(&server::result("1", &g)).unwrap();
    (g, reply)
}

fn metadata_reply(g: &GroupRecord) -> Vec<u8> {
    let node = Node::new("iq")
        .with_attr("id", "2")
        .with_attr("type", "result")
        .with_attr("from", Jid::new("120363000000001024", "g.us"))
        .with_children(vec![server::group_node(g, false)]);
    encode_to_vec(&node).unwrap()
}

fn stanzas(c: &mut Criterion) {
    let req = request();
    let create = encode_to_vec(&req.spec(0x0A1B_2C3D).iq().into_node("1")).unwrap();
    let (record, result) = serve_create(&create);
    let info = GroupCall::Info {
        group: Jid::new("120363000000001024", "g.us"),
    };
    let query = encode_to_vec(&info.spec(0).iq().into_node("2")).unwrap();
    let answer = metadata_reply(&record);
    let read = parse_create_result(&decode_owned(&result).unwrap()).unwrap();
    assert_eq!(read.participants.len(), 1024);
    println!("stanza sizes (binary, before Noise framing):");
    println!("  create IQ (1,023 participants): {} bytes", create.len());
    println!("  create result (1,024 members):  {} bytes", result.len());
    println!("  metadata query:                 {} bytes", query.len());
    println!("  metadata answer (1,024):        {} bytes", answer.len());

    let mut g = c.benchmark_group("groups_1024");
    g.bench_function("client: build and encode the create IQ", |b| {
        b.iter(|| encode_to_vec(&black_box(&req).spec(1).iq().into_node("1")).unwrap())
    });
    g.bench_function("server: decode, apply, encode the result", |b| {
        b.iter(|| serve_create(black_box(&create)))
    });
    g.bench_function("client: decode and read the create result", |b| {
        b.iter(|| parse_create_result(&decode_owned(black_box(&result)).unwrap()).unwrap())
    });
    g.bench_function("server: encode the metadata answer", |b| {
        b.iter(|| metadata_reply(black_box(&record)))
    });
    g.bench_function("client: decode and read the metadata answer", |b| {
        b.iter(|| {
            let node = decode_owned(black_box(&answer)).unwrap();
            info.spec(0).parse(&node).unwrap()
        })
    });
    g.finish();
}

/// Part 2: a real device paired to the sandbox creates the group and reads it back, `runs`
/// times; prints the median and p90 of each.
fn against_the_sandbox(runs: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = Sandbox::start(SandboxConfig {
            seed: Some(1024),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let registry = Registry::new(
            store,
            ClientConfig {
                ws_url: sim.ws_url(),
                engine: Arc::new(EngineConfig {
                    trusted_root: sim.root_public_key(),
                    pre_key_batch: (50, 50),
                    ..EngineConfig::default()
                }),
                ..ClientConfig::default()
            },
        );
        let devices: Arc<dyn Devices> = Arc::new(registry.clone());
        let device = devices.create().await.unwrap();
        let mut events = devices.subscribe(device).unwrap();
        devices.pair(device).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match events.recv().await.unwrap() {
                    DeviceEvent::Qr(qr) => {
                        sim.scan(&qr.code, "5511900000000").await.unwrap();
                    }
                    DeviceEvent::Connected => return,
                    _ => {}
                }
            }
        })
        .await
        .expect("paired and connected within 60 s");
        let (mut create, mut read) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let g = devices.create_group(device, request()).await.unwrap();
            create.push(started.elapsed());
            assert_eq!(g.participants.len(), 1024);
            let started = Instant::now();
            let answer = devices
                .group(device, GroupCall::Info { group: g.jid })
                .await
                .unwrap();
            read.push(started.elapsed());
            assert!(matches!(answer, GroupAnswer::Group(g) if g.participants.len() == 1024));
        }
        for (name, mut times) in [("create", create), ("read back", read)] {
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            println!(
                "sandbox on loopback, {name} (1,024 members, {runs} runs): median {:.2} ms, p90 {:.2} ms",
                at(0.5).as_secs_f64() * 1e3,
                at(0.9).as_secs_f64() * 1e3
            );
        }
        devices.shutdown().await;
    });
}

fn main() {
    let smoke = mode::smoke("groups_1024");
    let mut c = Criterion::default().configure_from_args();
    stanzas(&mut c);
    let runs = if smoke {
        1
    } else if std::env::args().any(|a| a == "--quick") {
        3
    } else {
        30
    };
    against_the_sandbox(runs);
    c.final_summary();
}
