//! Subcommands of the `wuts` binary.

pub mod serve;
pub mod settings;
pub mod sim;
pub mod stanza;
pub mod store;

#[cfg(test)]
mod deploy_tests;
