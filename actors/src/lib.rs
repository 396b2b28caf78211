//! State, matching, routing and delivery of Piston Webhooks.
//!
//! Owns: the projection rebuilt from the log ([`registry`]), the URI guard, and (in later
//! modules) the router and webhook actors. Must not: know axum, the Crossbar envelope or
//! tokens on the wire.

pub mod registry;
pub mod uri_guard;

pub use registry::{Account, Registry, Webhook, AUTO_DISABLE_REASON};
