//! The `wuts` command.

fn main() {
    println!("wuts {}", env!("CARGO_PKG_VERSION"));
}
