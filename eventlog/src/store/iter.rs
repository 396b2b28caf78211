//! [`LogIter`]: the verified walk of the log, record by record, in log order.
//!
//! Owns the reader's side of the chain: each stored value is checked by the codec, then its
//! key against the expected seq and its `prev_hash` against the previous record's hash;
//! in a pruned region, the present records are checked one by one and, on a walk from 1,
//! against the checkpoint's digest; and a prune that commits during the walk is adopted
//! rather than reported as damage. The rules are in the `codec` module documentation
//! ("Reading a record", "Reading a pruned log"). Must not: write, or decode bytes itself.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use rocksdb::DB;
use tracing::debug;

use super::checkpoint::{load_checkpoint, Checkpoint};
use super::codec::{
    check_value, corrupt, decode_body, key, open_envelope, parse_key, GENESIS_PREV_HASH,
};
use crate::error::LogError;
use crate::record::{Event, Record};

#[cfg(test)]
mod tests;

/// How many raw records a [`LogIter`] reads from RocksDB at a time, once it walks on.
/// Its first read takes one record and each next read 16 times more up to this: a
/// caller after one record (an attempts listing reads records one by one) reads one.
pub(super) const READ_CHUNK: usize = 256;

/// How much larger each read of a [`LogIter`] is than the one before, up to
/// [`READ_CHUNK`].
const READ_CHUNK_GROWTH: usize = 16;

/// What the next record's `prev_hash` must be.
enum Expect {
    /// Nothing read yet: the checkpoint and the anchor (`next_seq - 1`) are not loaded.
    Unresolved,
    /// The hash of the previous record (zeros before record 1, `cut_hash` after the cut).
    Hash([u8; 32]),
    /// The anchor record is missing: any record found after it is a gap.
    MissingAnchor,
    /// Inside the pruned region (`next_seq <= cut_seq`): records are checked one by one,
    /// not chained.
    Pruned,
}

/// The running digest of the pruned region's present records.
#[derive(Default)]
struct Region {
    /// `None` when the walk did not start at 1 (or a newer checkpoint was adopted part way):
    /// the digest is then not checked.
    hasher: Option<blake3::Hasher>,
    /// Present records seen in the region.
    kept: u64,
}

impl Region {
    fn new(checked: bool) -> Region {
        Region {
            hasher: checked.then(blake3::Hasher::new),
            kept: 0,
        }
    }

    fn add(&mut self, seq: u64, hash: &[u8; 32]) {
        if let Some(h) = &mut self.hasher {
            h.update(&seq.to_be_bytes());
            h.update(hash);
        }
        self.kept += 1;
    }

    /// Compares what the walk saw with what `checkpoint` kept.
    fn finish(&mut self, checkpoint: &Checkpoint) -> Result<(), LogError> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let digest = *hasher.finalize().as_bytes();
        if self.kept != checkpoint.kept {
            return Err(checkpoint.mismatch(format!(
                "the pruned region 1..={} holds {} records, the checkpoint kept {}",
                checkpoint.cut_seq, self.kept, checkpoint.kept
            )));
        }
        if digest != checkpoint.kept_digest {
            return Err(checkpoint.mismatch(format!(
                "the records of the pruned region 1..={} are not those the checkpoint kept \
                 (digest mismatch)",
                checkpoint.cut_seq
            )));
        }
        Ok(())
    }
}

/// A stored `(key, value)` pair, not yet checked.
type RawEntry = (Box<[u8]>, Box<[u8]>);

/// Verified records in log order, from [`EventLog::iter_from`]. Owns a handle on the log,
/// so it can outlive the [`EventLog`] it came from and be moved to another thread.
///
/// [`EventLog::iter_from`]: crate::EventLog::iter_from
/// [`EventLog`]: crate::EventLog
pub struct LogIter {
    // Declared before `_log` so that it is dropped first: if the iterator holds the last
    // handle on the log, the log then closes the database before removing its files.
    db: Arc<DB>,
    /// The log walked, kept open (its writer too) while the iterator lives.
    _log: Arc<dyn Send + Sync>,
    next_seq: u64,
    expect: Expect,
    /// The prune checkpoint in force (loaded with the anchor).
    checkpoint: Option<Checkpoint>,
    /// The digest of the pruned region while walking it.
    region: Region,
    /// Raw records read ahead.
    buf: VecDeque<RawEntry>,
    /// How many raw records the next read takes (see [`READ_CHUNK`]).
    chunk: usize,
    /// The last raw key read: the next read goes on right after it, so that a stray key
    /// between two reads is seen like any other.
    last_key: Option<Box<[u8]>>,
    /// The last read reached the end of the log.
    source_done: bool,
    /// An error was yielded, or the end reached.
    done: bool,
}

impl LogIter {
    /// A walk from `from_seq` (0 is read as 1) of the records in `db`, holding `log` open
    /// while it lasts; nothing is read before the first `next`.
    pub(super) fn new(db: Arc<DB>, log: Arc<dyn Send + Sync>, from_seq: u64) -> LogIter {
        LogIter {
            db,
            _log: log,
            next_seq: from_seq.max(1),
            expect: Expect::Unresolved,
            checkpoint: None,
            region: Region::default(),
            buf: VecDeque::new(),
            chunk: 1,
            last_key: None,
            source_done: false,
            done: false,
        }
    }

    /// After a walk to the end: the hash of the last record (zeros when the log is empty).
    pub(super) fn last_hash(&self) -> [u8; 32] {
        match self.expect {
            Expect::Hash(h) => h,
            Expect::Unresolved | Expect::MissingAnchor | Expect::Pruned => GENESIS_PREV_HASH,
        }
    }

    /// The prune checkpoint the walk went by, if the log was pruned.
    pub(super) fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// The next record and its hash.
    fn step(&mut self) -> Option<Result<(Record, [u8; 32]), LogError>> {
        if let Expect::Unresolved = self.expect {
            if let Err(e) = self.start() {
                return Some(Err(e));
            }
        }
        loop {
            if self.buf.is_empty() && !self.source_done {
                if let Err(e) = self.fill() {
                    return Some(Err(e));
                }
            }
            let outcome = match self.buf.pop_front() {
                Some((k, v)) => match self.check(&k, &v) {
                    Ok(item) => return Some(Ok(item)),
                    Err(e) => {
                        self.buf.push_front((k, v));
                        e
                    }
                },
                // The end of the log, unless something that must be there is not.
                None => self.end_problem()?,
            };
            // Before calling it damage: a prune may have committed during the walk.
            match self.refresh() {
                Ok(true) => continue,
                Ok(false) => return Some(Err(outcome)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Yields the next record with its hash, fused after the first error like `next`.
    pub(super) fn next_hashed(&mut self) -> Option<Result<(Record, [u8; 32]), LogError>> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }

    /// Loads the checkpoint and sets what the first record must chain to.
    fn start(&mut self) -> Result<(), LogError> {
        self.checkpoint = load_checkpoint(&self.db)?;
        self.position(self.next_seq == 1)
    }

    /// Sets `expect` for `next_seq` under the current checkpoint; the region's digest is
    /// checked when `check_digest` and the walk starts at 1.
    fn position(&mut self, check_digest: bool) -> Result<(), LogError> {
        if let Some(c) = self.checkpoint {
            if self.next_seq <= c.cut_seq {
                self.expect = Expect::Pruned;
                self.region = Region::new(check_digest && self.next_seq == 1);
                return Ok(());
            }
            if self.next_seq == c.cut_seq + 1 {
                self.expect = Expect::Hash(c.cut_hash);
                return Ok(());
            }
        }
        if self.next_seq <= 1 {
            self.expect = Expect::Hash(GENESIS_PREV_HASH);
            return Ok(());
        }
        let anchor = self.next_seq - 1;
        self.expect = match self.db.get_pinned(key(anchor))? {
            Some(value) => Expect::Hash(open_envelope(anchor, &value)?.hash),
            None => Expect::MissingAnchor,
        };
        Ok(())
    }

    /// Re-reads the prune metadata; if it changed (a prune committed since), adopts the
    /// new checkpoint from the current position, without the digest check, and returns
    /// `true` so the caller looks again.
    fn refresh(&mut self) -> Result<bool, LogError> {
        if let Expect::Unresolved = self.expect {
            return Ok(false);
        }
        let fresh = load_checkpoint(&self.db)?;
        if fresh == self.checkpoint {
            return Ok(false);
        }
        debug!(
            next_seq = self.next_seq,
            cut_seq = fresh.map_or(0, |c| c.cut_seq),
            "event log: prune checkpoint changed during a walk"
        );
        self.checkpoint = fresh;
        self.source_done = false;
        match fresh {
            Some(c) if self.next_seq <= c.cut_seq + 1 => self.position(false)?,
            // The cut is behind us: the chain we follow is unaffected.
            _ if matches!(self.expect, Expect::Hash(_)) => {}
            _ => self.position(false)?,
        }
        Ok(true)
    }

    /// Reads the next chunk of raw records, starting at the next expected key.
    fn fill(&mut self) -> Result<(), LogError> {
        let mut it = self.db.raw_iterator();
        match &self.last_key {
            Some(last) => {
                it.seek(last);
                if it.key() == Some(&last[..]) {
                    it.next();
                }
            }
            None => it.seek(key(self.next_seq)),
        }
        while self.buf.len() < self.chunk {
            let Some((k, v)) = it.item() else { break };
            self.buf.push_back((Box::from(k), Box::from(v)));
            it.next();
        }
        if let Some((k, _)) = self.buf.back() {
            self.last_key = Some(k.clone());
        }
        it.status()?;
        if self.buf.len() < self.chunk {
            self.source_done = true;
        }
        self.chunk = (self.chunk * READ_CHUNK_GROWTH).min(READ_CHUNK);
        Ok(())
    }

    fn check(&mut self, k: &[u8], v: &[u8]) -> Result<(Record, [u8; 32]), LogError> {
        let seq = parse_key(k).ok_or_else(|| {
            corrupt(
                self.next_seq,
                format!("key {} is not a sequence number", hex::encode(k)),
            )
        })?;
        if let (Expect::Pruned, Some(c)) = (&self.expect, self.checkpoint) {
            if seq <= c.cut_seq {
                let checked = open_envelope(seq, v)?;
                let event = decode_body(seq, &checked.body)?;
                self.region.add(seq, &checked.hash);
                self.next_seq = seq + 1;
                let record = Record {
                    seq,
                    time_ms: checked.time_ms,
                    event,
                };
                return Ok((record, checked.hash));
            }
            // Leaving the region: it must hold what the checkpoint kept, and the chain
            // resumes from the cut.
            self.region.finish(&c)?;
            self.expect = Expect::Hash(c.cut_hash);
            self.next_seq = c.cut_seq + 1;
        }
        let expected = self.next_seq;
        let prev = match self.expect {
            Expect::Hash(h) => h,
            Expect::Unresolved | Expect::MissingAnchor | Expect::Pruned => {
                return Err(LogError::Gap {
                    expected: expected - 1,
                    found: seq,
                })
            }
        };
        if seq != expected {
            return Err(LogError::Gap {
                expected,
                found: seq,
            });
        }
        let (record, hash) = check_value(seq, &prev, v)?;
        self.check_checkpoint(&record)?;
        self.expect = Expect::Hash(hash);
        self.next_seq = seq + 1;
        Ok((record, hash))
    }

    /// The record at the checkpoint's seq must be that checkpoint, and no checkpoint may
    /// come after it.
    fn check_checkpoint(&self, record: &Record) -> Result<(), LogError> {
        let is_checkpoint = matches!(record.event, Event::LogPruned { .. });
        match self.checkpoint {
            Some(c) if c.checkpoint_seq == record.seq => {
                if !is_checkpoint {
                    return Err(c.mismatch("the record is not a prune checkpoint".to_owned()));
                }
                if !c.matches(&record.event) {
                    return Err(c.mismatch(
                        "the checkpoint record differs from the stored prune metadata".to_owned(),
                    ));
                }
                Ok(())
            }
            Some(c) if is_checkpoint && record.seq > c.checkpoint_seq => {
                Err(LogError::CheckpointMismatch {
                    checkpoint_seq: record.seq,
                    reason: format!(
                        "the stored prune metadata names an older checkpoint (record {})",
                        c.checkpoint_seq
                    ),
                })
            }
            None if is_checkpoint => Err(LogError::CheckpointMismatch {
                checkpoint_seq: record.seq,
                reason: "the prune metadata is missing".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// At the end of the stored records: what is missing, if anything.
    fn end_problem(&self) -> Option<LogError> {
        let c = self.checkpoint?;
        if let Expect::Pruned = self.expect {
            return Some(c.mismatch(format!(
                "the log ends inside the pruned region: record {} is missing",
                c.cut_seq + 1
            )));
        }
        if !matches!(self.expect, Expect::MissingAnchor) && self.next_seq <= c.checkpoint_seq {
            return Some(c.mismatch("the checkpoint record is missing".to_owned()));
        }
        None
    }
}

impl Iterator for LogIter {
    type Item = Result<Record, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_hashed()
            .map(|item| item.map(|(record, _)| record))
    }
}

impl std::iter::FusedIterator for LogIter {}

impl fmt::Debug for LogIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogIter")
            .field("next_seq", &self.next_seq)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
