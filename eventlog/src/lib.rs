//! The append-only, hash-chained event log of Piston Webhooks, on RocksDB.
//!
//! Owns: record encoding (rmp-serde), the hash chain, durable group-committed appends and
//! replay. Must not: interpret events (that is `actors`), or know of HTTP.

pub mod error;
pub mod ids;
pub mod record;
pub mod store;

pub use error::LogError;
pub use ids::{AccountId, EventId, IdError, WebhookId};
pub use record::{Attempt, AttemptResult, Event, Record, RECORD_VERSION};
pub use store::{CommitHook, EventLog, LogIter, VerifySummary};
