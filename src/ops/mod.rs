//! Typed request and response specs, one file per feature: pure build and parse, no sending, no
//! ids, no timeouts (those belong to the engine).

pub mod groups;
