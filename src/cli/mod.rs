//! Subcommands of the `wuts` binary.

pub mod sim;
pub mod serve;
pub mod stanza;
