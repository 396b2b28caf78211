//! The on-disk format of the log, specified below, and the encoding of its records: the
//! column families, the record keys, the envelope, the record hash, and the checks a reader
//! makes of one stored value.
//!
//! Everything under `store` that reads or writes a record's bytes goes through here: the
//! writer, the iterator, the indexes, prune and snapshots import it; it imports none of
//! them. Must not: read or write the database (it names the column families and looks up
//! their handles, nothing more), or interpret events beyond (de)serialising them. The
//! snapshot, checkpoint and index values it specifies are encoded beside the code that
//! owns them (`snapshot`, `checkpoint`, `index`).
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
//! - `meta` column family, key `indexes_built`: once the indexes are complete, the index
//!   layout version (`u16` big-endian, 1), followed by the version of the indexer that
//!   built them (`OpenOptions::indexer_version`, `u32` big-endian) unless that is 0.
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
//! missing or names another layout or another indexer version (a log from before indexes,
//! or after such a write, or after an interrupted rebuild, or indexed by an indexer that
//! derived other keys). The log cannot tell by itself that the indexer changed what it
//! derives: the caller says so by raising `indexer_version` (or calls `rebuild_indexes`).
//!
//! [`EventLog`]: crate::EventLog
//! [`EventLog::save_snapshot`]: crate::EventLog::save_snapshot
//! [`EventLog::load_snapshot`]: crate::EventLog::load_snapshot
//! [`EventLog::prune`]: crate::EventLog::prune
//! [`EventLog::verify`]: crate::EventLog::verify
//! [`EventLog::open_with`]: crate::EventLog::open_with
//! [`EventLog::scan_index`]: crate::EventLog::scan_index
//! [`EventLog::unique_seq`]: crate::EventLog::unique_seq
//! [`EventLog::verify_indexes`]: crate::EventLog::verify_indexes
//! [`EventLog::rebuild_indexes`]: crate::EventLog::rebuild_indexes
//! [`VerifySummary::last_hash`]: crate::VerifySummary::last_hash
//! [`Indexer`]: crate::Indexer
//! [`IndexKeys`]: crate::IndexKeys
//! [`MAX_ENTRY_KEY_LEN`]: crate::MAX_ENTRY_KEY_LEN

use std::io::Cursor;

use rocksdb::{ColumnFamily, DB, DEFAULT_COLUMN_FAMILY_NAME};
use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::record::{Event, Record, RECORD_VERSION};

#[cfg(test)]
mod tests;

/// The column family of snapshots; see the module documentation.
pub(super) const SNAPSHOTS_CF: &str = "snapshots";

/// The column family of log metadata (the prune checkpoint, the indexes' built marker).
pub(super) const META_CF: &str = "meta";

/// The column family of index entries; see the module documentation.
pub(super) const INDEX_CF: &str = "index";

/// The column family of unique keys; see the module documentation.
pub(super) const UNIQUE_CF: &str = "unique";

/// Every column family of the log: records in the default one, then the four others.
pub(super) const COLUMN_FAMILIES: [&str; 5] = [
    DEFAULT_COLUMN_FAMILY_NAME,
    SNAPSHOTS_CF,
    META_CF,
    INDEX_CF,
    UNIQUE_CF,
];

/// The `prev_hash` of the first record.
pub(super) const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// A column family a writable log always has.
pub(super) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, LogError> {
    db.cf_handle(name)
        .ok_or_else(|| LogError::Storage(format!("no `{name}` column family")))
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
pub(super) struct Checked {
    pub(super) time_ms: u64,
    pub(super) prev_hash: [u8; 32],
    pub(super) hash: [u8; 32],
    pub(super) body: Vec<u8>,
}

/// Byte fields as msgpack `bin` (serde would otherwise write arrays of integers).
pub(super) mod bin {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(in crate::store) fn serialize<S: Serializer>(
        bytes: &[u8],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(in crate::store) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<u8>, D::Error> {
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
pub(super) fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number of a RocksDB key, if it is one.
pub(super) fn parse_key(k: &[u8]) -> Option<u64> {
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

/// A [`LogError::Corrupt`] at record `seq`.
pub(super) fn corrupt(seq: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        seq,
        reason: reason.into(),
    }
}

/// Encodes `event` as record `seq`; returns the stored value and the record's hash.
pub(super) fn encode_record(
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
pub(super) fn open_envelope(seq: u64, value: &[u8]) -> Result<Checked, LogError> {
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
pub(super) fn decode_body(seq: u64, body: &[u8]) -> Result<Event, LogError> {
    rmp_serde::from_slice(body).map_err(|e| corrupt(seq, format!("undecodable event: {e}")))
}

/// Checks the value stored as record `seq`, whose predecessor's hash is `prev_hash`;
/// returns the record and its hash.
pub(super) fn check_value(
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

/// Encodes `events` as the records after `seq`, each chained to the one before (the first
/// to `prev_hash`); returns the values and the hash of the last one.
pub(super) fn encode_chain(
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
