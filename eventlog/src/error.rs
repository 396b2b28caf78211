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
    /// The log was closed: its writer thread is gone.
    #[error("event log is closed")]
    Closed,
    /// The log was opened read-only and cannot append.
    #[error("event log is open read-only")]
    ReadOnly,
}

impl From<rocksdb::Error> for LogError {
    fn from(e: rocksdb::Error) -> Self {
        LogError::Storage(e.into_string())
    }
}
