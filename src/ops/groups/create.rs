//! Group creation (`w:g2` `create`): the typed request, its validation and its stanza; the
//! result is read by [`super::info::parse_create_result`].
//!
//! Facts: protocol-binary.md §6.

use std::collections::HashSet;

use super::info::{GroupInfo, parse_create_result};
use crate::binary::{Node, jid};
use crate::ops::{FieldError, Iq, IqKind, IqSpec, ParseError, Problem};
use crate::types::{GroupJid, Jid, UserJid};

/// Longest subject WhatsApp accepts, in characters (A/B prop `group_max_subject`, default 100;
/// whatsapp-rust `GROUP_SUBJECT_MAX_LENGTH`). The server answers 406 beyond it.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Longest description, in characters (A/B prop `group_description_length`).
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
/// Most members a group may have, the creator included.
pub const MAX_GROUP_SIZE: usize = 1024;

/// What to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateGroup {
    /// The group's name; 1 to [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// Members to add besides the creator: user JIDs (`…@s.whatsapp.net` or `…@lid`), no devices.
    pub participants: Vec<Jid>,
    /// Optional description.
    pub description: Option<String>,
    /// Only admins may send messages.
    pub announcement: bool,
    /// Only admins may edit the group's info.
    pub locked: bool,
    /// Joining needs an admin's approval.
    pub join_approval: bool,
    /// Create a community (a parent group) rather than a plain group.
    pub community: bool,
    /// Create the group inside this community.
    pub parent: Option<Jid>,
}

impl CreateGroup {
    /// Normalises what people type (surrounding whitespace, duplicate participants) and checks
    /// what WhatsApp would refuse, so a bad request never reaches it. Lists every violation.
    pub fn normalize(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        match subject(&self.subject) {
            Ok(s) => self.subject = s,
            Err(p) => errors.push(FieldError::new("name", p)),
        }
        if let Some(d) = self.description.take() {
            match description(&d) {
                Ok(d) => self.description = d,
                Err(p) => errors.push(FieldError::new("description", p)),
            }
        }
        let mut seen = HashSet::new();
        self.participants.retain(|p| seen.insert(p.clone()));
        for (i, p) in self.participants.iter().enumerate() {
            if let Err(e) = UserJid::from_jid(p.clone()) {
                errors.push(FieldError::new(format!("participants[{i}]"), e.into()));
            }
        }
        // The creator is a member too.
        if self.participants.len() + 1 > MAX_GROUP_SIZE {
            errors.push(FieldError::new(
                "participants",
                Problem::TooManyMembers {
                    max: MAX_GROUP_SIZE,
                    got: self.participants.len(),
                },
            ));
        }
        if let Some(parent) = &self.parent {
            if let Err(e) = GroupJid::from_jid(parent.clone()) {
                errors.push(FieldError::new("options.parent_jid", e.into()));
            } else if self.community {
                errors.push(FieldError::new(
                    "options.parent_jid",
                    Problem::CommunityInCommunity,
                ));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// The request spec; `description_id` is the random id a description carries (8 hex
    /// digits on the wire), drawn by the caller.
    pub fn spec(&self, description_id: u32) -> Create<'_> {
        Create {
            group: self,
            description_id,
        }
    }
}

/// A group name: trimmed; 1 to [`MAX_SUBJECT_CHARS`] characters, at least one of them visible;
/// no control characters.
pub fn subject(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    check_text(text, MAX_SUBJECT_CHARS, false)?;
    if !text.chars().any(is_visible) {
        return Err(Problem::Invisible);
    }
    Ok(text.to_owned())
}

/// A description: trimmed, empty means none; at most [`MAX_DESCRIPTION_CHARS`] characters;
/// line breaks allowed, other control characters not.
pub fn description(text: &str) -> Result<Option<String>, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    check_text(text, MAX_DESCRIPTION_CHARS, true)?;
    Ok(Some(text.to_owned()))
}

/// Length in characters (WhatsApp counts characters, not bytes) and control characters.
fn check_text(text: &str, max: usize, line_breaks: bool) -> Result<(), Problem> {
    let got = text.chars().count();
    if got > max {
        return Err(Problem::TooLong { max, got });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(line_breaks && (c == '\n' || c == '\r')))
    {
        return Err(Problem::ControlCharacters);
    }
    Ok(())
}

/// Whether a character shows: not whitespace and not one of the zero-width or direction
/// formatting characters that render as nothing (a name of only U+200B reads as blank).
fn is_visible(c: char) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}'))
}

/// A phone-number or LID user, without device or agent.
pub fn is_user_jid(j: &Jid) -> bool {
    UserJid::from_jid(j.clone()).is_ok()
}

/// The group-create IQ (`xmlns="w:g2" type="set" to="@g.us"`).
#[derive(Clone, Copy, Debug)]
pub struct Create<'a> {
    group: &'a CreateGroup,
    description_id: u32,
}

impl IqSpec for Create<'_> {
    type Output = GroupInfo;

    fn iq(&self) -> Iq {
        let id = format!("{:08X}", self.description_id);
        Iq {
            xmlns: "w:g2",
            kind: IqKind::Set,
            to: Jid::server_only(jid::SERVER_GROUP),
            children: vec![create_request(self.group, &id)],
            timeout: None,
            target: None,
        }
    }

    fn parse(&self, reply: &Node) -> Result<GroupInfo, ParseError> {
        parse_create_result(reply)
    }
}

/// The `<create>` element of a group-create IQ (whatsmeow's current child set and order,
/// protocol-binary.md §6.2). `description_id` is the random 8-hex-digit id a description
/// carries. The IQ envelope (`xmlns="w:g2" type="set" to="@g.us"`, id) is the engine's.
pub fn create_request(req: &CreateGroup, description_id: &str) -> Node {
    let mut children: Vec<Node> = req
        .participants
        .iter()
        .map(|p| Node::new("participant").with_attr("jid", p.clone()))
        .collect();
    children.push(Node::new("member_add_mode").with_text("all_member_add"));
    if req.community {
        children.push(
            Node::new("parent").with_attr("default_membership_approval_mode", "request_required"),
        );
    }
    if let Some(parent) = &req.parent {
        children.push(Node::new("linked_parent").with_attr("jid", parent.clone()));
    }
    if req.locked {
        children.push(Node::new("locked"));
    }
    if req.announcement {
        children.push(Node::new("announcement"));
    }
    children.push(Node::new("ephemeral").with_attr("expiration", "0"));
    let state = if req.join_approval { "on" } else { "off" };
    children.push(
        Node::new("membership_approval_mode")
            .with_children(vec![Node::new("group_join").with_attr("state", state)]),
    );
    if let Some(d) = &req.description {
        children.push(
            Node::new("description")
                .with_attr("id", description_id)
                .with_children(vec![Node::new("body").with_text(d.clone())]),
        );
    }
    Node::new("create")
        .with_attr("subject", req.subject.clone())
        .with_children(children)
}

#[cfg(test)]
mod tests {
    use super::super::info::{AddRequest, ParticipantOutcome};
    use super::*;
    use crate::binary::{AttrValue, Content, decode_owned, encode_to_vec, json};

    fn hex(s: &str) -> Vec<u8> {
        json::decode_hex(&s.replace([' ', '\n'], "")).expect("hex")
    }

    #[test]
    fn parses_the_fact_sheet_result_with_a_403_participant() {
        let frame = hex(
            "00f8081906fa001c08ff04123b45a10414f801f80aecaa08ff09120363000000000001eca6faff87551199
             9990000f033cff051700000000ec7ffc084d792047726f7570f802f805050cfaff875511999990000f03
             04ec94f806050cfaff875511999990002f03a8ff82403ff801f805fc0b6164645f726571756573747
             0fc1041624364456647683132333435363738bbff051700604800",
        );
        let info = parse_create_result(&decode_owned(&frame).expect("decodes")).expect("parses");
        assert_eq!(info.jid.to_string(), "120363000000000001@g.us");
        assert_eq!(info.subject, "My Group");
        assert_eq!(info.created_at, 1_700_000_000);
        assert_eq!(info.participants.len(), 2);
        assert!(info.participants[0].is_super_admin && info.participants[0].is_admin);
        assert_eq!(
            info.participants[1].outcome,
            ParticipantOutcome::Failed {
                code: 403,
                invite: Some(AddRequest {
                    code: "AbCdEfGh12345678".into(),
                    expiration: 1_700_604_800
                })
            }
        );
    }

    #[test]
    fn parses_the_lid_result_with_bytes_content() {
        let frame = hex(
            "00f8081906fa001c08ff04123b45a10414f801f812ecaa08ff09120363000000000001eca6faff881000
             00000000001f763cff051700000000ec7ffc084d792047726f7570eceeff051700000000ed16faff8810
             0000000000001f76edc645fc0f61646472657373696e675f6d6f646576f804f807050cfaff8810000000
             0000001f7604ec94fc0c70686f6e655f6e756d626572faff875511999990000f03f805050cfaff88100000
             000000002f76fc0c70686f6e655f6e756d626572faff875511999990001f03f802ec3cfc0e616c6c5f6d65
             6d6265725f616464f803edc8bb2d",
        );
        let info = parse_create_result(&decode_owned(&frame).expect("decodes")).expect("parses");
        assert_eq!(info.addressing_mode.as_deref(), Some("lid"));
        assert_eq!(
            info.participants[0]
                .phone_number
                .as_ref()
                .map(ToString::to_string),
            Some("5511999990000@s.whatsapp.net".to_owned())
        );
        assert!(!info.join_approval);
    }

    #[test]
    fn request_carries_every_option() {
        let req = CreateGroup {
            subject: "Launch".into(),
            participants: vec![Jid::new("5511999990001", "s.whatsapp.net")],
            description: Some("hello".into()),
            announcement: true,
            locked: true,
            join_approval: true,
            community: true,
            parent: None,
        };
        let req = req.normalize().expect("valid");
        let iq = req.spec(0x0A1B_2C3D).iq();
        assert_eq!(
            (iq.xmlns, iq.kind, iq.to.to_string().as_str()),
            ("w:g2", IqKind::Set, "@g.us")
        );
        let create = &iq.children[0];
        assert_eq!(
            create
                .child("description")
                .and_then(|d| d.attr("id"))
                .map(|v| v.as_str().into_owned()),
            Some("0A1B2C3D".to_owned())
        );
        let tags: Vec<&str> = create.children().iter().map(|c| c.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "participant",
                "member_add_mode",
                "parent",
                "locked",
                "announcement",
                "ephemeral",
                "membership_approval_mode",
                "description"
            ]
        );
        // It encodes, and the participant went out as a JID form.
        let frame = encode_to_vec(create).expect("encodes");
        let back = decode_owned(&frame).expect("decodes");
        assert!(matches!(
            back.children()[0].attr("jid"),
            Some(AttrValue::Jid(_))
        ));
        assert!(matches!(
            back.child("description").and_then(|d| d.child("body")).map(|b| &b.content),
            Some(Content::Bytes(b)) if b == b"hello"
        ));
    }

    #[test]
    fn validation_refuses_what_whatsapp_would() {
        let ok = CreateGroup {
            subject: " x ".into(),
            ..CreateGroup::default()
        };
        assert_eq!(
            ok.clone().normalize().map(|g| g.subject),
            Ok("x".to_owned())
        );
        let problems = |g: CreateGroup| -> Vec<(String, Problem)> {
            g.normalize()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.field, e.problem))
                .collect()
        };
        let long = CreateGroup {
            subject: "é".repeat(101),
            ..ok.clone()
        };
        assert_eq!(
            problems(long),
            [("name".to_owned(), Problem::TooLong { max: 100, got: 101 })]
        );
        for invisible in ["\u{200B}", "\u{202E}\u{200B} ", "\u{2060}\u{FEFF}"] {
            let g = CreateGroup {
                subject: invisible.into(),
                ..ok.clone()
            };
            assert_eq!(problems(g), [("name".to_owned(), Problem::Invisible)]);
        }
        let device = CreateGroup {
            participants: vec![Jid::with_device("1", "s.whatsapp.net", 2)],
            ..ok.clone()
        };
        assert_eq!(problems(device)[0].0, "participants[0]");
        let many = CreateGroup {
            participants: (0..1024)
                .map(|i| Jid::new((5_511_900_000_000u64 + i).to_string(), "s.whatsapp.net"))
                .collect(),
            ..ok.clone()
        };
        assert_eq!(
            problems(many),
            [(
                "participants".to_owned(),
                Problem::TooManyMembers {
                    max: 1024,
                    got: 1024
                }
            )]
        );
        let dupes = CreateGroup {
            participants: vec![Jid::new("5511999990001", "s.whatsapp.net"); 3],
            ..ok.clone()
        };
        assert_eq!(dupes.normalize().map(|g| g.participants.len()), Ok(1));
        let nested = CreateGroup {
            community: true,
            parent: Some(Jid::new("120363000000000001", "g.us")),
            ..ok
        };
        assert_eq!(
            problems(nested),
            [(
                "options.parent_jid".to_owned(),
                Problem::CommunityInCommunity
            )]
        );
    }
}
