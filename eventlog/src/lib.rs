//! The append-only, hash-chained event log of Piston Webhooks, on RocksDB.
//!
//! Owns: record encoding (rmp-serde), the hash chain, durable group-committed appends,
//! replay, and disk-based lookups derived from events by a caller-supplied [`Indexer`]
//! (secondary indexes, unique keys). Must not: interpret events (that is `actors`; what an
//! index holds is the indexer's business), or know of HTTP.

pub mod error;
pub mod ids;
pub mod record;
pub mod store;

pub use error::LogError;
pub use ids::{AccountId, EventId, IdError, WebhookId};
pub use record::{token_expiry_ms, Attempt, AttemptResult, Event, Record, Secret, RECORD_VERSION};
pub use store::{
    decode_stored_record, encode_stored_record, now_ms, CommitHook, EventLog, IndexId, IndexKeys,
    Indexer, LogHealth, LogIter, OpenOptions, PruneSummary, Snapshot, VerifySummary, WriteObserver,
    WriteStats, MAX_ENTRY_KEY_LEN,
};
