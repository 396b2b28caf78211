//! Snapshots: opaque state bytes kept beside the log, so that a restart replays only the
//! records after them. The format is in the `codec` module documentation.

use rocksdb::{WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::checkpoint::load_checkpoint;
use super::codec::{bin, key, open_envelope, parse_key, SNAPSHOTS_CF};
use super::fault::PausePoint;
use super::{lock, EventLog};
use crate::error::LogError;

#[cfg(test)]
mod tests;

/// The version of the stored snapshot encoding.
const SNAPSHOT_VERSION: u16 = 1;

/// How many snapshots are kept: the newest and one fallback.
const SNAPSHOTS_KEPT: usize = 2;

/// A saved state: the caller's state after applying records `1..=seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last record the state includes; replay from `seq + 1`.
    pub seq: u64,
    /// The state, as the caller serialised it.
    pub bytes: Vec<u8>,
}

/// The stored value of a snapshot; see the module documentation of `codec`.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    version: u16,
    seq: u64,
    #[serde(with = "bin")]
    record_hash: Vec<u8>,
    #[serde(with = "bin")]
    checksum: Vec<u8>,
    #[serde(with = "bin")]
    bytes: Vec<u8>,
}

/// `BLAKE3(seq_be8 || record_hash32 || bytes)`.
fn checksum(seq: u64, record_hash: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&seq.to_be_bytes());
    h.update(record_hash);
    h.update(bytes);
    *h.finalize().as_bytes()
}

/// What record `seq`'s hash is now, as far as the log can tell.
enum Anchor {
    /// The record (or, if pruned, the checkpoint's `cut_hash` for it) has this hash.
    Hash([u8; 32]),
    /// It cannot be checked: why.
    Unknown(String),
}

impl EventLog {
    /// Keeps `state` as the snapshot of the state after applying records `1..=seq`.
    ///
    /// Stored with the hash record `seq` has now (so a snapshot of another log, or of a log
    /// since rolled back, is recognised) and a checksum, in a synced write. Only this
    /// snapshot and the previous one are kept. Safe while appends run. Refused with
    /// [`LogError::InvalidSnapshot`] when record `seq` does not exist (0, beyond the tail,
    /// or pruned and not the checkpoint's cut), and with [`LogError::ReadOnly`] on a
    /// read-only log.
    pub fn save_snapshot(&self, seq: u64, state: &[u8]) -> Result<(), LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        let db = &self.inner.db;
        let cf = db
            .cf_handle(SNAPSHOTS_CF)
            .ok_or_else(|| LogError::Storage(format!("no `{SNAPSHOTS_CF}` column family")))?;
        if seq == 0 || seq > self.last_seq() {
            return Err(LogError::InvalidSnapshot {
                seq,
                reason: format!("the log holds records 1..={}", self.last_seq()),
            });
        }
        let record_hash = match anchor(db, seq)? {
            Anchor::Hash(h) => h,
            Anchor::Unknown(reason) => return Err(LogError::InvalidSnapshot { seq, reason }),
        };
        let stored = StoredSnapshot {
            version: SNAPSHOT_VERSION,
            seq,
            record_hash: record_hash.to_vec(),
            checksum: checksum(seq, &record_hash, state).to_vec(),
            bytes: state.to_vec(),
        };
        let value =
            rmp_serde::to_vec_named(&stored).map_err(|e| LogError::Encode(e.to_string()))?;

        let _one_writer = lock(&self.inner.snapshot_lock);
        let mut existing = Vec::new();
        let mut it = db.raw_iterator_cf(cf);
        it.seek_to_first();
        while let Some(k) = it.key() {
            existing.push(k.to_vec());
            it.next();
        }
        it.status()?;
        drop(it);
        // Keys are generations; anything else in the family is not ours and goes too.
        let newest = existing
            .iter()
            .filter_map(|k| parse_key(k))
            .max()
            .unwrap_or(0);
        let generation = newest.checked_add(1).ok_or_else(|| {
            LogError::Storage("snapshot generation numbers are exhausted".to_owned())
        })?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, key(generation), value);
        let keep_from = generation.saturating_sub(SNAPSHOTS_KEPT as u64 - 1);
        for k in existing {
            if parse_key(&k).is_none_or(|g| g < keep_from) {
                batch.delete_cf(cf, k);
            }
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.inner.faults.pause_at(PausePoint::SnapshotWrite);
        db.write_opt(batch, &sync)?;
        debug!(
            seq,
            generation,
            bytes = state.len(),
            "event log: snapshot saved"
        );
        Ok(())
    }

    /// The newest snapshot that still fits the log, or `None` (replay everything then).
    ///
    /// A snapshot fits when its checksum verifies and record `seq` still has the hash it had
    /// when saved (or, if pruned, `seq` is the cut of the prune checkpoint and `cut_hash` is
    /// that hash). A snapshot that does not fit is skipped with a warning and the previous
    /// one is tried. Works on read-only logs (a log without snapshots gives `None`).
    pub fn load_snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        let db = &self.inner.db;
        let Some(cf) = db.cf_handle(SNAPSHOTS_CF) else {
            return Ok(None);
        };
        let mut it = db.raw_iterator_cf(cf);
        it.seek_to_last();
        while let Some((k, v)) = it.item() {
            let generation = parse_key(k).unwrap_or(0);
            match check_snapshot(db, v)? {
                Ok(snapshot) => {
                    debug!(seq = snapshot.seq, generation, "event log: snapshot loaded");
                    return Ok(Some(snapshot));
                }
                Err(reason) => {
                    warn!(generation, %reason, "event log: snapshot skipped");
                }
            }
            it.prev();
        }
        it.status()?;
        Ok(None)
    }
}

/// The hash record `seq` has now; see [`Anchor`].
fn anchor(db: &DB, seq: u64) -> Result<Anchor, LogError> {
    if let Some(value) = db.get_pinned(key(seq))? {
        return Ok(match open_envelope(seq, &value) {
            Ok(checked) => Anchor::Hash(checked.hash),
            Err(e) => Anchor::Unknown(e.to_string()),
        });
    }
    Ok(match load_checkpoint(db)? {
        Some(c) if c.cut_seq == seq => Anchor::Hash(c.cut_hash),
        Some(c) if seq < c.cut_seq => Anchor::Unknown(format!(
            "record {seq} was pruned and is not the cut ({})",
            c.cut_seq
        )),
        _ => Anchor::Unknown(format!("record {seq} does not exist")),
    })
}

/// Decodes and checks one stored snapshot: the snapshot, or why it does not fit (storage
/// failures are the outer error).
fn check_snapshot(db: &DB, value: &[u8]) -> Result<Result<Snapshot, String>, LogError> {
    let stored: StoredSnapshot = match rmp_serde::from_slice(value) {
        Ok(stored) => stored,
        Err(e) => return Ok(Err(format!("undecodable snapshot: {e}"))),
    };
    if stored.version != SNAPSHOT_VERSION {
        return Ok(Err(format!("unknown snapshot version {}", stored.version)));
    }
    if checksum(stored.seq, &stored.record_hash, &stored.bytes).as_slice() != stored.checksum {
        return Ok(Err(format!(
            "snapshot at record {} fails its checksum",
            stored.seq
        )));
    }
    match anchor(db, stored.seq)? {
        Anchor::Hash(h) if h.as_slice() == stored.record_hash => Ok(Ok(Snapshot {
            seq: stored.seq,
            bytes: stored.bytes,
        })),
        Anchor::Hash(_) => Ok(Err(format!(
            "record {} is not the record the snapshot was taken at (another or a rolled-back log)",
            stored.seq
        ))),
        Anchor::Unknown(reason) => Ok(Err(format!(
            "snapshot at record {} cannot be checked: {reason}",
            stored.seq
        ))),
    }
}
