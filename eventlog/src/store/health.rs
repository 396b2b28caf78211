//! Whether the log can be written now: [`LogHealth`], published by the writer thread for
//! anyone to read ([`EventLog::health`]).
//!
//! The writer sets it to `Failing` when a synced write fails (disk full, I/O error), and back
//! to `Writable` when a later write succeeds; `Stopped` when its thread ends. While failing,
//! the writer probes the log by itself (an empty synced write every [`PROBE_INTERVAL`] while
//! no append comes), so health comes back without traffic.
//!
//! Recovery is RocksDB's: a write that fails for lack of space puts the database in a
//! background-error state where every write fails at once (so appends fail fast, they never
//! hang), and its `SstFileManager` (one is always created at open) polls the free space
//! every 5 s and resumes the database by itself once there is room again (at least one
//! memtable's worth, 64 MiB). rust-rocksdb has no `DB::resume`, so the log relies on that
//! automatic recovery and needs no restart. An error RocksDB deems fatal or unrecoverable
//! (data loss, a fenced file) is never resumed: health then stays `Failing` with that
//! reason, and only a restart (after repair) helps.
//!
//! Must not: decide anything from health (callers do), or write to the log itself.
//!
//! [`EventLog::health`]: crate::EventLog::health

use std::sync::Mutex;
use std::time::Duration;

use super::lock;
use super::writer::now_ms;

#[cfg(test)]
mod tests;

/// How often the writer probes a failing log while no append comes.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Whether the log can be written; see [`EventLog::health`].
///
/// [`EventLog::health`]: crate::EventLog::health
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogHealth {
    /// The last write (append, prune checkpoint or probe) succeeded, or none was tried yet.
    Writable,
    /// Writes fail: appends are answered with [`LogError::Unwritable`] until a write
    /// succeeds again (the writer keeps probing).
    ///
    /// [`LogError::Unwritable`]: crate::LogError::Unwritable
    Failing {
        /// The latest failure, as the storage reported it.
        reason: String,
        /// When writes started failing, in Unix milliseconds.
        since_ms: u64,
    },
    /// Nothing writes this log: it was closed, its writer thread is gone, or it was opened
    /// read-only. Appends fail with [`LogError::Closed`] (or [`LogError::ReadOnly`]).
    ///
    /// [`LogError::Closed`]: crate::LogError::Closed
    /// [`LogError::ReadOnly`]: crate::LogError::ReadOnly
    Stopped,
}

/// The health the writer publishes; every change of state is its own transition method.
pub(super) struct Health(Mutex<LogHealth>);

impl Health {
    pub(super) fn writable() -> Health {
        Health(Mutex::new(LogHealth::Writable))
    }

    pub(super) fn get(&self) -> LogHealth {
        lock(&self.0).clone()
    }

    pub(super) fn is_failing(&self) -> bool {
        matches!(*lock(&self.0), LogHealth::Failing { .. })
    }

    /// A write failed with `reason`: failing since the first failure in a row. Returns
    /// whether this is that first failure.
    pub(super) fn failed(&self, reason: &str) -> bool {
        let mut health = lock(&self.0);
        match &mut *health {
            LogHealth::Failing { reason: latest, .. } => {
                reason.clone_into(latest);
                false
            }
            other => {
                *other = LogHealth::Failing {
                    reason: reason.to_owned(),
                    since_ms: now_ms(),
                };
                true
            }
        }
    }

    /// A write succeeded: writable. Returns when writes had started failing, if they had.
    pub(super) fn succeeded(&self) -> Option<u64> {
        let mut health = lock(&self.0);
        match std::mem::replace(&mut *health, LogHealth::Writable) {
            LogHealth::Failing { since_ms, .. } => Some(since_ms),
            LogHealth::Writable => None,
            LogHealth::Stopped => {
                // Never happens (the writer stops last); stay stopped if it did.
                *health = LogHealth::Stopped;
                None
            }
        }
    }

    /// The writer thread has ended.
    pub(super) fn stopped(&self) {
        *lock(&self.0) = LogHealth::Stopped;
    }
}
