//! Group creation (`w:g2` `create`) as the server does it: validate the request, decide each
//! participant's fate, build the result (facts sheet protocol-binary.md §6). Pure functions over
//! nodes; the session looks up phones and communities and stores the record.
//!
//! Decisions where the references are silent, made strict on purpose so that an engine bug
//! shows here rather than on the real service:
//! - a missing or blank subject is 400 `bad-request`; one over [`MAX_SUBJECT_CHARS`] is 406
//!   `not-acceptable` (whatsmeow's documented answer for a long name);
//! - a participant that is not a plain user JID (`digits@s.whatsapp.net` or `digits@lid`, no
//!   device) is 400; duplicates are merged and the creator listed as a participant is ignored;
//! - more than [`MAX_GROUP_SIZE`] members (creator included) is 406, as is a description over
//!   [`MAX_DESCRIPTION_CHARS`];
//! - unknown children of `<create>` are ignored (newer clients send more than we know).

use crate::binary::jid::{SERVER_GROUP, SERVER_LID, SERVER_PN};
use crate::binary::{Content, Jid, Node};

use super::super::model::{AddRequest, FailedParticipant, GroupRecord, Member};
use super::super::stanzas::{self, IqError};

// The server's own limits, kept apart from the client's (`ops`): were one side wrong, sharing
// the constant would make it look right on both. WhatsApp's values: a subject of at most 100
// characters (A/B prop `group_max_subject`), a description of at most 2048
// (`group_description_length`), and at most 1024 members, the creator included.

/// Longest subject accepted, in characters; longer is 406.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Longest description accepted, in characters; longer is 406.
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
/// Most members of a group, the creator included; more is 406.
pub const MAX_GROUP_SIZE: usize = 1024;

/// Disappearing-message timers WhatsApp offers (off, 24 h, 7 days, 90 days).
pub const EPHEMERAL_TIMERS: [u32; 4] = [0, 86_400, 604_800, 7_776_000];

/// How long an `add_request` invite stays valid: three days, as the invite message says.
pub const INVITE_TTL_SECS: u64 = 3 * 86_400;

/// A checked `<create>` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The name.
    pub subject: String,
    /// Requested participants, deduplicated, in request order.
    pub participants: Vec<Requested>,
    /// Description text.
    pub description: Option<String>,
    /// `<announcement/>`.
    pub announcement: bool,
    /// `<locked/>`.
    pub locked: bool,
    /// `<membership_approval_mode><group_join state="on"/>`.
    pub join_approval: bool,
    /// `<member_add_mode>`, default `all_member_add`.
    pub member_add_mode: String,
    /// `<ephemeral expiration>`.
    pub ephemeral: u32,
    /// `<parent>`: create a community.
    pub community: bool,
    /// `<linked_parent jid>`: create inside this community.
    pub linked_parent: Option<Jid>,
}

/// One requested participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested {
    /// The JID as sent (phone-number or LID user JID).
    pub jid: Jid,
    /// `phone_number` sent beside a LID.
    pub phone_number: Option<Jid>,
}

/// What happens to one participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Added as a member.
    Added,
    /// Not added: this per-participant code, and for 403 an invite.
    Failed {
        /// The code.
        code: u16,
        /// The invite (403 only).
        add_request: Option<AddRequest>,
    },
}

/// Reads and checks `<iq xmlns="w:g2" type="set" to="g.us"><create …>`.
pub fn parse_create(iq: &Node) -> Result<CreateRequest, IqError> {
    let to_groups = iq
        .attr("to")
        .and_then(|t| t.to_jid())
        .is_some_and(|j| j.user.is_empty() && j.server == SERVER_GROUP);
    if !to_groups || stanzas::attr(iq, "type").as_deref() != Some("set") {
        return Err(IqError::BAD_REQUEST);
    }
    let create = iq.child("create").ok_or(IqError::BAD_REQUEST)?;
    let subject = stanzas::attr(create, "subject").unwrap_or_default();
    if subject.trim().is_empty() {
        return Err(IqError::BAD_REQUEST);
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    let mut req = CreateRequest {
        subject,
        participants: Vec::new(),
        description: None,
        announcement: false,
        locked: false,
        join_approval: false,
        member_add_mode: "all_member_add".to_owned(),
        ephemeral: 0,
        community: false,
        linked_parent: None,
    };
    // A set, not a scan of the list: a scan is quadratic, 3 ms for 1,023 participants
    // (benches/groups_1024.rs).
    let mut seen = std::collections::HashSet::new();
    for child in create.children() {
        match child.tag.as_str() {
            "participant" => {
                let p = participant(child)?;
                if seen.insert(p.jid.clone()) {
                    req.participants.push(p);
                }
            }
            "description" => {
                let body = child
                    .child("body")
                    .and_then(Node::content_bytes)
                    .ok_or(IqError::BAD_REQUEST)?;
                let text =
                    String::from_utf8(body.into_owned()).map_err(|_| IqError::BAD_REQUEST)?;
                if text.chars().count() > MAX_DESCRIPTION_CHARS {
                    return Err(IqError::NOT_ACCEPTABLE);
                }
                req.description = Some(text);
            }
            "announcement" => req.announcement = true,
            "locked" => req.locked = true,
            "membership_approval_mode" => {
                let state = child
                    .child("group_join")
                    .and_then(|g| stanzas::attr(g, "state"));
                req.join_approval = match state.as_deref() {
                    Some("on") => true,
                    Some("off") => false,
                    _ => return Err(IqError::BAD_REQUEST),
                };
            }
            "member_add_mode" => {
                let mode = text(child).ok_or(IqError::BAD_REQUEST)?;
                if mode != "all_member_add" && mode != "admin_add" {
                    return Err(IqError::BAD_REQUEST);
                }
                req.member_add_mode = mode;
            }
            "ephemeral" => {
                let secs = stanzas::attr(child, "expiration")
                    .and_then(|e| e.parse().ok())
                    .filter(|e| EPHEMERAL_TIMERS.contains(e))
                    .ok_or(IqError::BAD_REQUEST)?;
                req.ephemeral = secs;
            }
            "parent" => req.community = true,
            "linked_parent" => {
                let jid = child
                    .attr("jid")
                    .and_then(|j| j.to_jid())
                    .filter(|j| j.server == SERVER_GROUP && !j.user.is_empty())
                    .ok_or(IqError::BAD_REQUEST)?;
                req.linked_parent = Some(jid);
            }
            _ => {}
        }
    }
    if req.community && req.linked_parent.is_some() {
        return Err(IqError::BAD_REQUEST);
    }
    Ok(req)
}

/// Content as text, whether it came as bytes (as `member_add_mode` does on the wire) or string.
fn text(node: &Node) -> Option<String> {
    node.content_bytes()
        .and_then(|b| String::from_utf8(b.into_owned()).ok())
}

/// A participant must be a plain user: digits on `s.whatsapp.net` or `lid`, no device, no agent.
fn participant(node: &Node) -> Result<Requested, IqError> {
    let jid = node
        .attr("jid")
        .and_then(|j| j.to_jid())
        .filter(is_user_jid)
        .ok_or(IqError::BAD_REQUEST)?;
    let phone_number = match node.attr("phone_number") {
        None => None,
        Some(v) => Some(
            v.to_jid()
                .filter(|j| is_user_jid(j) && j.server == SERVER_PN)
                .ok_or(IqError::BAD_REQUEST)?,
        ),
    };
    if phone_number.is_some() && jid.server != SERVER_LID {
        return Err(IqError::BAD_REQUEST);
    }
    Ok(Requested { jid, phone_number })
}

/// `digits@s.whatsapp.net` or `digits@lid`, without device or agent.
pub fn is_user_jid(j: &Jid) -> bool {
    (j.server == SERVER_PN || j.server == SERVER_LID)
        && j.device.is_none()
        && j.agent == 0
        && !j.user.is_empty()
        && j.user.len() <= 20
        && j.user.bytes().all(|b| b.is_ascii_digit())
}

/// Everything decided outside this module for one creation.
#[derive(Debug)]
pub struct Creation<'a> {
    /// The new group's user part (`120363` and 12 digits).
    pub id: &'a str,
    /// The creator's account JID (`phone@s.whatsapp.net`).
    pub creator: &'a Jid,
    /// The creator's LID account JID, so a LID naming the creator is recognised.
    pub creator_lid: &'a Jid,
    /// The device that asked.
    pub device: &'a Jid,
    /// Unix seconds.
    pub now: u64,
}

/// Applies the request: each participant's fate comes from `fate` (in request order), the
/// creator becomes superadmin. Fails with 406 when the group would be too large.
pub fn create(
    req: &CreateRequest,
    c: &Creation<'_>,
    mut fate: impl FnMut(&Requested) -> Fate,
) -> Result<GroupRecord, IqError> {
    let others: Vec<&Requested> = req
        .participants
        .iter()
        .filter(|p| p.jid != *c.creator && p.jid != *c.creator_lid)
        .collect();
    if others.len() + 1 > MAX_GROUP_SIZE {
        return Err(IqError::NOT_ACCEPTABLE);
    }
    let mut participants = vec![Member {
        jid: c.creator.to_string(),
        role: "superadmin".to_owned(),
    }];
    let mut failed = Vec::new();
    for p in others {
        match fate(p) {
            Fate::Added => participants.push(Member {
                jid: p.jid.to_string(),
                role: "member".to_owned(),
            }),
            Fate::Failed { code, add_request } => failed.push(FailedParticipant {
                jid: p.jid.to_string(),
                code,
                add_request,
            }),
        }
    }
    let jid = Jid::new(c.id, SERVER_GROUP).to_string();
    Ok(GroupRecord {
        description_id: req.description.as_ref().map(|_| description_id(&jid)),
        jid,
        subject: req.subject.clone(),
        creator: c.creator.to_string(),
        created_by: c.device.to_string(),
        creation: c.now,
        description: req.description.clone(),
        announcement: req.announcement,
        locked: req.locked,
        join_approval: req.join_approval,
        member_add_mode: req.member_add_mode.clone(),
        ephemeral: req.ephemeral,
        community: req.community,
        linked_parent: req.linked_parent.as_ref().map(Jid::to_string),
        participants,
        failed,
        invite_code: None,
        revoked_codes: Vec::new(),
        requests: Vec::new(),
        linked_groups: Vec::new(),
        default_sub_group: false,
        picture_id: None,
        picture_sha256: None,
        request_id: None,
    })
}

/// The `<iq type="result">` for a created group, in the real result's shape (§6.4): group
/// attributes, the creator as superadmin, every other requested participant (failed ones with
/// `error` and `add_request`), then the setting children.
pub fn result(iq_id: &str, g: &GroupRecord) -> Node {
    stanzas::iq_result(
        iq_id,
        stanzas::group_server_jid(),
        vec![group_node(g, true)],
    )
}

/// A group's `<group>` element: attributes, participants with their roles (and, right after
/// create, the requested participants that failed), then the setting children. Metadata
/// queries and the participating list answer with the same element.
pub fn group_node(g: &GroupRecord, with_failed: bool) -> Node {
    let jid = |s: &str| s.parse::<Jid>().unwrap_or_else(|_| Jid::new(s, SERVER_PN));
    let id = g.jid.strip_suffix("@g.us").unwrap_or(&g.jid);
    let mut children: Vec<Node> = g
        .participants
        .iter()
        .map(|m| {
            let p = Node::new("participant").with_attr("jid", jid(&m.jid));
            match m.role.as_str() {
                "member" => p,
                role => p.with_attr("type", role),
            }
        })
        .collect();
    for f in g.failed.iter().filter(|_| with_failed) {
        let p = Node::new("participant")
            .with_attr("jid", jid(&f.jid))
            .with_attr("error", f.code.to_string());
        children.push(match &f.add_request {
            None => p,
            Some(r) => p.with_children(vec![
                Node::new("add_request")
                    .with_attr("code", r.code.as_str())
                    .with_attr("expiration", r.expiration.to_string()),
            ]),
        });
    }
    if let Some(text) = &g.description {
        children.push(
            Node::new("description")
                .with_attr(
                    "id",
                    g.description_id
                        .clone()
                        .unwrap_or_else(|| description_id(&g.jid)),
                )
                .with_attr("participant", jid(&g.creator))
                .with_attr("t", g.creation.to_string())
                .with_children(vec![Node::new("body").with_bytes(text.as_bytes().to_vec())]),
        );
    }
    if g.announcement {
        children.push(Node::new("announcement"));
    }
    if g.locked {
        children.push(Node::new("locked"));
    }
    // Only a running timer is listed (clients read the element's presence as "on").
    if g.ephemeral > 0 {
        children.push(Node::new("ephemeral").with_attr("expiration", g.ephemeral.to_string()));
    }
    if g.join_approval {
        children.push(
            Node::new("membership_approval_mode")
                .with_children(vec![Node::new("group_join").with_attr("state", "on")]),
        );
    }
    children.push(bytes_child("member_add_mode", &g.member_add_mode));
    children.push(bytes_child("member_link_mode", "admin_link"));
    children.push(bytes_child(
        "member_share_group_history_mode",
        "all_member_share",
    ));
    if g.community {
        children.push(
            Node::new("parent").with_attr("default_membership_approval_mode", "request_required"),
        );
    }
    if let Some(parent) = &g.linked_parent {
        children.push(Node::new("linked_parent").with_attr("jid", jid(parent)));
    }
    if g.default_sub_group {
        children.push(Node::new("default_sub_group"));
    }
    let creator = jid(&g.creator);
    Node::new("group")
        .with_attr("id", id)
        .with_attr("creator", creator.clone())
        .with_attr("creation", g.creation.to_string())
        .with_attr("subject", g.subject.as_str())
        .with_attr("s_t", g.creation.to_string())
        .with_attr("s_o", creator)
        .with_attr("addressing_mode", "pn")
        .with_attr("size", g.participants.len().to_string())
        .with_children(children)
}

fn bytes_child(tag: &str, value: &str) -> Node {
    Node {
        tag: tag.into(),
        attrs: Default::default(),
        content: Content::Bytes(value.as_bytes().into()),
    }
}

/// A stable 8-hex-digit description id derived from the group (WA Web uses random ones).
fn description_id(jid: &str) -> String {
    let h = jid.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{h:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(create: Node) -> Node {
        Node::new("iq")
            .with_attr("id", "1.2-3")
            .with_attr("xmlns", "w:g2")
            .with_attr("type", "set")
            .with_attr("to", stanzas::group_server_jid())
            .with_children(vec![create])
    }

    fn create(subject: &str, members: &[&str]) -> Node {
        let mut kids: Vec<Node> = members
            .iter()
            .map(|m| Node::new("participant").with_attr("jid", m.parse::<Jid>().unwrap()))
            .collect();
        kids.push(Node::new("ephemeral").with_attr("expiration", "0"));
        Node::new("create")
            .with_attr("subject", subject)
            .with_children(kids)
    }

    #[test]
    fn subject_must_be_present_and_short_enough() {
        let err = |n| parse_create(&iq(n)).err();
        assert_eq!(err(Node::new("create")), Some(IqError::BAD_REQUEST));
        assert_eq!(err(create("  ", &[])), Some(IqError::BAD_REQUEST));
        let long = "é".repeat(MAX_SUBJECT_CHARS + 1);
        assert_eq!(err(create(&long, &[])), Some(IqError::NOT_ACCEPTABLE));
        assert_eq!(err(create(&"é".repeat(MAX_SUBJECT_CHARS), &[])), None);
    }

    #[test]
    fn participants_must_be_plain_user_jids() {
        for bad in [
            "1:2@s.whatsapp.net",
            "120363000000000001@g.us",
            "abc@s.whatsapp.net",
        ] {
            assert_eq!(
                parse_create(&iq(create("g", &[bad]))).err(),
                Some(IqError::BAD_REQUEST),
                "{bad}"
            );
        }
        let ok = parse_create(&iq(create(
            "g",
            &[
                "5511@s.whatsapp.net",
                "5511@s.whatsapp.net",
                "100000000000002@lid",
            ],
        )))
        .unwrap();
        assert_eq!(ok.participants.len(), 2);
    }

    #[test]
    fn envelope_must_address_groups_with_set() {
        let mut n = iq(create("g", &[]));
        n.attrs.retain(|(k, _)| k != "to");
        assert_eq!(parse_create(&n).err(), Some(IqError::BAD_REQUEST));
    }

    #[test]
    fn too_many_members_is_not_acceptable() {
        let members: Vec<String> = (0..MAX_GROUP_SIZE)
            .map(|i| format!("{}@s.whatsapp.net", 5_500_000_000_u64 + i as u64))
            .collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        let req = parse_create(&iq(create("g", &refs))).unwrap();
        let creator = Jid::new("1", SERVER_PN);
        let c = Creation {
            id: "120363000000000001",
            creator: &creator,
            creator_lid: &Jid::new("2", SERVER_LID),
            device: &creator,
            now: 1,
        };
        assert_eq!(create_err(&req, &c), Some(IqError::NOT_ACCEPTABLE));
        // One fewer, with the creator, is exactly the limit.
        let full = CreateRequest {
            participants: req.participants[1..].to_vec(),
            ..req
        };
        assert_eq!(create_err(&full, &c), None);
    }

    fn create_err(req: &CreateRequest, c: &Creation<'_>) -> Option<IqError> {
        super::create(req, c, |_| Fate::Added).err()
    }

    #[test]
    fn result_has_the_real_shape() {
        let mut n = create(
            "Team",
            &[
                "5511000000001@s.whatsapp.net",
                "5511000000002@s.whatsapp.net",
            ],
        );
        if let Content::Nodes(kids) = &mut n.content {
            kids.push(Node::new("locked"));
            kids.push(Node::new("parent"));
        }
        let req = parse_create(&iq(n)).unwrap();
        let creator = Jid::new("5511000000000", SERVER_PN);
        let c = Creation {
            id: "120363000000000042",
            creator: &creator,
            creator_lid: &Jid::new("100000000000001", SERVER_LID),
            device: &Jid::with_device("5511000000000", SERVER_PN, 1),
            now: 1_700_000_000,
        };
        let g = super::create(&req, &c, |p| {
            if p.jid.user.ends_with('2') {
                Fate::Failed {
                    code: 403,
                    add_request: Some(AddRequest {
                        code: "abc".into(),
                        expiration: 9,
                    }),
                }
            } else {
                Fate::Added
            }
        })
        .unwrap();
        let text = result("1.2-3", &g).to_string();
        assert!(text.starts_with(r#"<iq from="@g.us" id="1.2-3" type="result"><group id="120363000000000042" creator="5511000000000@s.whatsapp.net""#), "{text}");
        assert!(
            text.contains(r#"<participant jid="5511000000000@s.whatsapp.net" type="superadmin"/>"#)
        );
        assert!(text.contains(r#"<participant jid="5511000000001@s.whatsapp.net"/>"#));
        assert!(text.contains(r#"<participant jid="5511000000002@s.whatsapp.net" error="403"><add_request code="abc" expiration="9"/></participant>"#));
        assert!(text.contains("<locked/>"));
        assert!(text.contains(r#"<parent default_membership_approval_mode="request_required"/>"#));
        assert!(!text.contains("<announcement/>"));
    }
}
