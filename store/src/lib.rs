//! Session storage for WUTS devices.
//!
//! This crate is the persistence boundary: narrow traits, typed keys, versioned records and the
//! sled backend. It is filled by the device-engine issue; today it only reserves the name so the
//! workspace layout is fixed.
