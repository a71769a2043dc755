//! Subcommands of the `wuts` binary.

pub mod stanza;
