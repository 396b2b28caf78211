//! The errors of the event log: storage failures, and every way a stored record can fail
//! verification. A record-level error always names the sequence number it concerns, so an
//! operator can find the damage; bad data is reported, never panicked on.

/// Why an event-log operation failed.
///
/// `Clone` because one failed group commit answers every caller of the batch with the same
/// error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The record stored under `seq` cannot be decoded, or its hash does not match its
    /// content.
    #[error("record {seq} is corrupt: {reason}")]
    Corrupt {
        /// The sequence number (key) of the bad record.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The record's `prev_hash` is not the hash of the record before it.
    #[error("hash chain broken at record {seq}")]
    ChainBroken {
        /// The first record whose `prev_hash` does not match.
        seq: u64,
    },
    /// A record is missing or out of place: the next key is not the expected sequence number.
    #[error("record {expected} is missing: the next stored record is {found}")]
    Gap {
        /// The sequence number that should have come next.
        expected: u64,
        /// The sequence number actually found in its place.
        found: u64,
    },
    /// The record was written by a newer build (or is damaged) and has a version this build
    /// cannot read.
    #[error("record {seq} has unknown version {version}")]
    UnknownVersion {
        /// The sequence number of the record.
        seq: u64,
        /// The version it claims.
        version: u16,
    },
    /// An event could not be encoded for storage.
    #[error("cannot encode event: {0}")]
    Encode(String),
    /// RocksDB failed (I/O, lock held by another process, ...).
    #[error("storage error: {0}")]
    Storage(String),
    /// The log cannot be written now (disk full, I/O error): nothing of the append is in the
    /// log. The log is failing until a write succeeds again (see `EventLog::health`): no
    /// restart is needed once the cause is gone.
    #[error("the event log cannot be written: {0}")]
    Unwritable(String),
    /// The log was closed: its writer thread is gone.
    #[error("event log is closed")]
    Closed,
    /// The log was opened read-only and cannot append.
    #[error("event log is open read-only")]
    ReadOnly,
    /// The pruned region does not hold what its checkpoint pinned, or the checkpoint record
    /// and the stored prune metadata disagree (see the `store::codec` module documentation).
    #[error("prune checkpoint at record {checkpoint_seq} does not verify: {reason}")]
    CheckpointMismatch {
        /// The sequence number of the `LogPruned` checkpoint record concerned.
        checkpoint_seq: u64,
        /// What does not match.
        reason: String,
    },
    /// The stored prune metadata cannot be decoded or is inconsistent in itself.
    #[error("prune metadata is unreadable: {0}")]
    Metadata(String),
    /// A prune was refused before anything was changed (cut out of range, not above the
    /// previous cut, ...).
    #[error("cannot prune through record {cut_seq}: {reason}")]
    InvalidPrune {
        /// The requested cut.
        cut_seq: u64,
        /// Why it was refused.
        reason: String,
    },
    /// A snapshot cannot be saved at this sequence number (no such record, or it was
    /// pruned and is not the cut of the prune checkpoint).
    #[error("cannot save a snapshot at record {seq}: {reason}")]
    InvalidSnapshot {
        /// The sequence number the snapshot was for.
        seq: u64,
        /// Why it was refused.
        reason: String,
    },
    /// A derived index (the `index` or `unique` column family) holds something malformed,
    /// or disagrees with the records (see `EventLog::verify_indexes`). Indexes are derived
    /// data: `EventLog::rebuild_indexes` recomputes them from the log.
    #[error("index is damaged: {0}")]
    Index(String),
    /// An index operation that needs the indexer was called on a log opened without one.
    #[error("the event log was opened without an indexer")]
    NoIndexer,
}

impl From<rocksdb::Error> for LogError {
    fn from(e: rocksdb::Error) -> Self {
        LogError::Storage(e.into_string())
    }
}
