//! The `wuts` command: the stanza inspector today; the sandbox server and the gateway as they
//! land. Protocol logic lives in the library; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "wuts",
    version,
    about = "WUTS: a self-hosted WhatsApp gateway engine"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode, decode, show and benchmark binary stanzas (one item a line, stdin to stdout).
    #[command(subcommand)]
    Stanza(cli::stanza::StanzaCommand),
    /// Run the sandbox: a simulated WhatsApp server with a simulated phone and fault injection.
    Sim(cli::sim::SimArgs),
    /// Run the HTTP gateway (flags > WUTS_* environment > --config TOML > defaults).
    Serve(Box<cli::serve::ServeArgs>),
    /// Back up or restore a data directory (backup also while the gateway runs).
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Stanza(cmd) => cli::stanza::run(cmd),
        Command::Sim(args) => cli::sim::run(args),
        Command::Serve(args) => cli::serve::run(*args),
        Command::Store(cmd) => cli::store::run(cmd),
    }
}
