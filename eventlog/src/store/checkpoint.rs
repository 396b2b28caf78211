//! The prune checkpoint: the metadata stored under `prune_checkpoint` in the `meta` column
//! family, the `LogPruned` event that chains it into the log, and what a prune hands the
//! writer to commit with that event. The format is in the `codec` module documentation.
//!
//! Read by the iterator (a walk is checked against the checkpoint), by prune and by
//! snapshots; written only through the writer, in a prune's batch. Must not: walk the log
//! or decide what is removed (that is `prune`).

use rocksdb::{WriteBatch, DB};
use serde::{Deserialize, Serialize};

use super::codec::{bin, cf, key, INDEX_CF, META_CF, UNIQUE_CF};
use crate::error::LogError;
use crate::record::Event;

/// The key of the latest checkpoint in the `meta` column family.
const CHECKPOINT_KEY: &[u8] = b"prune_checkpoint";

/// The version of the stored checkpoint encoding.
const CHECKPOINT_VERSION: u16 = 1;

/// The latest prune checkpoint, as stored in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// The last seq of the pruned region.
    pub(super) cut_seq: u64,
    /// The hash of record `cut_seq` before the prune.
    pub(super) cut_hash: [u8; 32],
    /// Present records with `seq <= cut_seq`.
    pub(super) kept: u64,
    /// BLAKE3 over `seq_be8 || hash32` of those records, in seq order.
    pub(super) kept_digest: [u8; 32],
    /// Records deleted by the prune that wrote this checkpoint.
    pub(super) removed: u64,
    /// The seq of the `LogPruned` record of this checkpoint.
    pub(super) checkpoint_seq: u64,
}

impl Checkpoint {
    /// A [`LogError::CheckpointMismatch`] about this checkpoint.
    pub(super) fn mismatch(&self, reason: String) -> LogError {
        LogError::CheckpointMismatch {
            checkpoint_seq: self.checkpoint_seq,
            reason,
        }
    }

    /// The `LogPruned` event recording this checkpoint.
    pub(super) fn event(&self) -> Event {
        Event::LogPruned {
            cut_seq: self.cut_seq,
            cut_hash: hex::encode(self.cut_hash),
            kept: self.kept,
            kept_digest: hex::encode(self.kept_digest),
            removed: self.removed,
        }
    }

    /// Whether `event` is the `LogPruned` event of this checkpoint.
    pub(super) fn matches(&self, event: &Event) -> bool {
        *event == self.event()
    }

    fn encode(&self) -> Result<Vec<u8>, LogError> {
        let stored = StoredCheckpoint {
            version: CHECKPOINT_VERSION,
            cut_seq: self.cut_seq,
            cut_hash: self.cut_hash.to_vec(),
            kept: self.kept,
            kept_digest: self.kept_digest.to_vec(),
            removed: self.removed,
            checkpoint_seq: self.checkpoint_seq,
        };
        rmp_serde::to_vec_named(&stored).map_err(|e| LogError::Encode(e.to_string()))
    }

    fn decode(value: &[u8]) -> Result<Checkpoint, LogError> {
        let stored: StoredCheckpoint = rmp_serde::from_slice(value)
            .map_err(|e| LogError::Metadata(format!("undecodable checkpoint: {e}")))?;
        if stored.version != CHECKPOINT_VERSION {
            return Err(LogError::Metadata(format!(
                "unknown checkpoint version {}",
                stored.version
            )));
        }
        let hash = |field: &str, bytes: Vec<u8>| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                LogError::Metadata(format!("{field} is {} bytes, not 32", bytes.len()))
            })
        };
        let checkpoint = Checkpoint {
            cut_seq: stored.cut_seq,
            cut_hash: hash("cut_hash", stored.cut_hash)?,
            kept: stored.kept,
            kept_digest: hash("kept_digest", stored.kept_digest)?,
            removed: stored.removed,
            checkpoint_seq: stored.checkpoint_seq,
        };
        if checkpoint.cut_seq == 0
            || checkpoint.kept > checkpoint.cut_seq
            || checkpoint.checkpoint_seq <= checkpoint.cut_seq
        {
            return Err(LogError::Metadata(format!(
                "inconsistent checkpoint: cut {}, kept {}, checkpoint record {}",
                checkpoint.cut_seq, checkpoint.kept, checkpoint.checkpoint_seq
            )));
        }
        Ok(checkpoint)
    }
}

/// The stored value of the checkpoint; see the module documentation of `codec`.
#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    version: u16,
    cut_seq: u64,
    #[serde(with = "bin")]
    cut_hash: Vec<u8>,
    kept: u64,
    #[serde(with = "bin")]
    kept_digest: Vec<u8>,
    removed: u64,
    checkpoint_seq: u64,
}

/// The latest checkpoint, if the log was ever pruned (or has no `meta` column family).
pub(super) fn load_checkpoint(db: &DB) -> Result<Option<Checkpoint>, LogError> {
    let Some(cf) = db.cf_handle(META_CF) else {
        return Ok(None);
    };
    match db.get_pinned_cf(cf, CHECKPOINT_KEY)? {
        Some(value) => Checkpoint::decode(&value).map(Some),
        None => Ok(None),
    }
}

/// A prune on its way to the writer: what its batch must delete, and its checkpoint
/// without the record's seq (the writer assigns it).
pub(super) struct PendingCheckpoint {
    /// Half-open key ranges `[from, to)` of seqs to delete; all `<= cut_seq`.
    pub(super) ranges: Vec<(u64, u64)>,
    /// The index entries (`index` column family keys) of the deleted records.
    pub(super) index_keys: Vec<Vec<u8>>,
    /// The unique keys held by the deleted records.
    pub(super) unique_keys: Vec<Vec<u8>>,
    /// The checkpoint; its `checkpoint_seq` is set when the writer assigns it.
    pub(super) checkpoint: Checkpoint,
}

impl PendingCheckpoint {
    /// Adds the deletions and the metadata (naming `checkpoint_seq`) to `batch`; on error
    /// `batch` is unchanged.
    pub(super) fn write_into(
        &self,
        db: &DB,
        batch: &mut WriteBatch,
        checkpoint_seq: u64,
    ) -> Result<(), LogError> {
        let meta = cf(db, META_CF)?;
        let value = Checkpoint {
            checkpoint_seq,
            ..self.checkpoint
        }
        .encode()?;
        let index_cf = match self.index_keys.is_empty() {
            true => None,
            false => Some(cf(db, INDEX_CF)?),
        };
        let unique_cf = match self.unique_keys.is_empty() {
            true => None,
            false => Some(cf(db, UNIQUE_CF)?),
        };
        for &(from, to) in &self.ranges {
            batch.delete_range(key(from), key(to));
        }
        if let Some(index_cf) = index_cf {
            for k in &self.index_keys {
                batch.delete_cf(index_cf, k);
            }
        }
        if let Some(unique_cf) = unique_cf {
            for k in &self.unique_keys {
                batch.delete_cf(unique_cf, k);
            }
        }
        batch.put_cf(meta, CHECKPOINT_KEY, value);
        Ok(())
    }
}
