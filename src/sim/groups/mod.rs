//! The server side of groups, pure functions over nodes and records: creation
//! ([`create`]), administration after it ([`admin`]: who may do what, and what changes) and
//! the `w:gp2` notifications that report each change ([`notify`]), and communities
//! ([`community`]: their groups, link, unlink). `session` and `shared`
//! look records up, store them and deliver the notifications.

pub mod admin;
pub mod community;
pub mod create;
pub mod notify;
pub mod request;

pub use create::*;
