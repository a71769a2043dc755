//! Known answers from the fact sheet (protocol-binary.md §2.5, §4, §5.2, §6, §8) and the
//! decisions taken where public implementations diverge (tests/data/vectors/divergences.jsonl).

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wuts::binary::{
    self, AttrValue, Content, Error, Jid, Node, Tree, decode_owned, encode_to_vec, json,
};

fn hex(s: &str) -> Vec<u8> {
    json::decode_hex(&s.replace([' ', '\n'], "")).expect("hex literal")
}

fn enc(n: &Node) -> String {
    json::encode_hex(&encode_to_vec(n).expect("encodes"))
}

fn text_of(frame: &[u8]) -> String {
    decode_owned(frame).expect("decodes").to_string()
}

#[test]
fn encodes_the_fact_sheet_examples() {
    let receipt = Node::new("message").with_text("receipt");
    assert_eq!(enc(&receipt), "00f8021307");
    let nibble = Node::new("test").with_text("-.0123456789");
    assert_eq!(enc(&nibble), "00f802fc0474657374ff06ab0123456789");
    let ack = Node::new("ack")
        .with_attr("to", "5511999990000@s.whatsapp.net")
        .with_attr("id", "3EB0A1B2C3D4E5F60718")
        .with_attr("class", "message");
    assert_eq!(
        enc(&ack),
        "00f8071b11faff875511999990000f0308fb0a3eb0a1b2c3d4e5f607181513"
    );
    let ad = Node::new("message").with_attr("to", Jid::with_device("100000000000001", "lid", 3));
    assert_eq!(enc(&ad), "00f8031311f70103ff88100000000000001f");
    let legacy_group = Node::new("message").with_attr("to", "5511999999999-1600000000@g.us");
    assert_eq!(
        enc(&legacy_group),
        "00f8031311faff0c5511999999999a16000000001c"
    );
    let newsletter = Node::new("message").with_attr("to", "120363000000000009@newsletter");
    assert_eq!(
        enc(&newsletter),
        "00f8031311faff09120363000000000009fc0a6e6577736c6574746572"
    );
    let empty_children = Node::new("iq").with_attr("id", "1").with_children(vec![]);
    assert_eq!(enc(&empty_children), "00f80419085500");
}

#[test]
fn encodes_the_group_create_request_of_the_fact_sheet() {
    let create = Node::new("iq")
        .with_attr("id", "123.45-1")
        .with_attr("xmlns", "w:g2")
        .with_attr("type", "set")
        .with_attr("to", Jid::server_only("g.us"))
        .with_children(vec![
            Node::new("create")
                .with_attr("subject", "My Group")
                .with_children(vec![
                    Node::new("participant")
                        .with_attr("jid", Jid::new("5511999990001", "s.whatsapp.net")),
                    Node::new("member_add_mode").with_text("all_member_add"),
                    Node::new("ephemeral").with_attr("expiration", "0"),
                    Node::new("membership_approval_mode")
                        .with_children(vec![Node::new("group_join").with_attr("state", "off")]),
                ]),
        ]);
    let want = "00f80a1908ff04123b45a116ed33045a11fa001cf801f804ef4cec7ffc084d792047726f7570f804f8
        03050cfaff875511999990001f03f802ec3cfc0e616c6c5f6d656d6265725f616464f803edc8bb2df802fc186d6
        56d626572736869705f617070726f76616c5f6d6f6465f801f803fc0a67726f75705f6a6f696ed0fc036f6666";
    assert_eq!(enc(&create), json::encode_hex(&hex(want)));
}

#[test]
fn decodes_the_captured_success_node() {
    // Captured from the real server (whatsapp-rust's test data), without the flag byte.
    let node = hex(
        "f80f4c1aff0517520218905cee043dfc0366726376f7012aff88100000000000001f4becb43cff051752020041
         ece6fc2c643559623557784c2b6b35554b5148564936627546524751456a30475a413565767a3862365632786b
         64773d",
    );
    let tree = Tree::decode(&node).expect("decodes");
    let root = tree.root();
    assert!(root.tag().eq_str("success"));
    let attr = |k: &str| root.attr(k).expect(k).as_str().into_owned();
    assert_eq!(attr("t"), "1752021890");
    assert_eq!(attr("lid"), "100000000000001:42@lid");
    assert_eq!(attr("creation"), "1752020041");
    assert_eq!(
        attr("companion_enc_static"),
        "d5Yb5WxL+k5UKQHVI6buFRGQEj0GZA5evz8b6V2xkdw="
    );
    let lid = root
        .attr("lid")
        .and_then(|v| v.as_jid().copied())
        .expect("typed JID");
    assert_eq!(lid.device, Some(42));
}

#[test]
fn inflates_compressed_frames() {
    let frame = hex("02789cfbc126c911caa2f983f1076318001906 03ea");
    assert_eq!(text_of(&frame), r#"<iq id="1" type="get"><ping/></iq>"#);
    let plain = hex("00f8061908550429f801f80156");
    assert_eq!(
        decode_owned(&plain).expect("plain"),
        decode_owned(&frame).expect("zlib")
    );
    // And our own compressor round-trips.
    let again = binary::compress(&plain[1..]);
    assert_eq!(
        decode_owned(&again).expect("ours"),
        decode_owned(&plain).expect("plain")
    );
}

#[test]
fn refuses_a_zlib_bomb_without_expanding_it() {
    let huge = Node::new("x").with_bytes(vec![0u8; 4 << 20]);
    let body = encode_to_vec(&huge).expect("encode");
    let bomb = binary::compress(&body[1..]);
    assert!(bomb.len() < 16 << 10, "compresses well: {}", bomb.len());
    let err = binary::unpack(&bomb, 1 << 20).expect_err("over the cap");
    assert!(
        matches!(err, Error::InflatedTooLarge { limit } if limit == 1 << 20),
        "{err:?}"
    );
    assert!(binary::unpack(&bomb, 8 << 20).is_ok());
    let truncated = &bomb[..bomb.len() / 2];
    assert!(binary::unpack(truncated, 8 << 20).is_err());
}

#[test]
fn binary_length_prefixes_switch_at_the_documented_thresholds() {
    let prefix = |n: usize| {
        let v = encode_to_vec(&Node::new("x").with_bytes(vec![7u8; n])).expect("encode");
        json::encode_hex(&v[6..v.len() - n])
    };
    assert_eq!(prefix(255), "fcff");
    assert_eq!(prefix(256), "fd000100");
    assert_eq!(prefix((1 << 20) - 1), "fd0fffff");
    assert_eq!(prefix(1 << 20), "fe00100000");
}

#[test]
fn list_headers_switch_at_256_children_and_refuse_past_65535() {
    let kids = |n: usize| Node::new("x").with_children(vec![Node::new("y"); n]);
    assert_eq!(
        &encode_to_vec(&kids(255)).expect("255")[6..8],
        &[0xf8, 0xff]
    );
    assert_eq!(
        &encode_to_vec(&kids(256)).expect("256")[6..9],
        &[0xf9, 0x01, 0x00]
    );
    let back = decode_owned(&encode_to_vec(&kids(300)).expect("300")).expect("decode");
    assert_eq!(back.children().len(), 300);
    let err = encode_to_vec(&kids(65536)).expect_err("too many");
    assert!(matches!(err, Error::TooLarge { len: 65536, .. }));
}

/// Each input of divergences.jsonl, and what we decided for it.
#[test]
fn divergence_decisions_are_lossless() {
    let cases = include_str!("data/vectors/divergences.jsonl");
    for line in cases.lines() {
        let node = json::from_json_str(line).expect("node");
        let frame = encode_to_vec(&node).expect("accepted");
        let tree = Tree::decode(&frame[1..]).expect("decodes");
        let back: serde_json::Value = json::to_json(tree.root());
        let want: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(back["attrs"], want["attrs"], "{line}");
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Object(m) => m
                .get("hex")
                .and_then(|h| json::decode_hex(h.as_str()?))
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            other => other.as_str().map(str::to_owned),
        };
        assert_eq!(text(&back["content"]), text(&want["content"]), "{line}");
    }
}

#[test]
fn jid_looking_strings_take_a_jid_form_only_when_lossless() {
    let wire = |v: &str| enc(&Node::new("x").with_attr("jid", v));
    // The server-only addressee of group IQs.
    assert_eq!(wire("@g.us"), "00f803fc01780cfa001c");
    // Device 0 is kept: AD_JID with device 0, which decodes back to ":0".
    assert!(wire("5511999999999:0@s.whatsapp.net").starts_with("00f803fc01780cf70000"));
    // Device above 255, a device on a group, an unknown server: plain strings.
    for s in [
        "5511999999999:300@s.whatsapp.net",
        "120363012345678901:5@g.us",
        "user_name@example.com",
        "a@b.com",
    ] {
        let w = wire(s);
        assert!(w.starts_with("00f803fc01780cfc"), "{s} -> {w}");
    }
    // An underscore is not an agent separator (Baileys would write domain 1 and lose it).
    assert!(wire("5511999999999_1:2@s.whatsapp.net").starts_with("00f803fc01780cf70002fc"));
    // Messenger JIDs with a device use FB_JID.
    assert!(wire("100012345678:4@msgr").starts_with("00f803fc01780cf6"));
    // Tokens are matched exactly: JavaScript object keys are not tokens.
    assert_eq!(
        wire("constructor"),
        "00f803fc01780cfc0b636f6e7374727563746f72"
    );
}

#[test]
fn typed_jids_without_a_wire_form_are_refused() {
    let on_group = Node::new("x").with_attr("jid", Jid::with_device("120363", "g.us", 5));
    assert!(matches!(
        encode_to_vec(&on_group),
        Err(Error::JidNotEncodable { .. })
    ));
    let big = Node::new("x").with_attr("jid", Jid::with_device("1", "s.whatsapp.net", 300));
    assert!(matches!(
        encode_to_vec(&big),
        Err(Error::JidNotEncodable { .. })
    ));
    let mut buf = vec![1, 2, 3];
    assert!(binary::encode(&big, &mut buf).is_err());
    assert_eq!(buf, [1, 2, 3], "a refused node leaves the buffer as it was");
}

#[test]
fn empty_tags_and_empty_strings() {
    assert!(matches!(
        encode_to_vec(&Node::new("")),
        Err(Error::EmptyTag)
    ));
    let n = Node::new("x").with_attr("a", "").with_text("");
    assert_eq!(enc(&n), "00f804fc0178fc0161fc00fc00");
    let back = decode_owned(&encode_to_vec(&n).expect("enc")).expect("dec");
    assert_eq!(back.attr("a"), Some(&AttrValue::Str("".into())));
    assert_eq!(back.content, Content::Bytes(vec![].into()));
}

#[test]
fn text_form_is_readable_and_abbreviates_long_payloads() {
    let n = Node::new("message")
        .with_attr("to", "5511999990000@s.whatsapp.net")
        .with_attr("note", "a\"b<c")
        .with_children(vec![
            Node::new("enc").with_bytes(vec![0xab; 100]),
            Node::new("body").with_text("hi"),
        ]);
    let s = n.to_string();
    assert!(s.starts_with(r#"<message to="5511999990000@s.whatsapp.net" note="a&quot;b&lt;c">"#));
    assert!(s.contains("abababab… 100 bytes]</enc>"), "{s}");
    assert!(s.ends_with("<body>hi</body></message>"));
    let decoded = text_of(&encode_to_vec(&n).expect("enc"));
    assert!(decoded.contains("<body>[6869]</body>"), "{decoded}");
    assert!(format!("{n:#}").contains("\n  <enc>"));
}

#[test]
fn typed_jids_change_neither_text_nor_wire_form() {
    assert!(matches!(
        AttrValue::typed("5511999999999:3@s.whatsapp.net"),
        AttrValue::Jid(_)
    ));
    assert!(matches!(AttrValue::typed("@g.us"), AttrValue::Jid(_)));
    // No lossless JID form: stays text, as the encoder would write it.
    for s in [
        "a@b.com",
        "5511999999999:300@s.whatsapp.net",
        "120363:5@g.us",
        "hello",
    ] {
        assert!(matches!(AttrValue::typed(s), AttrValue::Str(_)), "{s}");
    }
    let n = Node::new("message")
        .with_attr("to", "120363021033254949@g.us")
        .with_attr("id", "3EB0C5143ABB71F8005100")
        .with_children(vec![Node::new("participant").with_attr("jid", "7:2@lid")]);
    let typed = n.clone().with_typed_jids();
    assert!(matches!(typed.attr("to"), Some(AttrValue::Jid(_))));
    assert_eq!(typed.to_string(), n.to_string());
    assert_eq!(
        encode_to_vec(&typed).expect("typed"),
        encode_to_vec(&n).expect("text")
    );
}
