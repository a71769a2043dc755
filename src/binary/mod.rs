//! WABinary stanza codec (work in progress).

#[allow(dead_code)]
mod tokens {
    include!(concat!(env!("OUT_DIR"), "/tokens.rs"));
}
#[allow(dead_code)]
mod token_hash;
