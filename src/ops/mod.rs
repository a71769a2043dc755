//! Every WhatsApp operation, one spec each: it builds its request and parses its reply. Pure
//! functions over [`Node`]: no sending, no ids, no timeouts, no randomness drawn here (what a
//! spec needs random, such as a description id, its caller passes in).
//!
//! The engine wraps a spec's [`Iq`] in an `<iq>` with a fresh id and a deadline; the client runs
//! any spec through one generic call ([`crate::client::Client::run`]). Validation rules live
//! beside the operation they guard (e.g. [`groups::CreateGroup::normalize`]) and report typed
//! [`FieldError`]s, which the HTTP layer lists as they are.

#![deny(clippy::disallowed_methods)]

pub mod companion;
pub mod dirty;
pub mod groups;
pub mod keepalive;
pub mod paircode;
pub mod pairing;
pub mod passive;
pub mod prekeys;
pub mod stanzas;

use std::time::Duration;

use crate::binary::Node;
use crate::types::{Jid, JidProblem, SERVER_PN};

/// `get` or `set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IqKind {
    /// Reads.
    Get,
    /// Changes.
    Set,
}

impl IqKind {
    /// The `type` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            IqKind::Get => "get",
            IqKind::Set => "set",
        }
    }
}

/// A request as a spec builds it: everything of the `<iq>` but its id.
#[derive(Clone, Debug)]
pub struct Iq {
    /// `xmlns` (`w:g2`, `encrypt`, ...).
    pub xmlns: &'static str,
    /// `get` or `set`.
    pub kind: IqKind,
    /// The addressee (`@g.us` for group IQs, `@s.whatsapp.net` otherwise).
    pub to: Jid,
    /// The children.
    pub children: Vec<Node>,
    /// A deadline other than the engine's default.
    pub timeout: Option<Duration>,
    /// The `target` attribute: whom a request to the server is about (a group's picture goes
    /// `to` the server with the group as its `target`, whatsmeow `SetGroupPhoto`).
    pub target: Option<Jid>,
}

impl Iq {
    /// A request to the server itself (`to="@s.whatsapp.net"`).
    pub fn to_server(xmlns: &'static str, kind: IqKind, children: Vec<Node>) -> Self {
        Iq {
            xmlns,
            kind,
            to: Jid::server_only(SERVER_PN),
            children,
            timeout: None,
            target: None,
        }
    }

    /// The stanza, with the id the engine minted.
    pub fn into_node(self, id: &str) -> Node {
        let node = Node::new("iq")
            .with_attr("id", id)
            .with_attr("xmlns", self.xmlns)
            .with_attr("type", self.kind.as_str())
            .with_attr("to", self.to);
        match self.target {
            Some(target) => node.with_attr("target", target),
            None => node,
        }
        .with_children(self.children)
    }
}

/// One WhatsApp operation: how to ask, and how to read the answer.
pub trait IqSpec {
    /// What a successful reply means.
    type Output;

    /// The request.
    fn iq(&self) -> Iq;

    /// Reads a `type="result"` reply (error replies are the engine's, as
    /// [`crate::engine::IqError::Rejected`]).
    fn parse(&self, reply: &Node) -> Result<Self::Output, ParseError>;
}

/// Why a reply could not be read. Names the element and attribute, never the peer's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A required element is missing.
    #[error("reply has no <{0}>")]
    Missing(&'static str),
    /// A required attribute is missing or malformed.
    #[error("<{element}> attribute {attr:?} is missing or malformed")]
    BadAttr {
        /// The element.
        element: &'static str,
        /// The attribute.
        attr: &'static str,
    },
}

/// One broken rule of a request, named by the field it concerns (`name`, `participants[2]`,
/// `options.parent_jid`): what the HTTP layer lists in `details[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where, in the API's field names.
    pub field: String,
    /// What.
    pub problem: Problem,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        FieldError {
            field: field.into(),
            problem,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// What is wrong with a field. `Display` is the sentence clients read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// Missing.
    #[error("is required")]
    Required,
    /// Empty, or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// No visible character (only spaces, joiners, direction marks ...).
    #[error("must contain a visible character")]
    Invisible,
    /// Longer than WhatsApp accepts.
    #[error("must be at most {max} characters (got {got})")]
    TooLong {
        /// The limit.
        max: usize,
        /// The length, in characters.
        got: usize,
    },
    /// Control characters (line breaks are allowed where noted).
    #[error("must not contain control characters")]
    ControlCharacters,
    /// More members than a group holds.
    #[error(
        "a group has at most {max} members including the creator, so at most {} participants \
         (got {got} after removing duplicates)", max - 1
    )]
    TooManyMembers {
        /// The limit, the creator included.
        max: usize,
        /// Participants asked for.
        got: usize,
    },
    /// Not the kind of address expected.
    #[error("{0}")]
    Jid(#[from] JidProblem),
    /// Not one of the values WhatsApp accepts.
    #[error("must be one of: {}", .0.join(", "))]
    NotOneOf(Vec<String>),
    /// Not an invite link or code.
    #[error(
        "must be an invite link (https://chat.whatsapp.com/CODE) or its code: letters, digits, - and _"
    )]
    BadInviteCode,
    /// A community cannot be created inside another community.
    #[error("a community cannot be created inside another community")]
    CommunityInCommunity,
    /// Not a JPEG (or not one that decodes).
    #[error("must be a JPEG image (base64 of the file's bytes)")]
    NotJpeg,
    /// A picture with a side shorter than WhatsApp's apps offer.
    #[error("must be at least {min}x{min} pixels (got {width}x{height})")]
    PictureTooSmall {
        /// The shortest side accepted.
        min: u32,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
    /// A picture larger than accepted, in bytes.
    #[error("must be at most {max} bytes (got {got})")]
    PictureTooLarge {
        /// The limit.
        max: usize,
        /// The size.
        got: usize,
    },
    /// A community cannot be linked to (or unlinked from) itself.
    #[error("must be another group than the community itself")]
    LinkToItself,
}

/// A numeric attribute.
pub(crate) fn attr_number<T: std::str::FromStr>(node: &Node, name: &str) -> Option<T> {
    node.attr(name).and_then(|v| v.as_str().parse().ok())
}
