//! The storage engine's façade: [`EventLog`], a hash-chained, append-only log of
//! [`Record`]s in RocksDB — open, append, read, verify, close.
//!
//! The parts below it, from the bottom up: `codec` (the on-disk format, specified in its
//! module documentation, and the encoding of records; it imports none of the others),
//! `checkpoint` (the prune checkpoint as stored), `iter` ([`LogIter`], the verified walk)
//! and `writer` (the thread that group-commits appends). The features `index`, `prune` and
//! `snapshot` add their own methods to [`EventLog`] (so they see its state), and take what
//! they encode and decode from the codec. Beside them, `health` ([`LogHealth`], which the
//! writer publishes) and `fault` (test-only fault injection from the environment:
//! `PISTON_FAULT_DISK_FULL`, and the `PISTON_FAULT_PAUSE` points `snapshot.write` and
//! `prune.batch`; see that module). Must not: encode or decode a record itself, or
//! interpret events.
//!
//! It runs past 500 lines because it is the log's public surface (three ways to open, the
//! append entry points, reads, verify, close), whose contracts are documented where they
//! are declared.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options, DB, DEFAULT_COLUMN_FAMILY_NAME};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::error::LogError;
use crate::record::{Event, Record};

mod checkpoint;
mod codec;
mod fault;
mod health;
mod index;
mod iter;
mod prune;
mod snapshot;
mod writer;

#[cfg(test)]
mod tests;

pub use codec::{decode_stored_record, encode_stored_record};
pub use health::LogHealth;
pub use index::{IndexId, IndexKeys, Indexer, MAX_ENTRY_KEY_LEN};
pub use iter::LogIter;
pub use prune::PruneSummary;
pub use snapshot::Snapshot;
pub use writer::{now_ms, CommitHook, WriteObserver, WriteStats};

use checkpoint::PendingCheckpoint;
use codec::{corrupt, decode_body, open_envelope, parse_key, COLUMN_FAMILIES, GENESIS_PREV_HASH};
use fault::Faults;
use writer::{Job, Reply, Request, Shared, Writer};

/// How [`EventLog::open_with`] opens a log for writing.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Called for every record committed from now on; see [`CommitHook`].
    pub on_commit: Option<CommitHook>,
    /// Told of every durable group commit (for metrics); see [`WriteObserver`].
    pub on_write: Option<WriteObserver>,
    /// Derives the index entries and unique key of every event; see [`Indexer`] and the
    /// `codec` module documentation. Without one, appends maintain no index and skip nothing.
    pub indexer: Option<Indexer>,
    /// The version of what `indexer` derives: raise it whenever the indexer derives other
    /// keys or entries for some event. It is stored with the indexes when they are built,
    /// and an open with another version rebuilds them. Logs indexed before versions existed
    /// count as version 0. Ignored without an indexer.
    pub indexer_version: u32,
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("on_commit", &self.on_commit.is_some())
            .field("on_write", &self.on_write.is_some())
            .field("indexer", &self.indexer.is_some())
            .field("indexer_version", &self.indexer_version)
            .finish()
    }
}

/// The WAL size past which RocksDB flushes the column families that pin old WAL files.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;

/// The memory all column families' memtables may hold together before RocksDB flushes.
const MAX_MEMTABLE_BYTES: usize = 32 << 20;

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
    /// The faults to inject (tests only; none in production).
    faults: Arc<Faults>,
    _secondary: Option<SecondaryDir>,
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
                ..OpenOptions::default()
            },
        )
    }

    /// Opens (creating if missing) the log in `dir` for reading and appending, with a
    /// commit hook and an indexer, and starts its writer thread; see [`EventLog::open`].
    ///
    /// With an indexer, the indexes are rebuilt from the records before the open returns
    /// when they are not marked complete for this [`OpenOptions::indexer_version`]: a log
    /// written before indexes existed, or last appended to (or pruned) by an open without
    /// indexer, or whose last rebuild did not finish, or indexed by another version of the
    /// indexer. That reads the whole log once (progress is logged). Without an indexer,
    /// the first write marks the indexes incomplete, so that the next open with an
    /// indexer rebuilds them.
    ///
    /// A rebuild checks each record on its own (not the chain): a damaged record then
    /// refuses the open, as it would refuse a replay.
    ///
    /// Reads the fault-injection variables of the `fault` module once (tests only).
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<EventLog, LogError> {
        EventLog::open_with_faults(dir, options, Faults::from_env())
    }

    /// [`EventLog::open_with`] with the faults a test injects, whatever the environment.
    pub(crate) fn open_with_faults(
        dir: &Path,
        options: OpenOptions,
        faults: Faults,
    ) -> Result<EventLog, LogError> {
        let OpenOptions {
            on_commit,
            on_write,
            indexer,
            indexer_version,
        } = options;
        let faults = Arc::new(faults);
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
        let families = COLUMN_FAMILIES.map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf_opts)
        });
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir, families)?);
        let (last_seq, last_hash) = read_tail(&db)?;
        let marked = index::has_marker(&db)?;
        if let Some(indexer) = &indexer {
            if !index::is_built(&db, indexer_version)? {
                info!(
                    dir = %dir.display(),
                    last_seq,
                    indexer_version,
                    "event log: indexes are not built by this indexer version, building"
                );
                index::rebuild(&db, indexer, indexer_version)?;
            }
        }
        let shared = Arc::new(Shared::new(last_seq));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            shared: Arc::clone(&shared),
            hook: on_commit,
            on_write,
            indexer: indexer.clone(),
            indexer_version,
            unmark_built: indexer.is_none() && marked,
            last_seq,
            last_hash,
            faults: Arc::clone(&faults),
        };
        let handle = writer.spawn(rx)?;
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
                faults,
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
        let families: Vec<&str> = COLUMN_FAMILIES
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
                shared: Arc::new(Shared::new(last_seq)),
                tx: Mutex::new(None),
                writer: Mutex::new(None),
                prune_lock: Mutex::new(()),
                snapshot_lock: Mutex::new(()),
                read_only: true,
                indexer: None,
                faults: Arc::new(Faults::default()),
                _secondary: Some(secondary),
            }),
        })
    }

    /// Appends `events` as consecutive records and returns the records actually appended
    /// once they are durable.
    ///
    /// Concurrent appends are group-committed: one synced write for all of them, in arrival
    /// order, each caller's events kept together. An empty `events` returns an empty vector
    /// without writing. If the write fails ([`LogError::Unwritable`]: disk full, I/O error),
    /// nothing of this call is in the log, and [`EventLog::health`] says the log is failing
    /// until a write succeeds again; meanwhile appends fail without waiting. If the future
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
        // Counted before the send, so the writer never takes a job it has not counted.
        let queued = &self.inner.shared.queued;
        queued.fetch_add(1, Ordering::AcqRel);
        tx.send(job).map_err(|_| {
            queued.fetch_sub(1, Ordering::AcqRel);
            LogError::Closed
        })
    }

    /// How many jobs (appends, prune checkpoints, rebuilds) were sent to the writer thread
    /// and not received by it yet: tests wait on it instead of sleeping.
    #[cfg(test)]
    pub(crate) fn queued_jobs(&self) -> u64 {
        self.inner.shared.queued.load(Ordering::Acquire)
    }

    /// Whether appends can succeed now, as the writer's last write showed; see
    /// [`LogHealth`]. Cheap (a lock and a clone), for health checks. Always
    /// [`LogHealth::Stopped`] when read-only.
    pub fn health(&self) -> LogHealth {
        if self.inner.read_only {
            return LogHealth::Stopped;
        }
        self.inner.shared.health.get()
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
    /// is when each chunk is read, each checked as described in the `codec` module documentation.
    ///
    /// When starting after 1, record `from_seq - 1` is read first (and its hash checked) to
    /// seed the chain; if it is missing while later records exist, that is a
    /// [`LogError::Gap`]. After the first error the iterator yields that error and ends.
    ///
    /// On a pruned log, starting inside the pruned region yields its present records
    /// (each checked on its own) and then the chain; starting at `cut_seq + 1` seeds the
    /// chain with the checkpoint's `cut_hash`. Only a walk from 1 checks the region's
    /// digest. See the `codec` module documentation.
    pub fn iter_from(&self, from_seq: u64) -> LogIter {
        let log: Arc<dyn Send + Sync> = self.inner.clone();
        LogIter::new(Arc::clone(&self.inner.db), log, from_seq)
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
        let last_hash = it.last_hash();
        let checkpoint = it.checkpoint();
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
