//! Group operations (`w:g2`), one spec each: create ([`create`]), and administration after it
//! ([`admin`]: metadata, participating list, participants, [`settings`], invite link, leave,
//! join, the [`picture`]), and the groups of a community ([`community`]: list, link, unlink). [`info`] reads the
//! `<group>` element they share; [`notify`] reads the `w:gp2` notifications the server sends
//! after a change into typed [`GroupEvent`]s.
//!
//! Facts: protocol-binary.md §6; the stanza shapes of whatsmeow `group.go` and Baileys
//! `Socket/groups.ts`.

pub mod admin;
pub mod community;
pub mod create;
pub mod info;
pub mod notify;
pub mod picture;
pub mod settings;

pub use admin::*;
pub use community::*;
pub use create::*;
pub use info::*;
pub use notify::{GroupEvent, GroupEventKind, parse_notification};
pub use settings::*;
