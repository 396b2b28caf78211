//! Retention pruning: [`EventLog::prune`] walks the region up to a cut, deletes the records
//! the caller's predicate calls removable (with their index entries) and has the writer
//! append the checkpoint that keeps the pruned log verifiable (`checkpoint`). The format
//! and the guarantees are in the `codec` module documentation.

use rocksdb::{BottommostLevelCompaction, CompactOptions, DB};
use tracing::info;

use super::checkpoint::{load_checkpoint, Checkpoint, PendingCheckpoint};
use super::codec::key;
use super::fault::PausePoint;
use super::index::{self, IndexFamilies};
use super::{lock, EventLog};
use crate::error::LogError;
use crate::record::Record;

#[cfg(test)]
mod tests;

/// What [`EventLog::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSummary {
    /// Records this prune deleted.
    pub removed: u64,
    /// Records up to the cut still present afterwards (including those kept by earlier
    /// prunes).
    pub kept: u64,
    /// The sequence number of the `LogPruned` checkpoint record it appended.
    pub checkpoint_seq: u64,
}

/// Contiguous runs of removable records, as half-open ranges.
#[derive(Default)]
struct Runs {
    ranges: Vec<(u64, u64)>,
    open: Option<(u64, u64)>,
}

impl Runs {
    fn remove(&mut self, seq: u64) {
        self.open = Some(match self.open {
            Some((from, _)) => (from, seq),
            None => (seq, seq),
        });
    }

    fn keep(&mut self) {
        if let Some((from, to)) = self.open.take() {
            self.ranges.push((from, to.saturating_add(1)));
        }
    }
}

impl EventLog {
    /// Deletes every record with `seq <= cut_seq` for which `removable` returns true, then
    /// appends a [`Event::LogPruned`] checkpoint that keeps the log verifiable, and compacts
    /// the pruned key range so the space is given back.
    ///
    /// The region is walked and checked first (as [`EventLog::verify`] would, up to record
    /// `cut_seq + 1`): a damaged log is not pruned. Records kept by earlier prunes are
    /// offered to `removable` again. The deletions, the checkpoint record and the prune
    /// metadata are one atomic synced write (see the module documentation of `codec`);
    /// appends go on meanwhile. `removable` runs on the calling thread; like `append`,
    /// this must not be called from the commit hook, and it blocks (use
    /// `spawn_blocking` from async code).
    ///
    /// Refused with [`LogError::InvalidPrune`] before anything changes when `cut_seq` is 0,
    /// is not below the last record, or is not above the previous prune's cut.
    ///
    /// With an indexer, the index entries of the deleted records and the unique keys they
    /// hold are deleted in the same batch (recomputed with the indexer, which must still
    /// derive what it derived at append): a deleted record's unique key is free again, so
    /// dedup holds within retention only. The deletions are held in memory until the
    /// commit (a few dozen bytes per removed entry): prune often rather than rarely. An
    /// indexer that panics refuses the prune ([`LogError::Encode`]) before anything changes.
    /// Without an indexer the indexes are left alone and marked incomplete (the next open
    /// with an indexer rebuilds them).
    ///
    /// [`Event::LogPruned`]: crate::Event::LogPruned
    pub fn prune(
        &self,
        cut_seq: u64,
        removable: impl Fn(&Record) -> bool,
    ) -> Result<PruneSummary, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        let _one_prune = lock(&self.inner.prune_lock);
        let last = self.last_seq();
        if cut_seq == 0 || cut_seq >= last {
            return Err(LogError::InvalidPrune {
                cut_seq,
                reason: format!("the cut must be at least 1 and below the last record ({last})"),
            });
        }
        if let Some(previous) = load_checkpoint(&self.inner.db)? {
            if cut_seq <= previous.cut_seq {
                return Err(LogError::InvalidPrune {
                    cut_seq,
                    reason: format!("records up to {} are pruned already", previous.cut_seq),
                });
            }
        }

        let mut digest = blake3::Hasher::new();
        let mut kept = 0u64;
        let mut removed = 0u64;
        let mut runs = Runs::default();
        let mut cut_hash = None;
        let mut deletions = IndexDeletions::new(self)?;
        let mut it = self.iter_from(1);
        while let Some(item) = it.next_hashed() {
            let (record, hash) = item?;
            if record.seq > cut_seq {
                // Record `cut_seq + 1` was checked against the cut: the walk is complete.
                break;
            }
            if record.seq == cut_seq {
                cut_hash = Some(hash);
            }
            if removable(&record) {
                removed += 1;
                runs.remove(record.seq);
                deletions.add(&record)?;
            } else {
                runs.keep();
                kept += 1;
                digest.update(&record.seq.to_be_bytes());
                digest.update(&hash);
            }
        }
        runs.keep();
        // Unreachable on a log that passed the walk, as `cut_seq` is above the previous cut
        // and below the tail; refuse rather than write a checkpoint without its anchor.
        let cut_hash = cut_hash.ok_or_else(|| LogError::Corrupt {
            seq: cut_seq,
            reason: "record is missing".to_owned(),
        })?;

        let checkpoint = Checkpoint {
            cut_seq,
            cut_hash,
            kept,
            kept_digest: *digest.finalize().as_bytes(),
            removed,
            checkpoint_seq: 0,
        };
        let event = checkpoint.event();
        let pending = PendingCheckpoint {
            ranges: runs.ranges,
            index_keys: deletions.index_keys,
            unique_keys: deletions.unique_keys,
            checkpoint,
        };
        self.inner.faults.pause_at(PausePoint::PruneBatch);
        let records = self.commit_blocking(vec![event], Some(pending))?;
        let checkpoint_seq = records
            .first()
            .map(|r| r.seq)
            .ok_or_else(|| LogError::Storage("the checkpoint was not committed".to_owned()))?;

        if removed > 0 {
            let mut compact = CompactOptions::default();
            compact.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
            self.inner
                .db
                .compact_range_opt(None::<&[u8]>, Some(key(cut_seq + 1)), &compact);
        }
        info!(cut_seq, removed, kept, checkpoint_seq, "event log: pruned");
        Ok(PruneSummary {
            removed,
            kept,
            checkpoint_seq,
        })
    }
}

/// The index entries and unique keys of the records a prune removes.
struct IndexDeletions<'a> {
    /// The indexer and the families; `None` when the log has no indexer.
    indexing: Option<(&'a index::Indexer, IndexFamilies<'a>)>,
    db: &'a DB,
    index_keys: Vec<Vec<u8>>,
    unique_keys: Vec<Vec<u8>>,
}

impl<'a> IndexDeletions<'a> {
    fn new(log: &'a EventLog) -> Result<IndexDeletions<'a>, LogError> {
        let db = &*log.inner.db;
        let indexing = match &log.inner.indexer {
            Some(indexer) => Some((indexer, IndexFamilies::of(db)?)),
            None => None,
        };
        Ok(IndexDeletions {
            indexing,
            db,
            index_keys: Vec::new(),
            unique_keys: Vec::new(),
        })
    }

    /// Records what deleting `record` removes from the indexes. Its unique key is removed
    /// only if it names this record (with duplicates from before the key was enforced, the
    /// key may belong to another one). Prunes are serialised and only the writer adds
    /// unique keys (to free ones), so what is read here still holds at the commit.
    fn add(&mut self, record: &Record) -> Result<(), LogError> {
        let Some((indexer, families)) = &self.indexing else {
            return Ok(());
        };
        let keys = index::keys_for(indexer, &record.event)?;
        self.index_keys
            .extend(index::entry_keys(record.seq, &keys.entries));
        if let Some(unique) = keys.unique {
            if families.unique_holder(self.db, &unique)? == Some(record.seq) {
                self.unique_keys.push(unique);
            }
        }
        Ok(())
    }
}
