//! Property tests: generated nodes and JIDs round-trip; random and mutated bytes never panic and
//! never make the decoder allocate more than the input justifies.

// A panic in a test is a failed test: unwrap and expect are the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A counting allocator is the only way to see what the decoder allocates.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use wuts::binary::{self, AttrValue, Content, Jid, Node, Tree, encode_to_vec};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(l.size())));
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(new)));
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Decodes `data` and returns the largest single allocation made meanwhile.
fn decode_measuring(data: &[u8]) -> usize {
    LARGEST.with(|m| m.set(0));
    let r = Tree::decode(data);
    drop(r);
    LARGEST.with(Cell::get)
}

fn jid_text() -> impl Strategy<Value = String> {
    let user = "[0-9]{1,18}";
    prop_oneof![
        (
            user,
            prop::sample::select(vec![
                "s.whatsapp.net",
                "lid",
                "g.us",
                "broadcast",
                "c.us",
                "bot",
                "newsletter",
                "call"
            ])
        )
            .prop_map(|(u, s)| format!("{u}@{s}")),
        (
            user,
            0u16..400,
            prop::sample::select(vec![
                "s.whatsapp.net",
                "lid",
                "hosted",
                "hosted.lid",
                "g.us",
                "msgr"
            ])
        )
            .prop_map(|(u, d, s)| format!("{u}:{d}@{s}")),
        (user, 2u8..=255, 0u16..300).prop_map(|(u, a, d)| format!("{u}.{a}:{d}@s.whatsapp.net")),
        (0u16..9, user, 0u16..9).prop_map(|(i, u, d)| format!("{i}-{u}:{d}@interop")),
        Just("@g.us".to_owned()),
        Just("status@broadcast".to_owned()),
        "[a-z_]{1,8}@[a-z.]{1,10}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "iq",
            "id",
            "type",
            "s.whatsapp.net",
            "w:g2",
            "create",
            "0",
            "401",
            "..."
        ])
        .prop_map(str::to_owned),
        "[0-9.-]{0,130}",
        "[0-9A-F]{0,130}",
        "[0-9a-f]{0,20}",
        jid_text(),
        any::<String>(),
        Just(String::new()),
        "[a-z]{200,300}",
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        text().prop_filter("non-empty tag", |t| !t.is_empty()),
        prop::collection::vec((text(), text()), 0..5),
        prop_oneof![
            Just(Content::None),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Content::Bytes(b.into())),
            text().prop_map(|s| Content::Str(s.into())),
        ],
    )
        .prop_map(|(tag, attrs, content)| Node {
            tag: tag.into(),
            attrs: attrs
                .into_iter()
                .map(|(k, v)| (k.into(), AttrValue::Str(v.into())))
                .collect(),
            content,
        });
    leaf.prop_recursive(4, 64, 8, |inner| {
        (
            text().prop_filter("non-empty tag", |t| !t.is_empty()),
            prop::collection::vec((text(), text()), 0..4),
            prop::collection::vec(inner, 0..8),
        )
            .prop_map(|(tag, attrs, kids)| Node {
                tag: tag.into(),
                attrs: attrs
                    .into_iter()
                    .map(|(k, v)| (k.into(), AttrValue::Str(v.into())))
                    .collect(),
                content: Content::Nodes(kids),
            })
    })
}

/// The node as text, the way a reader sees it: JIDs as text, text content as its bytes (raw
/// text and raw bytes share one wire form).
fn normal(n: &Node) -> Node {
    Node {
        tag: n.tag.clone(),
        attrs: n
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), AttrValue::Str(v.as_str().into())))
            .collect(),
        content: match &n.content {
            Content::Nodes(c) => Content::Nodes(c.iter().map(normal).collect()),
            Content::None => Content::None,
            _ => Content::Bytes(
                n.content_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default()
                    .into(),
            ),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn any_accepted_node_decodes_back_to_itself(n in node()) {
        let frame = encode_to_vec(&n).expect("generated nodes are encodable");
        let back = binary::decode_owned(&frame).expect("own output decodes");
        prop_assert_eq!(normal(&back), normal(&n));
        // Decoding and re-encoding the owned copy is byte-stable.
        prop_assert_eq!(encode_to_vec(&back).expect("re-encode"), frame);
    }

    #[test]
    fn jid_text_round_trips_through_the_wire(s in jid_text()) {
        let n = Node::new("x").with_attr("j", s.as_str());
        let back = binary::decode_owned(&encode_to_vec(&n).expect("encodes")).expect("decodes");
        prop_assert_eq!(back.attr("j").map(|v| v.as_str().into_owned()), Some(s.clone()));
        if let Ok(j) = s.parse::<Jid>() {
            prop_assert_eq!(j.to_string(), s);
        }
    }

    #[test]
    fn typed_jids_encode_exactly_or_are_refused(
        user in "[0-9]{0,15}", device in prop::option::of(0u16..600),
        server in prop::sample::select(vec!["s.whatsapp.net", "lid", "hosted", "hosted.lid", "g.us", "msgr", "interop", "example"]),
    ) {
        let j = Jid { device, ..Jid::new(user, server) };
        // Which JIDs have a wire form (protocol-binary.md): any JID without a device is a
        // JID_PAIR; AD_JID carries a one-byte device for s.whatsapp.net, lid, hosted and
        // hosted.lid; FB_JID (msgr) and INTEROP_JID (interop) carry a two-byte one.
        let has_form = match device {
            None => true,
            Some(d) => {
                matches!(server, "msgr" | "interop")
                    || (matches!(server, "s.whatsapp.net" | "lid" | "hosted" | "hosted.lid")
                        && d <= 255)
            }
        };
        let n = Node::new("x").with_attr("j", j.clone());
        match encode_to_vec(&n) {
            Ok(frame) => {
                prop_assert!(has_form, "{} has no wire form, yet encoded", j);
                let back = binary::decode_owned(&frame).expect("decodes");
                prop_assert_eq!(back.attr("j"), Some(&AttrValue::Jid(j)));
            }
            Err(e) => prop_assert!(!has_form, "{} refused: {}", j, e),
        }
    }

    #[test]
    fn random_bytes_never_panic_or_overallocate(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let largest = decode_measuring(&data);
        prop_assert!(largest <= 64 * data.len() + 1024, "{} bytes for {} input", largest, data.len());
        let _ = binary::unpack(&data, 1 << 16);
    }

    #[test]
    fn mutated_frames_never_panic_or_overallocate(
        n in node(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = encode_to_vec(&n).expect("encodes");
        for (i, b) in flips {
            let at = i.index(frame.len());
            frame[at] = b;
        }
        let body = &frame[1..];
        let largest = decode_measuring(body);
        prop_assert!(largest <= 64 * body.len() + 1024);
        let cut = cut.index(body.len().max(1));
        let _ = decode_measuring(&body[..cut.min(body.len())]);
        if let Ok(t) = Tree::decode(body) {
            // Whatever decoded can be walked and printed without failing.
            let _ = t.root().to_string();
            let _ = t.root().to_owned();
        }
    }
}

/// The JIDs of everyday traffic encode as typed JIDs and come back exactly; a codec that
/// refused them all must not pass the property above by default.
#[test]
fn everyday_jids_encode_and_round_trip() {
    for text in [
        "5511999999999@s.whatsapp.net",
        "5511999999999:12@s.whatsapp.net",
        "100000000000001@lid",
        "100000000000001:3@lid",
        "120363000000000001@g.us",
        "@g.us",
        "@s.whatsapp.net",
        "status@broadcast",
        "5511999999999:2@hosted",
        "100000000000001:2@hosted.lid",
        "1234:5@msgr",
        "1-5511999999999:2@interop",
    ] {
        let j: Jid = text.parse().expect(text);
        assert_eq!(j.to_string(), text);
        let n = Node::new("x").with_attr("j", j.clone());
        let frame = encode_to_vec(&n).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back = binary::decode_owned(&frame).expect("decodes");
        assert_eq!(back.attr("j"), Some(&AttrValue::Jid(j)), "{text}");
    }
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    // 10,000 nested single-child lists.
    let mut data = Vec::new();
    for _ in 0..10_000 {
        data.extend_from_slice(&[0xf8, 0x02, 0x13, 0xf8, 0x01]);
    }
    assert!(matches!(
        Tree::decode(&data),
        Err(binary::Error::TooDeep { .. })
    ));
}

#[test]
fn huge_claimed_lists_are_refused_before_allocating() {
    // A node claiming 65,535 children with four bytes behind it.
    let data = [0xf8, 0x02, 0x13, 0xf9, 0xff, 0xff, 0xf8, 0x01, 0x13];
    assert!(decode_measuring(&data) < 4096);
    assert!(matches!(
        Tree::decode(&data),
        Err(binary::Error::ListTooLong { .. })
    ));
}

#[test]
fn errors_say_what_and_where() {
    let cases: [(&[u8], &str); 6] = [
        (
            &[0xf8, 0x02, 0x13],
            "unexpected end of input at byte 3 while reading content",
        ),
        (
            &[0xf8, 0x01, 0xf0],
            "invalid tag byte 0xf0 at byte 2 while reading tag",
        ),
        (&[0x00], "empty node at byte 0"),
        (
            &[0xf8, 0x01, 0x13, 0x13],
            "1 bytes left over after the node ending at byte 3",
        ),
        (
            &[0xf8, 0x02, 0x13, 0xff, 0x01, 0xc1],
            "invalid packed digit 12 at byte 5",
        ),
        (
            &[0xf8, 0x03, 0x13, 0x00, 0x13],
            "null string at byte 3 where an attribute key is required",
        ),
    ];
    for (data, want) in cases {
        let err = Tree::decode(data)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(want),
            "{data:02x?}: got {err:?}, want {want:?}"
        );
    }
}
