//! `w:g2` group creation against the sandbox: the result shape, the server's refusals and the
//! per-participant outcomes configured per phone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use sim_support::*;
use wuts::binary::{Jid, Node};
use wuts::sim::{AddRule, PhoneBehaviour};

const CREATOR: &str = "5511999999999";

// WhatsApp's limits, written out rather than imported: a wrong constant in the sandbox (or in
// the client) must fail here, not agree with itself.
/// Longest subject, in characters.
const SUBJECT_CHARS: usize = 100;
/// Longest description, in characters.
const DESCRIPTION_CHARS: usize = 2048;
/// Most members, the creator included.
const GROUP_SIZE: usize = 1024;

fn create_iq(
    client: &mut RawClient,
    subject: Option<&str>,
    members: &[&str],
    extra: Vec<Node>,
) -> Node {
    let mut kids: Vec<Node> = members
        .iter()
        .map(|m| Node::new("participant").with_attr("jid", m.parse::<Jid>().unwrap()))
        .collect();
    kids.push(Node::new("member_add_mode").with_bytes(b"all_member_add".to_vec()));
    kids.extend(extra);
    kids.push(Node::new("ephemeral").with_attr("expiration", "0"));
    kids.push(
        Node::new("membership_approval_mode")
            .with_children(vec![Node::new("group_join").with_attr("state", "off")]),
    );
    let mut create = Node::new("create");
    if let Some(s) = subject {
        create = create.with_attr("subject", s);
    }
    Node::new("iq")
        .with_attr("id", client.new_id())
        .with_attr("xmlns", "w:g2")
        .with_attr("type", "set")
        .with_attr("to", Jid::server_only("g.us"))
        .with_children(vec![create.with_children(kids)])
}

fn error_code(reply: &Node) -> Option<String> {
    assert_eq!(attr(reply, "type").as_deref(), Some("error"), "{reply}");
    reply.child("error").and_then(|e| attr(e, "code"))
}

#[tokio::test]
async fn creates_a_group_with_the_real_result_shape() {
    let sb = sandbox().await;
    let (_, paired, mut client) = online(&sb, CREATOR).await;
    let iq = create_iq(
        &mut client,
        Some("Team"),
        &[
            "5511000000001@s.whatsapp.net",
            "5511000000002@s.whatsapp.net",
        ],
        vec![Node::new("locked"), Node::new("announcement")],
    );
    let reply = client.request(iq).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    assert_eq!(
        reply.attr("from").and_then(|f| f.to_jid()),
        Some(Jid::server_only("g.us"))
    );
    let group = reply.child("group").expect("group child");
    let id = attr(group, "id").unwrap();
    assert!(id.starts_with("120363") && id.len() == 18, "{id}");
    assert_eq!(attr(group, "subject").as_deref(), Some("Team"));
    let creator = format!("{CREATOR}@s.whatsapp.net");
    assert_eq!(attr(group, "creator"), Some(creator.clone()));
    assert_eq!(attr(group, "s_o"), Some(creator.clone()));
    assert!(attr(group, "creation").is_some() && attr(group, "s_t").is_some());
    let participants: Vec<(String, Option<String>)> = group
        .children()
        .iter()
        .filter(|c| c.tag == "participant")
        .map(|p| (attr(p, "jid").unwrap(), attr(p, "type")))
        .collect();
    assert_eq!(participants[0], (creator, Some("superadmin".into())));
    assert_eq!(participants.len(), 3);
    assert!(group.child("locked").is_some());
    assert!(group.child("announcement").is_some());
    assert!(group.child("membership_approval_mode").is_none());
    assert_eq!(
        group
            .child("member_add_mode")
            .and_then(|m| m.content_bytes())
            .as_deref(),
        Some(&b"all_member_add"[..])
    );

    let groups = sb.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].jid, format!("{id}@g.us"));
    assert_eq!(groups[0].created_by, paired.jid);
    assert!(groups[0].locked && groups[0].announcement);
    assert_eq!(groups[0].participants.len(), 3);
}

#[tokio::test]
async fn refuses_what_the_server_refuses() {
    let sb = sandbox().await;
    let (_, _, mut client) = online(&sb, CREATOR).await;
    let long = "x".repeat(SUBJECT_CHARS + 1);
    let long_description = description("d".repeat(DESCRIPTION_CHARS + 1));
    let cases: Vec<(Option<&str>, Vec<&str>, &str)> = vec![
        (Some(long.as_str()), vec![], "406"),
        (None, vec![], "400"),
        (Some(""), vec![], "400"),
        (Some("g"), vec!["5511000000001:2@s.whatsapp.net"], "400"),
        (Some("g"), vec!["120363000000000001@g.us"], "400"),
        (Some("g"), vec!["not-a-number@s.whatsapp.net"], "400"),
    ];
    for (subject, members, code) in cases {
        let iq = create_iq(&mut client, subject, &members, vec![]);
        let reply = client.request(iq).await;
        assert_eq!(
            error_code(&reply).as_deref(),
            Some(code),
            "{subject:?} {members:?}"
        );
    }
    let iq = create_iq(&mut client, Some("g"), &[], vec![long_description]);
    assert_eq!(
        error_code(&client.request(iq).await).as_deref(),
        Some("406")
    );
    let many: Vec<String> = (0..GROUP_SIZE)
        .map(|i| format!("{}@s.whatsapp.net", 4_400_000_000_u64 + i as u64))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let iq = create_iq(&mut client, Some("big"), &many, vec![]);
    assert_eq!(
        error_code(&client.request(iq).await).as_deref(),
        Some("406")
    );
    assert!(sb.groups().is_empty());

    // Exactly at every limit is accepted.
    let subject = "x".repeat(SUBJECT_CHARS);
    let text = description("d".repeat(DESCRIPTION_CHARS));
    let iq = create_iq(&mut client, Some(&subject), &many[1..], vec![text]);
    let reply = client.request(iq).await;
    assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    assert_eq!(sb.groups()[0].participants.len(), GROUP_SIZE);
}

/// `<description><body>text</body></description>`, as clients send it.
fn description(text: String) -> Node {
    Node::new("description").with_children(vec![Node::new("body").with_bytes(text.into_bytes())])
}

#[tokio::test]
async fn participants_fail_as_their_phones_are_configured() {
    let sb = sandbox().await;
    let (_, _, mut client) = online(&sb, CREATOR).await;
    let invite_only = PhoneBehaviour {
        on_add: AddRule::InviteOnly,
        ..PhoneBehaviour::default()
    };
    sb.set_phone_behaviour("5511000000002", invite_only)
        .unwrap();
    let unknown = PhoneBehaviour {
        on_add: AddRule::NotOnWhatsApp,
        ..PhoneBehaviour::default()
    };
    sb.set_phone_behaviour("5511000000003", unknown).unwrap();
    let left = PhoneBehaviour {
        on_add: AddRule::Error(408),
        ..PhoneBehaviour::default()
    };
    sb.set_phone_behaviour("5511000000004", left).unwrap();
    let members = [
        "5511000000001@s.whatsapp.net",
        "5511000000002@s.whatsapp.net",
        "5511000000003@s.whatsapp.net",
        "5511000000004@s.whatsapp.net",
    ];
    let iq = create_iq(&mut client, Some("Mixed"), &members, vec![]);
    let reply = client.request(iq).await;
    let group = reply.child("group").expect("created despite failures");
    let find = |jid: &str| {
        group
            .children()
            .iter()
            .find(|p| p.tag == "participant" && attr(p, "jid").as_deref() == Some(jid))
            .unwrap()
            .clone()
    };
    assert_eq!(attr(&find(members[0]), "error"), None);
    let privacy = find(members[1]);
    assert_eq!(attr(&privacy, "error").as_deref(), Some("403"));
    let invite = privacy.child("add_request").expect("add_request");
    assert!(attr(invite, "code").is_some_and(|c| c.len() >= 16));
    let expiration: u64 = attr(invite, "expiration").unwrap().parse().unwrap();
    assert!(expiration > now());
    assert_eq!(attr(&find(members[2]), "error").as_deref(), Some("404"));
    assert!(find(members[2]).child("add_request").is_none());
    assert_eq!(attr(&find(members[3]), "error").as_deref(), Some("408"));

    let g = &sb.groups()[0];
    assert_eq!(g.participants.len(), 2);
    let codes: Vec<u16> = g.failed.iter().map(|f| f.code).collect();
    assert_eq!(codes, [403, 404, 408]);
    assert!(g.failed[0].add_request.is_some());
}

#[tokio::test]
async fn communities_and_their_groups() {
    let sb = sandbox().await;
    let (_, _, mut client) = online(&sb, CREATOR).await;
    let parent =
        Node::new("parent").with_attr("default_membership_approval_mode", "request_required");
    let iq = create_iq(&mut client, Some("Community"), &[], vec![parent]);
    let reply = client.request(iq).await;
    let community = reply.child("group").unwrap();
    assert!(community.child("parent").is_some());
    let community_jid = format!("{}@g.us", attr(community, "id").unwrap());

    let linked = Node::new("linked_parent").with_attr("jid", community_jid.parse::<Jid>().unwrap());
    let iq = create_iq(&mut client, Some("Sub"), &[], vec![linked]);
    let reply = client.request(iq).await;
    let sub = reply.child("group").unwrap();
    assert_eq!(
        sub.child("linked_parent").and_then(|l| attr(l, "jid")),
        Some(community_jid)
    );
    // A parent that does not exist.
    let ghost = Node::new("linked_parent").with_attr("jid", Jid::new("120363999999999999", "g.us"));
    let iq = create_iq(&mut client, Some("Sub"), &[], vec![ghost]);
    assert_eq!(
        error_code(&client.request(iq).await).as_deref(),
        Some("404")
    );
    // The community, its announcement group (made with it) and the sub-group.
    assert_eq!(sb.groups().len(), 3);
    assert!(sb.groups()[0].community);
    assert!(sb.groups()[1].default_sub_group && sb.groups()[1].announcement);
}
