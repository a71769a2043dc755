//! Subcommands of the `wuts` binary.

pub mod sim;
pub mod stanza;
