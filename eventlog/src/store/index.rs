//! Derived lookups kept beside the records: secondary indexes (`index` column family) and
//! unique keys (`unique` column family), both computed from each event by the caller's
//! [`Indexer`], so that the log itself still never interprets events. The key layouts and
//! the guarantees are in the `codec` module documentation.
//!
//! It runs past 500 lines because it holds both sides of one layout: its upkeep on the
//! writer's side (admitting appends, rebuilding) and the public operations that read it
//! (scans, unique lookups, rebuild and verify).

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ReadOptions, WriteBatch, WriteOptions, DB};
use tracing::{debug, info, warn};

use super::codec::{
    cf, corrupt, decode_body, key, open_envelope, parse_key, INDEX_CF, META_CF, UNIQUE_CF,
};
use super::{lock, EventLog};
use crate::error::LogError;
use crate::record::Event;

#[cfg(test)]
mod tests;

/// Names one secondary index (the caller decides what each number means).
pub type IndexId = u8;

/// What the [`Indexer`] derives from one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexKeys {
    /// At most one record per unique key: an event whose key is already taken is skipped by
    /// `append` (see [`EventLog::append`]). Ignored for [`Event::LogPruned`] checkpoints.
    pub unique: Option<Vec<u8>>,
    /// `(index, entry key)` pairs under which the record is found by
    /// [`EventLog::scan_index`]. An entry key is at most [`MAX_ENTRY_KEY_LEN`] bytes.
    pub entries: Vec<(IndexId, Vec<u8>)>,
}

/// Derives the [`IndexKeys`] of an event. Must be a pure function of the event (the same
/// keys every time: prune and rebuild recompute them), quick (it runs on the writer thread)
/// and should not panic (a panic is caught and fails the append as [`LogError::Encode`]).
pub type Indexer = Arc<dyn Fn(&Event) -> IndexKeys + Send + Sync>;

/// The longest entry key an index can hold (its length is stored in two bytes).
pub const MAX_ENTRY_KEY_LEN: usize = u16::MAX as usize;

/// The key, in the `meta` column family, of the marker that says the indexes are complete.
const BUILT_KEY: &[u8] = b"indexes_built";

/// The version of the index layout, the first part of the built marker's value. Another
/// value (or no marker) means the indexes must be rebuilt before they are trusted.
const INDEX_FORMAT_VERSION: u16 = 1;

/// The built marker's value for indexes built by an indexer of `indexer_version`: the
/// layout version, followed by the indexer version (`u32` big-endian) unless it is 0 (so
/// markers written before indexer versions existed read as version 0).
fn built_marker(indexer_version: u32) -> Vec<u8> {
    let mut marker = INDEX_FORMAT_VERSION.to_be_bytes().to_vec();
    if indexer_version != 0 {
        marker.extend_from_slice(&indexer_version.to_be_bytes());
    }
    marker
}

/// How many records a rebuild indexes per (unsynced) write.
const REBUILD_CHUNK: u64 = 16_384;

/// `[index] ++ len_be2 ++ entry_key`: the part of an index key before the seq; `None` when
/// the entry key is too long to be stored.
fn entry_prefix(index: IndexId, entry_key: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(entry_key.len()).ok()?;
    let mut k = Vec::with_capacity(3 + entry_key.len() + 8);
    k.push(index);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(entry_key);
    Some(k)
}

/// `[index] ++ len_be2 ++ entry_key ++ seq_be8`: the stored key of one index entry.
fn entry_key(index: IndexId, entry_key: &[u8], seq: u64) -> Option<Vec<u8>> {
    let mut k = entry_prefix(index, entry_key)?;
    k.extend_from_slice(&key(seq));
    Some(k)
}

/// Splits a stored index key into its index, entry key and seq.
fn split_entry(k: &[u8]) -> Option<(IndexId, &[u8], u64)> {
    let (&index, rest) = k.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() != len + 8 {
        return None;
    }
    let (entry, seq) = rest.split_at(len);
    Some((index, entry, parse_key(seq)?))
}

/// The seq a unique key maps to.
fn parse_unique_value(unique: &[u8], value: &[u8]) -> Result<u64, LogError> {
    parse_key(value).ok_or_else(|| {
        LogError::Index(format!(
            "unique key {} holds {} bytes, not a sequence number",
            hex::encode(unique),
            value.len()
        ))
    })
}

/// The keys `indexer` derives from `event`, with a checkpoint's unique key dropped. A
/// panicking indexer is an error, not a dead writer thread.
pub(super) fn keys_for(indexer: &Indexer, event: &Event) -> Result<IndexKeys, LogError> {
    let mut keys = panic::catch_unwind(AssertUnwindSafe(|| indexer(event))).map_err(|_| {
        LogError::Encode(format!("the indexer panicked on a {} event", event.kind()))
    })?;
    if let Event::LogPruned { .. } = event {
        keys.unique = None;
    }
    Ok(keys)
}

/// The built marker, if any (whatever layout and indexer version it names).
fn marker(db: &DB) -> Result<Option<Vec<u8>>, LogError> {
    let Some(meta) = db.cf_handle(META_CF) else {
        return Ok(None);
    };
    Ok(db.get_cf(meta, BUILT_KEY)?)
}

/// Whether the built marker says the indexes are complete, of this layout, and derived by
/// an indexer of `indexer_version`.
pub(super) fn is_built(db: &DB, indexer_version: u32) -> Result<bool, LogError> {
    Ok(marker(db)?.is_some_and(|v| v == built_marker(indexer_version)))
}

/// Whether any built marker is stored (a write without indexer must remove it).
pub(super) fn has_marker(db: &DB) -> Result<bool, LogError> {
    Ok(marker(db)?.is_some())
}

/// Adds the removal of the built marker to `batch` (a write by a log without indexer makes
/// the indexes incomplete).
pub(super) fn unmark_built(meta: &ColumnFamily, batch: &mut WriteBatch) {
    batch.delete_cf(meta, BUILT_KEY);
}

/// The index families, as the writer uses them.
pub(super) struct IndexFamilies<'a> {
    index: &'a ColumnFamily,
    unique: &'a ColumnFamily,
}

impl<'a> IndexFamilies<'a> {
    pub(super) fn of(db: &'a DB) -> Result<IndexFamilies<'a>, LogError> {
        Ok(IndexFamilies {
            index: cf(db, INDEX_CF)?,
            unique: cf(db, UNIQUE_CF)?,
        })
    }

    /// Adds the index entries and the unique key of record `seq` to `batch`. Entry keys too
    /// long to store are skipped with a warning (the writer refuses them before this).
    pub(super) fn put(&self, batch: &mut WriteBatch, seq: u64, keys: &IndexKeys) {
        for (index, entry) in &keys.entries {
            match entry_key(*index, entry, seq) {
                Some(k) => batch.put_cf(self.index, k, []),
                None => warn!(
                    seq,
                    index,
                    len = entry.len(),
                    "event log: index entry too long"
                ),
            }
        }
        if let Some(unique) = &keys.unique {
            batch.put_cf(self.unique, unique, key(seq));
        }
    }

    /// Whether `unique` is taken in the stored log.
    fn unique_taken(&self, db: &DB, unique: &[u8]) -> Result<bool, LogError> {
        Ok(db.get_pinned_cf(self.unique, unique)?.is_some())
    }

    /// The seq that holds `unique` in the stored log.
    pub(super) fn unique_holder(&self, db: &DB, unique: &[u8]) -> Result<Option<u64>, LogError> {
        match db.get_pinned_cf(self.unique, unique)? {
            Some(value) => parse_unique_value(unique, &value).map(Some),
            None => Ok(None),
        }
    }
}

/// The stored keys of the index entries of record `seq` (entry keys too long to be stored
/// have none).
pub(super) fn entry_keys(
    seq: u64,
    entries: &[(IndexId, Vec<u8>)],
) -> impl Iterator<Item = Vec<u8>> + '_ {
    entries
        .iter()
        .filter_map(move |(index, entry)| entry_key(*index, entry, seq))
}

/// One caller's events that the writer admits, with their keys.
pub(super) struct Admitted {
    /// The events to append, in the caller's order.
    pub(super) events: Vec<Event>,
    /// Their keys, one per event.
    pub(super) keys: Vec<IndexKeys>,
    /// How many events were skipped as duplicates.
    pub(super) skipped: usize,
}

/// Computes the keys of `events` and drops every event whose unique key is taken: stored
/// already, in `taken` (claimed earlier in this group commit) or earlier in `events`.
/// Touches neither `taken` nor the database; the caller claims the admitted unique keys once
/// the events are encoded. Fails (for this caller only) when the indexer panics or gives an
/// entry key too long to store.
pub(super) fn admit(
    db: &DB,
    families: &IndexFamilies<'_>,
    indexer: &Indexer,
    events: Vec<Event>,
    taken: &HashSet<Vec<u8>>,
) -> Result<Admitted, LogError> {
    let mut admitted = Admitted {
        events: Vec::with_capacity(events.len()),
        keys: Vec::with_capacity(events.len()),
        skipped: 0,
    };
    let mut mine: HashSet<&[u8]> = HashSet::new();
    let mut all_keys = Vec::with_capacity(events.len());
    for event in &events {
        let keys = keys_for(indexer, event)?;
        if let Some((index, entry)) = keys
            .entries
            .iter()
            .find(|(_, entry)| entry.len() > MAX_ENTRY_KEY_LEN)
        {
            return Err(LogError::Encode(format!(
                "index {index} entry key is {} bytes, more than {MAX_ENTRY_KEY_LEN}",
                entry.len()
            )));
        }
        all_keys.push(keys);
    }
    let mut keep = Vec::with_capacity(events.len());
    for keys in &all_keys {
        let admit = match &keys.unique {
            None => true,
            Some(unique) => {
                let free = !taken.contains(unique)
                    && !mine.contains(unique.as_slice())
                    && !families.unique_taken(db, unique)?;
                if free {
                    mine.insert(unique);
                } else {
                    debug!(key = %hex::encode(unique), "event log: duplicate unique key skipped");
                }
                free
            }
        };
        keep.push(admit);
    }
    for ((event, keys), admit) in events.into_iter().zip(all_keys).zip(keep) {
        if admit {
            admitted.events.push(event);
            admitted.keys.push(keys);
        } else {
            admitted.skipped += 1;
        }
    }
    Ok(admitted)
}

/// Empties a column family, in `batch`, with one range deletion over all its keys.
fn clear(db: &DB, cf: &ColumnFamily, batch: &mut WriteBatch) -> Result<(), LogError> {
    let mut it = db.raw_iterator_cf(cf);
    it.seek_to_last();
    match it.key() {
        Some(last) => {
            // The smallest key after `last`: the range covers every key up to it.
            let mut end = last.to_vec();
            end.push(0);
            batch.delete_range_cf(cf, Vec::new(), end);
        }
        None => it.status()?,
    }
    Ok(())
}

/// Empties both index families and recomputes them from every present record, then marks
/// them built by an indexer of `indexer_version`; returns how many records were indexed.
///
/// Must not run beside the writer (it runs before the writer starts, or on it). The marker
/// is removed first, so a crash part way leaves indexes that the next open rebuilds. Each
/// record is checked on its own (hash, version, body) but the chain is not walked (that is
/// `verify`'s work); a record that fails its check fails the rebuild. When several records
/// share a unique key (a log written before the key was enforced), the first one keeps it.
pub(super) fn rebuild(db: &DB, indexer: &Indexer, indexer_version: u32) -> Result<u64, LogError> {
    let families = IndexFamilies::of(db)?;
    let meta = cf(db, META_CF)?;
    let mut batch = WriteBatch::default();
    unmark_built(meta, &mut batch);
    clear(db, families.index, &mut batch)?;
    clear(db, families.unique, &mut batch)?;
    db.write(batch)?;

    let mut records = 0u64;
    let mut batch = WriteBatch::default();
    let mut claimed: HashSet<Vec<u8>> = HashSet::new();
    let mut it = db.raw_iterator();
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        let seq = parse_key(k).ok_or_else(|| {
            corrupt(
                0,
                format!("key {} is not a sequence number", hex::encode(k)),
            )
        })?;
        let checked = open_envelope(seq, v)?;
        let event = decode_body(seq, &checked.body)?;
        let mut keys = keys_for(indexer, &event)?;
        if let Some(unique) = keys.unique.take() {
            // Earlier chunks are written already; this chunk's claims are in `claimed`.
            if !claimed.contains(&unique) && !families.unique_taken(db, &unique)? {
                keys.unique = Some(unique.clone());
                claimed.insert(unique);
            }
        }
        families.put(&mut batch, seq, &keys);
        records += 1;
        if records.is_multiple_of(REBUILD_CHUNK) {
            db.write(std::mem::take(&mut batch))?;
            claimed.clear();
            info!(records, seq, "event log: building indexes");
        }
        it.next();
    }
    it.status()?;
    batch.put_cf(meta, BUILT_KEY, built_marker(indexer_version));
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    db.write_opt(batch, &sync)?;
    info!(records, indexer_version, "event log: indexes built");
    Ok(records)
}

impl EventLog {
    /// The seqs of the records indexed under exactly `(index, entry_key)`, in seq order
    /// (`ascending`, or descending), from `start` inclusive (ascending: seqs `>= start`;
    /// descending: seqs `<= start`; `None` is the first or the last), at most `limit`.
    ///
    /// Only records written while the log had an indexer (or covered by a rebuild since)
    /// are indexed. Unknown keys, too long keys and a log without index column family (a
    /// read-only open of an older log) give an empty vector. The result is consistent with
    /// the records: entries are written and pruned in the same atomic batch as their
    /// records, so every seq returned was present when the scan started (a prune may
    /// remove it before the caller reads it). Works on read-only logs (as of their last
    /// [`EventLog::catch_up`]) and needs no indexer.
    pub fn scan_index(
        &self,
        index: IndexId,
        entry_key: &[u8],
        start: Option<u64>,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<u64>, LogError> {
        let db = &self.inner.db;
        let Some(cf) = db.cf_handle(INDEX_CF) else {
            return Ok(Vec::new());
        };
        let Some(prefix) = entry_prefix(index, entry_key) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let at = |seq: u64| {
            let mut k = prefix.clone();
            k.extend_from_slice(&key(seq));
            k
        };
        // The prefix is self-delimiting (length first), so these bounds hold exactly the
        // entries of this key: `prefix ++ 0x00 * 8` up to just past `prefix ++ 0xff * 8`.
        let mut upper = at(u64::MAX);
        upper.push(0);
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(at(0));
        opts.set_iterate_upper_bound(upper);
        let mut it = db.raw_iterator_cf_opt(cf, opts);
        if ascending {
            it.seek(at(start.unwrap_or(0)));
        } else {
            it.seek_for_prev(at(start.unwrap_or(u64::MAX)));
        }
        let mut seqs = Vec::new();
        while seqs.len() < limit {
            let Some(k) = it.key() else { break };
            let seq = k
                .strip_prefix(prefix.as_slice())
                .and_then(parse_key)
                .ok_or_else(|| {
                    LogError::Index(format!("malformed index key {}", hex::encode(k)))
                })?;
            seqs.push(seq);
            if ascending {
                it.next();
            } else {
                it.prev();
            }
        }
        it.status()?;
        Ok(seqs)
    }

    /// The seq of the record that holds the unique key `key`, or `None`.
    ///
    /// Keys of pruned records are released by the prune (see [`EventLog::prune`]): dedup
    /// holds within retention. Works on read-only logs and needs no indexer; a log without
    /// the `unique` column family gives `None`.
    pub fn unique_seq(&self, key: &[u8]) -> Result<Option<u64>, LogError> {
        let db = &self.inner.db;
        let Some(cf) = db.cf_handle(UNIQUE_CF) else {
            return Ok(None);
        };
        match db.get_pinned_cf(cf, key)? {
            Some(value) => parse_unique_value(key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// Empties both index column families and recomputes them from every record present,
    /// with this log's indexer; returns how many records were indexed.
    ///
    /// An open with another [`OpenOptions::indexer_version`] rebuilds by itself; call this
    /// to rebuild a log that stays open. Runs on the writer thread, so appends wait until
    /// it is done (and prunes too); like `append`, it must not be called from the commit
    /// hook, and it blocks. Records are checked on their own (not the chain) and a damaged
    /// one fails the rebuild, leaving the indexes marked incomplete until a later rebuild
    /// (at the latest the next open) succeeds. When several records share a unique key
    /// (written before the key was enforced), the first keeps it.
    /// [`LogError::NoIndexer`] without an indexer, [`LogError::ReadOnly`] when read-only.
    ///
    /// [`OpenOptions::indexer_version`]: crate::OpenOptions::indexer_version
    pub fn rebuild_indexes(&self) -> Result<u64, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        if self.inner.indexer.is_none() {
            return Err(LogError::NoIndexer);
        }
        let _no_prune = lock(&self.inner.prune_lock);
        self.rebuild_on_writer()
    }

    /// Checks the indexes against the records, with this log's indexer; returns how many
    /// records were checked. `verify` does not look at indexes (they are derived data);
    /// this does, and reports the first disagreement as [`LogError::Index`]:
    ///
    /// - every index entry of every present record is stored, and every unique key of a
    ///   present record is stored and maps to a present record (the same or an earlier one)
    ///   that derives that key;
    /// - every stored entry and unique key belongs to a present record that derives it.
    ///
    /// Records are read as by [`EventLog::iter_from`]`(1)`, so a damaged log fails with
    /// the record's error. Prunes wait until it is done; appends may go on. Costs a walk
    /// of the log plus one record read per stored entry. [`LogError::NoIndexer`] without an
    /// indexer.
    pub fn verify_indexes(&self) -> Result<u64, LogError> {
        let indexer = self.inner.indexer.as_ref().ok_or(LogError::NoIndexer)?;
        let _no_prune = lock(&self.inner.prune_lock);
        let db = &self.inner.db;
        let families = IndexFamilies::of(db).map_err(|e| LogError::Index(e.to_string()))?;
        let mut records = 0u64;
        for record in self.iter_from(1) {
            let record = record?;
            let seq = record.seq;
            let keys = keys_for(indexer, &record.event)?;
            for (index, entry) in &keys.entries {
                let stored = match entry_key(*index, entry, seq) {
                    Some(k) => db.get_pinned_cf(families.index, k)?.is_some(),
                    None => continue,
                };
                if !stored {
                    return Err(LogError::Index(format!(
                        "record {seq} is missing from index {index} under {}",
                        hex::encode(entry)
                    )));
                }
            }
            if let Some(unique) = &keys.unique {
                let holder = match db.get_pinned_cf(families.unique, unique)? {
                    Some(value) => parse_unique_value(unique, &value)?,
                    None => {
                        return Err(LogError::Index(format!(
                            "the unique key {} of record {seq} is not stored",
                            hex::encode(unique)
                        )))
                    }
                };
                if holder > seq {
                    return Err(LogError::Index(format!(
                        "the unique key {} of record {seq} names the later record {holder}",
                        hex::encode(unique)
                    )));
                }
            }
            records += 1;
        }

        let derived = |seq: u64| -> Result<IndexKeys, LogError> {
            let value = db.get_pinned(key(seq))?.ok_or_else(|| {
                LogError::Index(format!("an index names record {seq}, which is not stored"))
            })?;
            let checked = open_envelope(seq, &value)?;
            keys_for(indexer, &decode_body(seq, &checked.body)?)
        };
        let mut it = db.raw_iterator_cf(families.index);
        it.seek_to_first();
        while let Some(k) = it.key() {
            let (index, entry, seq) = split_entry(k).ok_or_else(|| {
                LogError::Index(format!("malformed index key {}", hex::encode(k)))
            })?;
            if !derived(seq)?
                .entries
                .iter()
                .any(|(i, e)| *i == index && e == entry)
            {
                return Err(LogError::Index(format!(
                    "index {index} holds record {seq} under {}, which it does not derive",
                    hex::encode(entry)
                )));
            }
            it.next();
        }
        it.status()?;
        let mut it = db.raw_iterator_cf(families.unique);
        it.seek_to_first();
        while let Some((unique, value)) = it.item() {
            let seq = parse_unique_value(unique, value)?;
            if derived(seq)?.unique.as_deref() != Some(unique) {
                return Err(LogError::Index(format!(
                    "the unique key {} names record {seq}, which does not derive it",
                    hex::encode(unique)
                )));
            }
            it.next();
        }
        it.status()?;
        Ok(records)
    }
}
