//! Group settings: each [`Setting`] is its own `w:g2` set request, and [`setting_node`] is the
//! child element it sends (whatsmeow `SetGroup*`, Baileys `groupSettingUpdate` and
//! `groupToggleEphemeral`).

use crate::binary::Node;

/// Disappearing-message timers WhatsApp offers for groups: off, 24 hours, 7 days, 90 days.
pub const EPHEMERAL_TIMERS: [u32; 4] = [0, 86_400, 604_800, 7_776_000];

/// Who may add members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberAddMode {
    /// Only admins (`admin_add`).
    Admin,
    /// Every member (`all_member_add`).
    AllMember,
}

impl MemberAddMode {
    /// The wire value.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Admin => "admin_add",
            Self::AllMember => "all_member_add",
        }
    }

    /// The API's name (`admin`, `all_member`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::AllMember => "all_member",
        }
    }

    /// Reads the API's name or the wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" | "admin_add" => Some(Self::Admin),
            "all_member" | "all_member_add" => Some(Self::AllMember),
            _ => None,
        }
    }
}

/// One setting change; each is its own WhatsApp request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The name.
    Subject(String),
    /// The description (`None` deletes it); `prev` is the current description's id.
    Description {
        /// The new text, or none to delete.
        text: Option<String>,
        /// The id of the description being replaced (from the group's metadata).
        prev: Option<String>,
    },
    /// Only admins send.
    Announcement(bool),
    /// Only admins edit the group's info.
    Locked(bool),
    /// Joining needs an admin's approval.
    JoinApproval(bool),
    /// Who may add members.
    MemberAddMode(MemberAddMode),
    /// Disappearing-messages timer, one of [`EPHEMERAL_TIMERS`].
    Ephemeral(u32),
}

/// The child of a setting's IQ (whatsmeow `SetGroup*`, Baileys `groupSettingUpdate` and
/// `groupToggleEphemeral`).
pub(super) fn setting_node(setting: &Setting, random: u32) -> Node {
    let toggle = |on: bool, yes: &str, no: &str| Node::new(if on { yes } else { no });
    match setting {
        Setting::Subject(s) => Node::new("subject").with_bytes(s.as_bytes().to_vec()),
        Setting::Description { text, prev } => {
            let mut node = Node::new("description").with_attr("id", format!("{random:08X}"));
            if let Some(prev) = prev {
                node = node.with_attr("prev", prev.as_str());
            }
            match text {
                Some(t) => {
                    node.with_children(vec![Node::new("body").with_bytes(t.as_bytes().to_vec())])
                }
                None => node.with_attr("delete", "true"),
            }
        }
        Setting::Announcement(on) => toggle(*on, "announcement", "not_announcement"),
        Setting::Locked(on) => toggle(*on, "locked", "unlocked"),
        Setting::JoinApproval(on) => Node::new("membership_approval_mode").with_children(vec![
            Node::new("group_join").with_attr("state", if *on { "on" } else { "off" }),
        ]),
        Setting::MemberAddMode(mode) => {
            Node::new("member_add_mode").with_bytes(mode.wire().as_bytes().to_vec())
        }
        Setting::Ephemeral(0) => Node::new("not_ephemeral"),
        Setting::Ephemeral(secs) => {
            Node::new("ephemeral").with_attr("expiration", secs.to_string())
        }
    }
}

/// A `<member_add_mode>`'s text as the API names it.
pub fn member_add_mode_name(wire: Option<&str>) -> Option<&'static str> {
    wire.and_then(MemberAddMode::parse)
        .map(MemberAddMode::api_name)
}
