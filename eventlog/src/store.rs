//! The storage engine: a hash-chained, append-only log of [`Record`]s in RocksDB.
//!
//! Owns the on-disk format, the single writer thread that group-commits appends, and
//! verified reads (decode, version, hash, sequence continuity and chain, record by record).
//!
//! # On-disk format
//!
//! One RocksDB key per record, in the default column family: the record's `seq` as 8 bytes
//! big-endian, so key order is append order. Sequence numbers start at 1 and have no gaps,
//! except in a pruned region (see [Pruning](#pruning-and-the-checkpoint)).
//!
//! Four more column families hold what is not a record, so that reads of the log never see
//! it: `snapshots` (see [Snapshots](#snapshots)), `meta` (the prune metadata and the
//! indexes' built marker), and the derived `index` and `unique` (see
//! [Indexes](#indexes-and-unique-keys)). A writable open creates them when missing (a log
//! written before they existed opens as is); a read-only open tolerates their absence (no
//! snapshot, no prune, empty indexes). A build older than these column families cannot
//! open the database once they exist.
//!
//! The value is the rmp-serde map encoding (`rmp_serde::to_vec_named`) of an envelope:
//!
//! | field       | type                | meaning                                           |
//! |-------------|---------------------|---------------------------------------------------|
//! | `version`   | u16                 | [`RECORD_VERSION`] of the build that wrote it     |
//! | `time_ms`   | u64                 | wall-clock time of the append, Unix milliseconds  |
//! | `prev_hash` | bin, 32 bytes       | `hash` of record `seq - 1`; all zeros for seq 1   |
//! | `body`      | bin                 | `rmp_serde::to_vec_named(&event)`                 |
//! | `hash`      | bin, 32 bytes       | this record's hash, defined below                 |
//!
//! The byte fields are msgpack `bin` values (not arrays of integers).
//!
//! # Record hash
//!
//! `hash = BLAKE3(seq_be8 || version_be2 || time_ms_be8 || prev_hash32 || body)`: the
//! unkeyed BLAKE3 hash of the concatenation of `seq` as 8 bytes big-endian, `version` as
//! 2 bytes big-endian, `time_ms` as 8 bytes big-endian, the 32 bytes of `prev_hash`, and
//! the `body` bytes as stored. Every part but the last has a fixed width, so the
//! concatenation is unambiguous. Hashing `seq` means a value moved to another key fails its
//! hash check, and chaining `prev_hash` means a removed or reordered record breaks the
//! chain.
//!
//! # Reading a record
//!
//! For the record under key `seq`, in this order: the key must be the expected next
//! sequence number ([`LogError::Gap`]); the envelope's `version` must be known
//! ([`LogError::UnknownVersion`], checked before the rest of the envelope is decoded, so a
//! newer envelope layout is still reported as a version); the envelope must decode with no
//! trailing bytes and its hash must match ([`LogError::Corrupt`]); its `prev_hash` must be
//! the previous record's hash ([`LogError::ChainBroken`]); and the body must decode into an
//! [`Event`] ([`LogError::Corrupt`]).
//!
//! A log truncated at its tail (last records deleted) cannot be told apart from a shorter
//! log by the log alone.
//!
//! # Snapshots
//!
//! [`EventLog::save_snapshot`] keeps opaque state bytes (the caller's state after records
//! `1..=seq`) in the `snapshots` column family, under an 8-byte big-endian generation
//! number (1, 2, ...; the newest write has the highest). The value is the rmp-serde map of
//! `version` (1), `seq`, `record_hash` (bin 32: the hash of record `seq` when saved),
//! `checksum` (bin 32) and `bytes` (bin), where
//! `checksum = BLAKE3(seq_be8 || record_hash32 || bytes)`. Only the newest generation and
//! the one before it are kept. [`EventLog::load_snapshot`] returns the newest one whose
//! checksum verifies and whose record still has `record_hash` (or, if record `seq` was
//! pruned, whose `seq` is the cut of the current prune checkpoint with that `cut_hash`);
//! others are skipped with a warning. A snapshot taken at a record that a later prune
//! removes (other than at the cut) can no longer be checked and is skipped: prune with the
//! cut at the snapshot's `seq` to keep it usable.
//!
//! # Pruning and the checkpoint
//!
//! [`EventLog::prune`] deletes, among the records `1..=cut_seq`, those the caller's
//! predicate calls removable, and appends a chained checkpoint record
//! [`Event::LogPruned`]` { cut_seq, cut_hash, kept, kept_digest, removed }` where
//!
//! - `cut_hash` is the hash of record `cut_seq` as it was (hex);
//! - `kept` is the number of records with `seq <= cut_seq` still present after the prune
//!   (including those kept by earlier prunes), and `removed` how many this prune deleted;
//! - `kept_digest = BLAKE3(seq_be8 || hash32 || seq_be8 || hash32 || ...)` over those kept
//!   records in seq order, `hash32` being each record's stored (and re-checked) hash (hex).
//!
//! The same fields and the checkpoint record's own `seq` are stored in the `meta` column
//! family under the key `prune_checkpoint` (rmp-serde map: `version` 1, `cut_seq`,
//! `cut_hash` bin 32, `kept`, `kept_digest` bin 32, `removed`, `checkpoint_seq`). Only
//! the latest checkpoint is stored; cuts only go up, and the last record is never pruned.
//!
//! The range deletions, the checkpoint record and the metadata are written in **one**
//! synced `WriteBatch` by the writer thread (the checkpoint goes through the normal append
//! path: it gets the next seq, is chained, and reaches the commit hook). A crash leaves
//! either all of them or none: there is no window in which the log is pruned but the
//! checkpoint missing. The `compact_range` that follows only reclaims disk space; if the
//! process dies before or during it, the deleted records stay invisible (tombstones) and
//! RocksDB drops their data in a later compaction.
//!
//! ## Reading a pruned log
//!
//! With a checkpoint, the log is a *pruned region* `1..=cut_seq` followed by a chain
//! `cut_seq + 1..`:
//!
//! - In the region, records may be missing (any seq may be absent) and `prev_hash` links
//!   are **not** checked, since a kept record's predecessor may be gone. Each present
//!   record is still checked on its own: key, version, hash over its content and seq, and
//!   body decoding ([`LogError::Corrupt`] / [`LogError::UnknownVersion`] with its seq).
//! - A walk that starts at 1 ([`EventLog::verify`], `iter_from(1)`) also computes
//!   `kept_digest` and the count over the region's present records and compares them with
//!   the checkpoint when it leaves the region, before record `cut_seq + 1` is yielded; a
//!   difference is [`LogError::CheckpointMismatch`]. A walk that starts inside the region
//!   checks each record but not the digest (it has not seen the whole region).
//! - Record `cut_seq + 1` must exist and have `prev_hash == cut_hash`
//!   ([`LogError::Gap`] / [`LogError::ChainBroken`] at `cut_seq + 1`); from there on the
//!   chain is checked as without pruning. `iter_from(cut_seq + 1)` seeds the chain with
//!   `cut_hash`.
//! - The record at the metadata's `checkpoint_seq` must be a `LogPruned` with exactly the
//!   metadata's fields, a `LogPruned` record after it means the metadata is stale, a
//!   `LogPruned` record with no metadata at all means it was lost, and a walk that ends
//!   before `checkpoint_seq` means the checkpoint record is missing: all
//!   [`LogError::CheckpointMismatch`] naming that record.
//!
//! What this guarantees against someone who can write the database: the set of records
//! kept in the region (their seqs and full contents, through their hashes) is pinned by
//! `kept_digest`, inside a checkpoint record that is itself a link of the chain running
//! to the tail, and the metadata must agree with that record. So deleting, adding,
//! altering, reordering or moving a record in the region, moving the cut, or editing the
//! metadata is detected (with the record's seq when the record itself fails its checks,
//! else naming the checkpoint). What it cannot guarantee, exactly as without pruning:
//! the hashes are unkeyed, so whoever rewrites the whole log from some record to the tail
//! (a forged checkpoint and metadata included) is only caught by comparing
//! [`VerifySummary::last_hash`] with a copy kept elsewhere, and removing records from the
//! tail goes unnoticed unless it removes the checkpoint record. Nor can the log tell
//! whether the predicate was right: it pins what was kept, not why.
//!
//! A prune that commits while an iterator walks the log may delete records under it; an
//! iterator that meets a gap or a digest mismatch re-reads the metadata first and, if a
//! newer checkpoint now covers its position, goes on under that checkpoint (without the
//! digest check) instead of reporting damage. [`EventLog::verify`] on a writable log
//! excludes prunes while it runs, so it always checks the digest.
//!
//! # Indexes and unique keys
//!
//! So that callers need not keep per-event lookups in memory, a log opened with an
//! [`Indexer`] ([`EventLog::open_with`]) keeps two lookups on disk, derived from each event
//! by that function (the log still never interprets events): [`IndexKeys`]` { unique,
//! entries }`.
//!
//! - `index` column family: one key per entry `(index, entry_key)` of a record,
//!   `index_u8 || len_be2 || entry_key || seq_be8`, empty value. The length prefix makes
//!   the entry key self-delimiting, so the entries of a key that is a prefix of another
//!   (`ab`, `abc`) never mix; entry keys are at most [`MAX_ENTRY_KEY_LEN`] bytes. Under one
//!   `(index, entry_key)` the keys are in seq order: [`EventLog::scan_index`] reads them
//!   with one bounded RocksDB iterator, either way, from any seq.
//! - `unique` column family: `unique_key -> seq_be8`, the record holding the key
//!   ([`EventLog::unique_seq`]). On the writer thread, before seqs are assigned, an event
//!   whose unique key is stored or claimed earlier in the same group commit is skipped:
//!   not written, no seq, not seen by the commit hook, and absent from what `append`
//!   returns. As the writer is the only one to add keys, there is at most one record per
//!   unique key even under concurrent appends. A `LogPruned` checkpoint never has one.
//! - `meta` column family, key `indexes_built`: the index layout version (`u16` big-endian,
//!   1) once the indexes are complete.
//!
//! A record's entries and unique key are written in the same synced `WriteBatch` as the
//! record, and a prune deletes those of the records it removes (recomputed with the
//! indexer; a unique key only if it names the removed record) in its batch: as long as
//! the log is written with an indexer, the indexes never name a missing record nor miss a
//! present one, crash or not. A pruned record's unique key is free again: dedup holds
//! within retention. Scans and unique lookups read these families only, never records.
//!
//! Indexes are derived data, outside the hash chain: [`EventLog::verify`] does not check
//! them ([`EventLog::verify_indexes`] does), and [`EventLog::rebuild_indexes`] recomputes
//! them from the records. The built marker drives that: a writable open without indexer
//! removes it with its first write (the records it writes or prunes are not indexed), and
//! an open with an indexer rebuilds the indexes, reading the log once, when the marker is
//! missing or names another layout (a log from before indexes, or after such a write, or
//! after an interrupted rebuild). The log cannot tell that the indexer itself changed
//! what it derives: call `rebuild_indexes` then.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{
    ColumnFamilyDescriptor, DBCompressionType, Options, WriteBatch, WriteOptions, DB,
    DEFAULT_COLUMN_FAMILY_NAME,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::error::LogError;
use crate::record::{Event, Record, RECORD_VERSION};

mod index;
mod prune;
mod snapshot;

#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod prune_tests;
#[cfg(test)]
mod tests;

pub use index::{IndexId, IndexKeys, Indexer, MAX_ENTRY_KEY_LEN};
pub use prune::PruneSummary;
pub use snapshot::Snapshot;

use index::{IndexFamilies, INDEX_CF, UNIQUE_CF};
use prune::{load_checkpoint, Checkpoint, PendingCheckpoint};

/// The column family of snapshots; see the module documentation.
const SNAPSHOTS_CF: &str = "snapshots";

/// The column family of log metadata (the prune checkpoint).
const META_CF: &str = "meta";

/// Called on the writer thread for every committed record, in log order, after the record
/// is durable and before the appending caller is answered.
///
/// It runs on the single writer thread, so it must be quick and must not append to the log,
/// prune it or verify it (that would wait for itself, or for a prune waiting on the writer).
/// A panic in the hook is caught and logged.
pub type CommitHook = Arc<dyn Fn(&Record) + Send + Sync>;

/// How [`EventLog::open_with`] opens a log for writing.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Called for every record committed from now on; see [`CommitHook`].
    pub on_commit: Option<CommitHook>,
    /// Derives the index entries and unique key of every event; see [`Indexer`] and the
    /// module documentation. Without one, appends maintain no index and skip nothing.
    pub indexer: Option<Indexer>,
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("on_commit", &self.on_commit.is_some())
            .field("indexer", &self.indexer.is_some())
            .finish()
    }
}

/// The `prev_hash` of the first record.
const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// The WAL size past which RocksDB flushes the column families that pin old WAL files.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;

/// The memory all column families' memtables may hold together before RocksDB flushes.
const MAX_MEMTABLE_BYTES: usize = 32 << 20;

/// Soft cap on the events of one group commit: a batch takes no more requests once it
/// holds this many, so one huge burst does not build an unbounded `WriteBatch`.
const MAX_BATCH_EVENTS: usize = 4096;

/// The share of [`MAX_BATCH_EVENTS`] kept for background appends when some wait, so
/// they are never starved by the others.
const BACKGROUND_SHARE_EVENTS: usize = MAX_BATCH_EVENTS / 4;

/// How many raw records a [`LogIter`] reads from RocksDB at a time, once it walks on.
/// Its first read takes one record and each next read 16 times more up to this: a
/// caller after one record (an attempts listing reads records one by one) reads one.
const READ_CHUNK: usize = 256;

/// How much larger each read of a [`LogIter`] is than the one before, up to
/// [`READ_CHUNK`].
const READ_CHUNK_GROWTH: usize = 16;

/// What [`EventLog::verify`] found on an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// Number of records.
    pub records: u64,
    /// Sequence number of the first record; 0 when the log is empty.
    pub first_seq: u64,
    /// Sequence number of the last record; 0 when the log is empty.
    pub last_seq: u64,
    /// Hash of the last record, lowercase hex (64 zeros when the log is empty).
    pub last_hash: String,
    /// The cut of the prune checkpoint: records up to it may be pruned; 0 when never
    /// pruned.
    pub pruned_through: u64,
    /// How many records up to the cut are absent (pruned, now or earlier).
    pub pruned: u64,
    /// How many records up to the cut are kept (and were checked against the digest).
    pub kept: u64,
    /// The sequence number of the checkpoint record; 0 when never pruned.
    pub checkpoint_seq: u64,
}

/// The event log: appends go through one writer thread; reads verify as they go.
///
/// Cheap to clone (an `Arc` inside). The writer thread stops when [`EventLog::close`] is
/// called or the last handle (including live [`LogIter`]s) is dropped, after committing every
/// append already queued.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

/// State shared by every handle.
struct Inner {
    // Declared before `_secondary` so the database is closed before its directory is removed.
    db: Arc<DB>,
    shared: Arc<Shared>,
    /// Requests to the writer thread; `None` once closed (and always when read-only).
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Held by a prune from its walk to its commit, and by `verify`, so that a verify never
    /// sees a prune half way.
    prune_lock: Mutex<()>,
    /// Serialises snapshot writes (generation numbers).
    snapshot_lock: Mutex<()>,
    read_only: bool,
    /// The indexer of a writable log (prune recomputes the keys of what it removes).
    indexer: Option<Indexer>,
    _secondary: Option<SecondaryDir>,
}

/// Counters the writer publishes for readers.
struct Shared {
    last_seq: AtomicU64,
    batches: AtomicU64,
}

/// Work for the writer thread.
enum Job {
    /// Append (and, for a prune, delete).
    Append(Request),
    /// Rebuild the indexes, between two group commits.
    RebuildIndexes(mpsc::SyncSender<Result<u64, LogError>>),
}

/// One caller's append, queued for the writer thread.
struct Request {
    events: Vec<Event>,
    /// Set for the checkpoint of a prune: its deletions and metadata join the same batch.
    prune: Option<PendingCheckpoint>,
    reply: Reply,
    /// Appended with [`EventLog::append_background`]: it yields to the others.
    background: bool,
}

/// Where the writer sends the outcome of one append.
enum Reply {
    Async(oneshot::Sender<Result<Vec<Record>, LogError>>),
    // A std channel rather than `oneshot::blocking_recv`, which panics inside a runtime.
    Blocking(mpsc::SyncSender<Result<Vec<Record>, LogError>>),
}

impl Reply {
    fn send(self, outcome: Result<Vec<Record>, LogError>) {
        // A caller that stopped waiting (dropped future) is not an error: the outcome stands.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// The stored value of one record; see the module documentation.
#[derive(Serialize, Deserialize)]
struct Envelope {
    version: u16,
    time_ms: u64,
    #[serde(with = "bin")]
    prev_hash: Vec<u8>,
    #[serde(with = "bin")]
    body: Vec<u8>,
    #[serde(with = "bin")]
    hash: Vec<u8>,
}

/// Reads only the `version` of an envelope, whatever else a newer layout may hold.
#[derive(Deserialize)]
struct VersionProbe {
    version: u16,
}

/// An envelope whose version and hash have been checked; the body is not decoded yet.
struct Checked {
    time_ms: u64,
    prev_hash: [u8; 32],
    hash: [u8; 32],
    body: Vec<u8>,
}

/// Byte fields as msgpack `bin` (serde would otherwise write arrays of integers).
mod bin {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

/// The RocksDB key of `seq`.
fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number of a RocksDB key, if it is one.
fn parse_key(k: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes)
}

/// The record hash; see the module documentation.
fn record_hash(
    seq: u64,
    version: u16,
    time_ms: u64,
    prev_hash: &[u8; 32],
    body: &[u8],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&seq.to_be_bytes());
    h.update(&version.to_be_bytes());
    h.update(&time_ms.to_be_bytes());
    h.update(prev_hash);
    h.update(body);
    *h.finalize().as_bytes()
}

fn corrupt(seq: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        seq,
        reason: reason.into(),
    }
}

/// Encodes `event` as record `seq`; returns the stored value and the record's hash.
fn encode_record(
    seq: u64,
    time_ms: u64,
    prev_hash: &[u8; 32],
    event: &Event,
) -> Result<(Vec<u8>, [u8; 32]), LogError> {
    let body = rmp_serde::to_vec_named(event).map_err(|e| LogError::Encode(e.to_string()))?;
    let hash = record_hash(seq, RECORD_VERSION, time_ms, prev_hash, &body);
    let envelope = Envelope {
        version: RECORD_VERSION,
        time_ms,
        prev_hash: prev_hash.to_vec(),
        body,
        hash: hash.to_vec(),
    };
    let value = rmp_serde::to_vec_named(&envelope).map_err(|e| LogError::Encode(e.to_string()))?;
    Ok((value, hash))
}

/// A 32-byte hash field of record `seq`.
fn hash32(seq: u64, field: &str, bytes: &[u8]) -> Result<[u8; 32], LogError> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| corrupt(seq, format!("{field} is {} bytes, not 32", bytes.len())))
}

/// Decodes the envelope stored as record `seq` and checks its version and hash.
fn open_envelope(seq: u64, value: &[u8]) -> Result<Checked, LogError> {
    let probe: VersionProbe = rmp_serde::from_slice(value)
        .map_err(|e| corrupt(seq, format!("undecodable envelope: {e}")))?;
    if probe.version == 0 || probe.version > RECORD_VERSION {
        return Err(LogError::UnknownVersion {
            seq,
            version: probe.version,
        });
    }
    let mut de = rmp_serde::Deserializer::new(Cursor::new(value));
    let envelope = Envelope::deserialize(&mut de)
        .map_err(|e| corrupt(seq, format!("undecodable envelope: {e}")))?;
    // Bytes after the envelope are outside the hash: refuse them rather than ignore them.
    if de.position() != value.len() as u64 {
        return Err(corrupt(seq, "trailing bytes after the envelope"));
    }
    let prev_hash = hash32(seq, "prev_hash", &envelope.prev_hash)?;
    let hash = hash32(seq, "hash", &envelope.hash)?;
    let computed = record_hash(
        seq,
        envelope.version,
        envelope.time_ms,
        &prev_hash,
        &envelope.body,
    );
    if computed != hash {
        return Err(corrupt(seq, "hash mismatch"));
    }
    Ok(Checked {
        time_ms: envelope.time_ms,
        prev_hash,
        hash,
        body: envelope.body,
    })
}

/// Decodes one stored record value as a reader does (version, envelope, hash, event),
/// without the chain check that needs its neighbours. Never panics, whatever the bytes:
/// this is the entry point the record-decoder fuzz target and property test drive.
pub fn decode_stored_record(seq: u64, value: &[u8]) -> Result<Record, LogError> {
    let checked = open_envelope(seq, value)?;
    let event = decode_body(seq, &checked.body)?;
    Ok(Record {
        seq,
        time_ms: checked.time_ms,
        event,
    })
}

/// Encodes `event` as the stored value of record `seq` chained to `prev_hash` (for
/// tests and fuzzing seeds; appends go through the writer).
pub fn encode_stored_record(
    seq: u64,
    time_ms: u64,
    prev_hash: &[u8; 32],
    event: &Event,
) -> Result<Vec<u8>, LogError> {
    encode_record(seq, time_ms, prev_hash, event).map(|(value, _)| value)
}

/// Decodes the body of record `seq`.
fn decode_body(seq: u64, body: &[u8]) -> Result<Event, LogError> {
    rmp_serde::from_slice(body).map_err(|e| corrupt(seq, format!("undecodable event: {e}")))
}

/// Checks the value stored as record `seq`, whose predecessor's hash is `prev_hash`;
/// returns the record and its hash.
fn check_value(
    seq: u64,
    prev_hash: &[u8; 32],
    value: &[u8],
) -> Result<(Record, [u8; 32]), LogError> {
    let checked = open_envelope(seq, value)?;
    if checked.prev_hash != *prev_hash {
        return Err(LogError::ChainBroken { seq });
    }
    let event = decode_body(seq, &checked.body)?;
    let record = Record {
        seq,
        time_ms: checked.time_ms,
        event,
    };
    Ok((record, checked.hash))
}

/// Reads and fully checks the last record: its sequence number and hash continue the chain.
fn read_tail(db: &DB) -> Result<(u64, [u8; 32]), LogError> {
    let mut it = db.raw_iterator();
    it.seek_to_last();
    let Some((k, v)) = it.item() else {
        it.status()?;
        return Ok((0, GENESIS_PREV_HASH));
    };
    let seq = tail_seq(k)?;
    let checked = open_envelope(seq, v)?;
    decode_body(seq, &checked.body)?;
    Ok((seq, checked.hash))
}

/// The sequence number of the last key, without checking the record (read-only opens
/// must succeed on a damaged log so that it can be verified).
fn last_key(db: &DB) -> Result<u64, LogError> {
    let mut it = db.raw_iterator();
    it.seek_to_last();
    match it.key() {
        Some(k) => tail_seq(k),
        None => {
            it.status()?;
            Ok(0)
        }
    }
}

fn tail_seq(k: &[u8]) -> Result<u64, LogError> {
    match parse_key(k) {
        Some(seq) if seq > 0 => Ok(seq),
        _ => Err(corrupt(
            0,
            format!("last key {} is not a sequence number", hex::encode(k)),
        )),
    }
}

/// Refuses checkpoint events from callers: only [`EventLog::prune`] writes them.
fn refuse_checkpoints(events: &[Event]) -> Result<(), LogError> {
    match events.iter().find_map(|e| match e {
        Event::LogPruned { cut_seq, .. } => Some(*cut_seq),
        _ => None,
    }) {
        Some(cut_seq) => Err(LogError::InvalidPrune {
            cut_seq,
            reason: "a prune checkpoint is written only by EventLog::prune".to_owned(),
        }),
        None => Ok(()),
    }
}

/// Now, in Unix milliseconds: the clock records are stamped with (`time_ms`), and the
/// one every crate of the daemon reads.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        // A clock before 1970 is wrong, but not a reason to refuse writes.
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked: take them anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventLog {
    /// Opens (creating if missing) the log in `dir` for reading and appending, and starts its
    /// writer thread.
    ///
    /// The last record is read and fully checked so the chain can continue; a damaged tail
    /// refuses the open (use [`EventLog::open_read_only`] and [`EventLog::verify`] to
    /// inspect it). `on_commit` is called for every record committed from now on. It must
    /// not hold a clone of this log, or the writer only stops on an explicit
    /// [`EventLog::close`].
    ///
    /// The same as [`EventLog::open_with`] with this hook and no indexer.
    pub fn open(dir: &Path, on_commit: Option<CommitHook>) -> Result<EventLog, LogError> {
        EventLog::open_with(
            dir,
            OpenOptions {
                on_commit,
                indexer: None,
            },
        )
    }

    /// Opens (creating if missing) the log in `dir` for reading and appending, with a
    /// commit hook and an indexer, and starts its writer thread; see [`EventLog::open`].
    ///
    /// With an indexer, the indexes are rebuilt from the records before the open returns
    /// when they are not marked complete: a log written before indexes existed, or last
    /// appended to (or pruned) by an open without indexer, or whose last rebuild did not
    /// finish. That reads the whole log once (progress is logged). Without an indexer,
    /// the first write marks the indexes incomplete, so that the next open with an
    /// indexer rebuilds them.
    ///
    /// A rebuild checks each record on its own (not the chain): a damaged record then
    /// refuses the open, as it would refuse a replay.
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<EventLog, LogError> {
        let OpenOptions { on_commit, indexer } = options;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        // The small column families (snapshots, meta, indexes) rarely fill a memtable, and
        // a WAL file cannot go while any family still holds unflushed data from it: bound
        // the WAL so RocksDB flushes those families and disk stays bounded under load.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Memtables are the largest part of the daemon's memory under load (64 MiB per
        // family by default, two per family while one flushes): cap them all together.
        opts.set_db_write_buffer_size(MAX_MEMTABLE_BYTES);
        let families = [
            DEFAULT_COLUMN_FAMILY_NAME,
            SNAPSHOTS_CF,
            META_CF,
            INDEX_CF,
            UNIQUE_CF,
        ]
        .map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf_opts)
        });
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir, families)?);
        let (last_seq, last_hash) = read_tail(&db)?;
        let built = index::is_built(&db)?;
        if let Some(indexer) = &indexer {
            if !built {
                info!(dir = %dir.display(), last_seq, "event log: indexes are not built, building");
                index::rebuild(&db, indexer)?;
            }
        }
        let shared = Arc::new(Shared {
            last_seq: AtomicU64::new(last_seq),
            batches: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            shared: Arc::clone(&shared),
            hook: on_commit,
            indexer: indexer.clone(),
            unmark_built: indexer.is_none() && built,
            last_seq,
            last_hash,
        };
        let handle = thread::Builder::new()
            .name("eventlog-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::Storage(format!("cannot start the writer thread: {e}")))?;
        info!(dir = %dir.display(), last_seq, "event log open");
        Ok(EventLog {
            inner: Arc::new(Inner {
                db,
                shared,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                prune_lock: Mutex::new(()),
                snapshot_lock: Mutex::new(()),
                read_only: false,
                indexer,
                _secondary: None,
            }),
        })
    }

    /// Opens the log in `dir` read-only, even while another process has it open for
    /// writing (a RocksDB secondary instance, with its own files in a temporary directory
    /// removed on drop).
    ///
    /// Shows the log as of the open; [`EventLog::catch_up`] refreshes it. Does not check the
    /// tail, so a damaged log can still be opened and verified. Appends fail with
    /// [`LogError::ReadOnly`]. [`EventLog::scan_index`] and [`EventLog::unique_seq`] work
    /// (no indexer needed); the index operations that need one fail with
    /// [`LogError::NoIndexer`].
    pub fn open_read_only(dir: &Path) -> Result<EventLog, LogError> {
        let secondary = SecondaryDir::create()?;
        let mut opts = Options::default();
        // RocksDB requires secondaries to keep every file open, as they cannot follow
        // deletions of files they have not opened yet.
        opts.set_max_open_files(-1);
        // Logs written before the extra column families existed do not have them.
        let present = DB::list_cf(&opts, dir)?;
        let families: Vec<&str> = [
            DEFAULT_COLUMN_FAMILY_NAME,
            SNAPSHOTS_CF,
            META_CF,
            INDEX_CF,
            UNIQUE_CF,
        ]
        .into_iter()
        .filter(|name| *name == DEFAULT_COLUMN_FAMILY_NAME || present.iter().any(|p| p == name))
        .collect();
        let db = DB::open_cf_as_secondary(&opts, dir, secondary.0.as_path(), families)?;
        db.try_catch_up_with_primary()?;
        let last_seq = last_key(&db)?;
        debug!(dir = %dir.display(), last_seq, "event log open read-only");
        Ok(EventLog {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                shared: Arc::new(Shared {
                    last_seq: AtomicU64::new(last_seq),
                    batches: AtomicU64::new(0),
                }),
                tx: Mutex::new(None),
                writer: Mutex::new(None),
                prune_lock: Mutex::new(()),
                snapshot_lock: Mutex::new(()),
                read_only: true,
                indexer: None,
                _secondary: Some(secondary),
            }),
        })
    }

    /// Appends `events` as consecutive records and returns the records actually appended
    /// once they are durable.
    ///
    /// Concurrent appends are group-committed: one synced write for all of them, in arrival
    /// order, each caller's events kept together. An empty `events` returns an empty vector
    /// without writing. If the write fails, nothing of this call is in the log. If the future
    /// is dropped after the request was queued, the events may still be committed.
    ///
    /// With an indexer, an event whose unique key is already held by a record, or by an
    /// earlier event of this call or of the same group commit, is **skipped**: it is not
    /// written, gets no seq and does not reach the commit hook; the returned vector then
    /// holds fewer records than `events` (in order, seqs without gaps), possibly none. The
    /// check and the write happen on the writer thread, so at most one record per unique
    /// key exists even under concurrent appends. Keys of pruned records are free again.
    /// An indexer that panics or returns an entry key longer than [`MAX_ENTRY_KEY_LEN`]
    /// fails this call with [`LogError::Encode`].
    ///
    /// [`Event::LogPruned`] is refused ([`LogError::InvalidPrune`]): only
    /// [`EventLog::prune`] writes checkpoints.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<Record>, LogError> {
        self.append_queued(events, false).await
    }

    /// [`EventLog::append`] for records no caller is kept waiting on (delivery attempts):
    /// the writer commits the other queued appends first, and these in the room left:
    /// while any wait, a quarter of every group commit's room (less what one request of
    /// the others may overshoot by) is kept for them. So an ingest request is not queued
    /// behind thousands of attempt records. Same guarantees as [`EventLog::append`]
    /// otherwise.
    pub async fn append_background(&self, events: Vec<Event>) -> Result<Vec<Record>, LogError> {
        self.append_queued(events, true).await
    }

    async fn append_queued(
        &self,
        events: Vec<Event>,
        background: bool,
    ) -> Result<Vec<Record>, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        refuse_checkpoints(&events)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Append(Request {
            events,
            prune: None,
            reply: Reply::Async(tx),
            background,
        }))?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// [`EventLog::append`] for code outside an async runtime: blocks until durable.
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<Vec<Record>, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        refuse_checkpoints(&events)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.commit_blocking(events, None)
    }

    /// Queues `events` (and, for a prune, its deletions and metadata) for the writer and
    /// waits until they are durable.
    fn commit_blocking(
        &self,
        events: Vec<Event>,
        prune: Option<PendingCheckpoint>,
    ) -> Result<Vec<Record>, LogError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Job::Append(Request {
            events,
            prune,
            reply: Reply::Blocking(tx),
            background: false,
        }))?;
        rx.recv().map_err(|_| LogError::Closed)?
    }

    /// Has the writer rebuild the indexes between two group commits, and waits.
    fn rebuild_on_writer(&self) -> Result<u64, LogError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Job::RebuildIndexes(tx))?;
        rx.recv().map_err(|_| LogError::Closed)?
    }

    fn submit(&self, job: Job) -> Result<(), LogError> {
        let guard = lock(&self.inner.tx);
        let tx = guard.as_ref().ok_or(LogError::Closed)?;
        tx.send(job).map_err(|_| LogError::Closed)
    }

    /// The sequence number of the last committed record; 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.inner.shared.last_seq.load(Ordering::Acquire)
    }

    /// How many synced write batches this handle's writer has committed since open (each one
    /// group commit). Always 0 when read-only.
    pub fn batches_written(&self) -> u64 {
        self.inner.shared.batches.load(Ordering::Relaxed)
    }

    /// Whether this log was opened with [`EventLog::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Read-only: catches up with the records the writing process has committed since and
    /// returns the new last sequence number. On a writable log, returns
    /// [`EventLog::last_seq`].
    pub fn catch_up(&self) -> Result<u64, LogError> {
        if self.inner.read_only {
            self.inner.db.try_catch_up_with_primary()?;
            let last = last_key(&self.inner.db)?;
            self.inner.shared.last_seq.store(last, Ordering::Release);
        }
        Ok(self.last_seq())
    }

    /// The records from `from_seq` (inclusive; 0 is read as 1) to the end of the log as it
    /// is when each chunk is read, each checked as described in the module documentation.
    ///
    /// When starting after 1, record `from_seq - 1` is read first (and its hash checked) to
    /// seed the chain; if it is missing while later records exist, that is a
    /// [`LogError::Gap`]. After the first error the iterator yields that error and ends.
    ///
    /// On a pruned log, starting inside the pruned region yields its present records
    /// (each checked on its own) and then the chain; starting at `cut_seq + 1` seeds the
    /// chain with the checkpoint's `cut_hash`. Only a walk from 1 checks the region's
    /// digest. See the module documentation.
    pub fn iter_from(&self, from_seq: u64) -> LogIter {
        LogIter {
            inner: Arc::clone(&self.inner),
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

    /// Walks and checks the whole log; the first problem found is the error.
    ///
    /// Indexes are derived data and not checked here: see [`EventLog::verify_indexes`].
    ///
    /// A read-only log is verified as of its last [`EventLog::catch_up`]. On a writable
    /// log, prunes wait until the walk is done.
    pub fn verify(&self) -> Result<VerifySummary, LogError> {
        let _no_prune = lock(&self.inner.prune_lock);
        let mut it = self.iter_from(1);
        let mut records = 0;
        let mut first_seq = 0;
        let mut last_seq = 0;
        for record in it.by_ref() {
            let record = record?;
            if records == 0 {
                first_seq = record.seq;
            }
            last_seq = record.seq;
            records += 1;
        }
        let last_hash = match it.expect {
            Expect::Hash(h) => h,
            Expect::Unresolved | Expect::MissingAnchor | Expect::Pruned => GENESIS_PREV_HASH,
        };
        let checkpoint = it.checkpoint;
        Ok(VerifySummary {
            records,
            first_seq,
            last_seq,
            last_hash: hex::encode(last_hash),
            pruned_through: checkpoint.map_or(0, |c| c.cut_seq),
            pruned: checkpoint.map_or(0, |c| c.cut_seq.saturating_sub(c.kept)),
            kept: checkpoint.map_or(0, |c| c.kept),
            checkpoint_seq: checkpoint.map_or(0, |c| c.checkpoint_seq),
        })
    }

    /// Stops the writer thread after it has committed every append already queued, and
    /// syncs the write-ahead log. Later appends on any clone fail with [`LogError::Closed`];
    /// reads keep working. The database files are released when the last handle and
    /// iterator are dropped. Calling it again does nothing.
    pub fn close(&self) -> Result<(), LogError> {
        self.inner.stop_writer()
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("last_seq", &self.last_seq())
            .field("read_only", &self.inner.read_only)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn stop_writer(&self) -> Result<(), LogError> {
        // Dropping the only sender ends the writer's loop once the queue is drained.
        drop(lock(&self.tx).take());
        let Some(handle) = lock(&self.writer).take() else {
            return Ok(());
        };
        if handle.thread().id() == thread::current().id() {
            // Called from the commit hook: the writer exits by itself after this batch.
            return Ok(());
        }
        handle
            .join()
            .map_err(|_| LogError::Storage("the writer thread panicked".to_owned()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.stop_writer() {
            warn!(error = %e, "event log writer did not stop cleanly");
        }
    }
}

/// Appends waiting for the writer, in two lanes.
#[derive(Default)]
struct Queued {
    foreground: VecDeque<Request>,
    background: VecDeque<Request>,
}

impl Queued {
    fn push(&mut self, request: Request) {
        if request.background {
            self.background.push_back(request);
        } else {
            self.foreground.push_back(request);
        }
    }

    fn is_empty(&self) -> bool {
        self.foreground.is_empty() && self.background.is_empty()
    }

    /// The requests of the next group commit, each lane in arrival order: foreground
    /// first, up to [`MAX_BATCH_EVENTS`] less the [`BACKGROUND_SHARE_EVENTS`] kept while
    /// background requests wait, then background ones to fill the batch. A request is
    /// never split; a batch always takes at least one request when any wait.
    fn next_round(&mut self) -> Vec<Request> {
        let reserve = if self.background.is_empty() {
            0
        } else {
            BACKGROUND_SHARE_EVENTS
        };
        let mut round = Vec::new();
        let mut events = 0;
        for (lane, limit) in [
            (&mut self.foreground, MAX_BATCH_EVENTS - reserve),
            (&mut self.background, MAX_BATCH_EVENTS),
        ] {
            while events < limit || round.is_empty() {
                let Some(request) = lane.pop_front() else {
                    break;
                };
                events += request.events.len();
                round.push(request);
            }
        }
        round
    }
}

/// The writer thread's state: it alone knows the tail of the chain.
struct Writer {
    db: Arc<DB>,
    shared: Arc<Shared>,
    hook: Option<CommitHook>,
    /// Derives index entries and unique keys; `None`: no index is maintained.
    indexer: Option<Indexer>,
    /// No indexer, but the indexes are marked built: the first write removes the marker.
    unmark_built: bool,
    last_seq: u64,
    last_hash: [u8; 32],
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        let mut queued = Queued::default();
        loop {
            // Wait only when nothing is queued; `recv` fails once every sender is gone
            // and the channel is empty.
            if queued.is_empty() {
                match rx.recv() {
                    Ok(job) => self.take(job, &mut queued, &sync),
                    Err(_) => break,
                }
            }
            while let Ok(job) = rx.try_recv() {
                self.take(job, &mut queued, &sync);
            }
            let round = queued.next_round();
            if !round.is_empty() {
                self.commit(round, &sync);
            }
        }
        // Every write was synced already; this is belt and braces for a clean shutdown.
        if let Err(e) = self.db.flush_wal(true) {
            warn!(error = %e, "event log: flushing the write-ahead log at close failed");
        }
        debug!(last_seq = self.last_seq, "event log writer stopped");
    }

    /// Queues an append; a rebuild runs at once, after every append queued before it.
    fn take(&mut self, job: Job, queued: &mut Queued, sync: &WriteOptions) {
        match job {
            Job::Append(request) => queued.push(request),
            Job::RebuildIndexes(reply) => {
                loop {
                    let round = queued.next_round();
                    if round.is_empty() {
                        break;
                    }
                    self.commit(round, sync);
                }
                let _ = reply.send(self.rebuild_indexes());
            }
        }
    }

    fn rebuild_indexes(&self) -> Result<u64, LogError> {
        let indexer = self.indexer.as_ref().ok_or(LogError::NoIndexer)?;
        index::rebuild(&self.db, indexer).inspect_err(|e| {
            error!(error = %e, "event log: rebuilding the indexes failed");
        })
    }

    /// Writes `requests` in one synced batch, then runs the hook and answers the callers.
    ///
    /// With an indexer, each caller's events are first filtered (duplicate unique keys are
    /// skipped) and their index entries and unique keys join the batch.
    fn commit(&mut self, requests: Vec<Request>, sync: &WriteOptions) {
        let time_ms = now_ms();
        let db = Arc::clone(&self.db);
        let indexer = self.indexer.clone();
        let families = match indexer.as_ref().map(|_| IndexFamilies::of(&db)).transpose() {
            Ok(families) => families,
            Err(e) => {
                error!(error = %e, "event log: group commit refused");
                for request in requests {
                    request.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        let mut batch = WriteBatch::default();
        let mut seq = self.last_seq;
        let mut hash = self.last_hash;
        // Unique keys claimed by the records of this batch so far.
        let mut taken: HashSet<Vec<u8>> = HashSet::new();
        let mut skipped = 0;
        let mut accepted: Vec<(Reply, Vec<Record>)> = Vec::with_capacity(requests.len());
        for Request {
            events,
            prune,
            reply,
            background: _,
        } in requests
        {
            let admitted = match (&indexer, &families) {
                (Some(indexer), Some(families)) => {
                    index::admit(&db, families, indexer, events, &taken)
                }
                _ => Ok(index::Admitted {
                    events,
                    keys: Vec::new(),
                    skipped: 0,
                }),
            };
            // A prune's checkpoint is its only event (never skipped: it has no unique key),
            // so it becomes record `seq + 1`; its deletions and metadata join the batch only
            // if the event could be encoded.
            let encoded = admitted.and_then(|admitted| {
                let (values, end_hash) = encode_request(seq, &hash, time_ms, &admitted.events)?;
                if let Some(pending) = &prune {
                    pending.write_into(&db, &mut batch, seq + 1)?;
                }
                Ok((admitted, values, end_hash))
            });
            match encoded {
                Ok((admitted, values, end_hash)) => {
                    skipped += admitted.skipped;
                    let records: Vec<Record> = admitted
                        .events
                        .into_iter()
                        .zip(seq + 1..)
                        .map(|(event, seq)| Record {
                            seq,
                            time_ms,
                            event,
                        })
                        .collect();
                    for (record, value) in records.iter().zip(&values) {
                        batch.put(key(record.seq), value);
                    }
                    if let Some(families) = &families {
                        for (record, keys) in records.iter().zip(admitted.keys) {
                            families.put(&mut batch, record.seq, &keys);
                            taken.extend(keys.unique);
                        }
                    }
                    seq += records.len() as u64;
                    hash = end_hash;
                    accepted.push((reply, records));
                }
                // Only this caller's events are refused; the rest of the batch goes on.
                Err(e) => {
                    warn!(error = %e, "event log: append refused");
                    reply.send(Err(e));
                }
            }
        }
        if seq == self.last_seq {
            // Nothing to write: every event left was a duplicate of a stored record.
            if skipped > 0 {
                debug!(skipped, "event log: group commit skipped every event");
            }
            for (reply, records) in accepted {
                reply.send(Ok(records));
            }
            return;
        }
        if self.unmark_built {
            match index::cf(&db, META_CF) {
                Ok(meta) => index::unmark_built(meta, &mut batch),
                Err(e) => {
                    error!(error = %e, "event log: group commit refused");
                    for (reply, _) in accepted {
                        reply.send(Err(e.clone()));
                    }
                    return;
                }
            }
        }
        // Callers whose events were all skipped are answered with the write's outcome too:
        // a duplicate of a record of this batch is only a duplicate if the batch commits.
        if let Err(e) = db.write_opt(batch, sync) {
            let e = LogError::from(e);
            error!(error = %e, callers = accepted.len(), "event log: group commit failed");
            for (reply, _) in accepted {
                reply.send(Err(e.clone()));
            }
            return;
        }
        if self.unmark_built {
            info!("event log: written without an indexer, the indexes are now marked incomplete");
            self.unmark_built = false;
        }
        debug!(
            first_seq = self.last_seq + 1,
            last_seq = seq,
            callers = accepted.len(),
            skipped,
            "event log: group commit"
        );
        self.last_seq = seq;
        self.last_hash = hash;
        self.shared.last_seq.store(seq, Ordering::Release);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.hook {
            for record in accepted.iter().flat_map(|(_, records)| records) {
                // The record is durable whatever the hook does: keep the writer alive.
                if panic::catch_unwind(AssertUnwindSafe(|| hook(record))).is_err() {
                    error!(seq = record.seq, "event log: commit hook panicked");
                }
            }
        }
        for (reply, records) in accepted {
            reply.send(Ok(records));
        }
    }
}

/// Encodes one caller's events as the records after `seq`; returns the values and the hash
/// of the last one.
fn encode_request(
    seq: u64,
    prev_hash: &[u8; 32],
    time_ms: u64,
    events: &[Event],
) -> Result<(Vec<Vec<u8>>, [u8; 32]), LogError> {
    let mut prev = *prev_hash;
    let mut values = Vec::with_capacity(events.len());
    for (event, seq) in events.iter().zip(seq + 1..) {
        let (value, hash) = encode_record(seq, time_ms, &prev, event)?;
        values.push(value);
        prev = hash;
    }
    Ok((values, prev))
}

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
pub struct LogIter {
    inner: Arc<Inner>,
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
    fn next_hashed(&mut self) -> Option<Result<(Record, [u8; 32]), LogError>> {
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
        self.checkpoint = load_checkpoint(&self.inner.db)?;
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
        self.expect = match self.inner.db.get_pinned(key(anchor))? {
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
        let fresh = load_checkpoint(&self.inner.db)?;
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
        let mut it = self.inner.db.raw_iterator();
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

/// The private directory of a secondary (read-only) RocksDB instance; removed on drop.
struct SecondaryDir(PathBuf);

impl SecondaryDir {
    fn create() -> Result<SecondaryDir, LogError> {
        let path = std::env::temp_dir().join(format!(
            "piston-eventlog-ro-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| LogError::Storage(format!("cannot create {}: {e}", path.display())))?;
        Ok(SecondaryDir(path))
    }
}

impl Drop for SecondaryDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            debug!(path = %self.0.display(), error = %e, "cannot remove secondary directory");
        }
    }
}
