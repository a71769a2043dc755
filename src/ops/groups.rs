//! Group creation (`w:g2` `create`): the typed request and the typed result.
//!
//! Facts: protocol-binary.md §6. The stanza builder and the result parser live here too (pure
//! functions over [`Node`](crate::binary::Node)).

use crate::binary::Jid;

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

/// A created group, as the server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// `…@g.us`.
    pub jid: Jid,
    /// The name.
    pub subject: String,
    /// The creator.
    pub owner: Option<Jid>,
    /// Creation time, unix seconds.
    pub created_at: u64,
    /// Description text, if the server sent one.
    pub description: Option<String>,
    /// Only admins may send.
    pub announcement: bool,
    /// Only admins may edit info.
    pub locked: bool,
    /// Joining needs approval.
    pub join_approval: bool,
    /// This group is a community.
    pub is_community: bool,
    /// The community this group belongs to.
    pub parent: Option<Jid>,
    /// `pn` or `lid`.
    pub addressing_mode: Option<String>,
    /// Every participant the server listed, with the outcome for each.
    pub participants: Vec<GroupParticipant>,
}

/// One participant of a created group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupParticipant {
    /// The participant's JID.
    pub jid: Jid,
    /// The phone-number JID when `jid` is a LID.
    pub phone_number: Option<Jid>,
    /// Admin (superadmins are admins too).
    pub is_admin: bool,
    /// The creator.
    pub is_super_admin: bool,
    /// Whether WhatsApp added this participant.
    pub outcome: ParticipantOutcome,
}

/// Whether a requested participant ended up in the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParticipantOutcome {
    /// In the group.
    Added,
    /// Not added: WhatsApp's per-participant error code (403 privacy, 404 not on WhatsApp, 408
    /// left recently, 409 already a member, 419 full, ...), and for 403 the invite that can be
    /// sent instead.
    Failed {
        /// The code from the `error` attribute.
        code: u16,
        /// The `add_request` invite, when WhatsApp offers one.
        invite: Option<AddRequest>,
    },
}

/// An invite WhatsApp offers for a participant whose privacy settings forbid a direct add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddRequest {
    /// The invite code.
    pub code: String,
    /// Expiry, unix seconds.
    pub expiration: u64,
}
