//! Tests of the group calls: stanzas, validation, answers.

use super::*;
use crate::binary::{decode_owned, encode_to_vec};

fn g() -> Jid {
    Jid::new("120363000000000001", "g.us")
}

fn problems(call: GroupCall) -> Vec<String> {
    call.normalize()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn every_call_encodes_with_its_addressee() {
    let calls = [
        (GroupCall::Participating, "@g.us", "participating"),
        (
            GroupCall::Info { group: g() },
            "120363000000000001@g.us",
            "query",
        ),
        (
            GroupCall::Participants {
                group: g(),
                action: ParticipantAction::Demote,
                participants: vec![Jid::new("5511999990001", "s.whatsapp.net")],
            },
            "120363000000000001@g.us",
            "demote",
        ),
        (GroupCall::Leave { group: g() }, "@g.us", "leave"),
        (
            GroupCall::JoinLink { code: "AbC".into() },
            "@g.us",
            "invite",
        ),
        (
            GroupCall::Set {
                group: g(),
                setting: Setting::Ephemeral(0),
            },
            "120363000000000001@g.us",
            "not_ephemeral",
        ),
    ];
    for (call, to, tag) in calls {
        let iq = call.spec(7).iq();
        assert_eq!(iq.to.to_string(), to, "{call:?}");
        assert_eq!(iq.children[0].tag, tag);
        let node = iq.into_node("1.2-3");
        assert!(decode_owned(&encode_to_vec(&node).expect("encodes")).is_ok());
    }
}

#[test]
fn description_names_its_predecessor_or_deletes() {
    let set = |text: Option<&str>| GroupCall::Set {
        group: g(),
        setting: Setting::Description {
            text: text.map(str::to_owned),
            prev: Some("0000ABCD".into()),
        },
    };
    let with = set(Some("hi")).spec(0x1A2B_3C4D).iq().children.remove(0);
    assert_eq!(
        with.to_string(),
        r#"<description id="1A2B3C4D" prev="0000ABCD"><body>[6869]</body></description>"#
    );
    let without = set(None).spec(1).iq().children.remove(0);
    assert!(without.to_string().contains(r#"delete="true""#));
}

#[test]
fn validation_lists_every_problem() {
    let bad = GroupCall::Participants {
        group: Jid::new("5511", "s.whatsapp.net"),
        action: ParticipantAction::Add,
        participants: vec![Jid::new("120363000000000001", "g.us")],
    };
    assert_eq!(problems(bad), ["jid", "participants[0]"]);
    let none = GroupCall::Participants {
        group: g(),
        action: ParticipantAction::Remove,
        participants: vec![],
    };
    assert_eq!(problems(none), ["participants"]);
    let long = GroupCall::Set {
        group: g(),
        setting: Setting::Subject("x".repeat(101)),
    };
    assert_eq!(problems(long), ["name"]);
    let timer = GroupCall::Set {
        group: g(),
        setting: Setting::Ephemeral(60),
    };
    assert_eq!(problems(timer), ["duration_seconds"]);
}

#[test]
fn invite_codes_come_from_links_or_bare() {
    assert_eq!(
        invite_code("https://chat.whatsapp.com/AbC_d-1"),
        Ok("AbC_d-1".into())
    );
    assert_eq!(invite_code(" chat.whatsapp.com/AbC/ "), Ok("AbC".into()));
    assert_eq!(invite_code("AbC"), Ok("AbC".into()));
    assert_eq!(
        invite_code("https://chat.whatsapp.com/"),
        Err(Problem::Empty)
    );
    assert!(invite_code("a b").is_err());
}

#[test]
fn answers_are_read() {
    let reply = |child: Node| Node::new("iq").with_children(vec![child]);
    let add = GroupCall::Participants {
        group: g(),
        action: ParticipantAction::Add,
        participants: vec![Jid::new("1", "s.whatsapp.net")],
    };
    let answer = add
        .spec(0)
        .parse(&reply(Node::new("add").with_children(vec![
            Node::new("participant")
                .with_attr("jid", Jid::new("1", "s.whatsapp.net"))
                .with_attr("error", "409"),
        ])))
        .expect("parses");
    assert!(matches!(answer, GroupAnswer::Participants(p) if p.len() == 1));
    let join = GroupCall::JoinLink { code: "x".into() };
    let pending = join
        .spec(0)
        .parse(&reply(
            Node::new("membership_approval_request").with_attr("jid", g()),
        ))
        .expect("parses");
    assert_eq!(
        pending,
        GroupAnswer::Joined {
            group: g(),
            pending: true
        }
    );
    let invite = GroupCall::InviteLink {
        group: g(),
        reset: false,
    };
    assert_eq!(
        invite.spec(0).parse(&reply(Node::new("invite"))),
        Err(ParseError::Missing("invite"))
    );
}
