//! This build's version: a leaf every module that reports the version imports (the API's
//! envelope `version`), so none of them reaches up into `lib.rs` for it.
//!
//! It imports nothing. The `User-Agent` of deliveries is the `actors` crate's own (the
//! workspace gives every crate the same version).

/// This build's version, as reported in envelopes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
