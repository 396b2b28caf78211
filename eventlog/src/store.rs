//! The storage engine: a hash-chained, append-only log of [`Record`]s in RocksDB.
//!
//! Owns the on-disk format, the single writer thread that group-commits appends, and
//! verified reads (decode, version, hash, sequence continuity and chain, record by record).
//!
//! # On-disk format
//!
//! One RocksDB key per record: the record's `seq` as 8 bytes big-endian, so key order is
//! append order. Sequence numbers start at 1 and have no gaps.
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

use std::collections::VecDeque;
use std::fmt;
use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{DBCompressionType, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::error::LogError;
use crate::record::{Event, Record, RECORD_VERSION};

#[cfg(test)]
mod tests;

/// Called on the writer thread for every committed record, in log order, after the record
/// is durable and before the appending caller is answered.
///
/// It runs on the single writer thread, so it must be quick and must not append to the log
/// (that would wait for itself). A panic in the hook is caught and logged.
pub type CommitHook = Arc<dyn Fn(&Record) + Send + Sync>;

/// The `prev_hash` of the first record.
const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// Soft cap on the events of one group commit: the writer stops draining the queue once a
/// batch holds this many, so one huge burst does not build an unbounded `WriteBatch`.
const MAX_BATCH_EVENTS: usize = 4096;

/// How many raw records a [`LogIter`] reads from RocksDB at a time.
const READ_CHUNK: usize = 256;

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
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    read_only: bool,
    _secondary: Option<SecondaryDir>,
}

/// Counters the writer publishes for readers.
struct Shared {
    last_seq: AtomicU64,
    batches: AtomicU64,
}

/// One caller's append, queued for the writer thread.
struct Request {
    events: Vec<Event>,
    reply: Reply,
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

fn now_ms() -> u64 {
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
    pub fn open(dir: &Path, on_commit: Option<CommitHook>) -> Result<EventLog, LogError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        let db = Arc::new(DB::open(&opts, dir)?);
        let (last_seq, last_hash) = read_tail(&db)?;
        let shared = Arc::new(Shared {
            last_seq: AtomicU64::new(last_seq),
            batches: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            shared: Arc::clone(&shared),
            hook: on_commit,
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
                read_only: false,
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
    /// [`LogError::ReadOnly`].
    pub fn open_read_only(dir: &Path) -> Result<EventLog, LogError> {
        let secondary = SecondaryDir::create()?;
        let mut opts = Options::default();
        // RocksDB requires secondaries to keep every file open, as they cannot follow
        // deletions of files they have not opened yet.
        opts.set_max_open_files(-1);
        let db = DB::open_as_secondary(&opts, dir, secondary.0.as_path())?;
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
                read_only: true,
                _secondary: Some(secondary),
            }),
        })
    }

    /// Appends `events` as consecutive records and returns them once they are durable.
    ///
    /// Concurrent appends are group-committed: one synced write for all of them, in arrival
    /// order, each caller's events kept together. An empty `events` returns an empty vector
    /// without writing. If the write fails, nothing of this call is in the log. If the future
    /// is dropped after the request was queued, the events may still be committed.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<Record>, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.submit(Request {
            events,
            reply: Reply::Async(tx),
        })?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// [`EventLog::append`] for code outside an async runtime: blocks until durable.
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<Vec<Record>, LogError> {
        if self.inner.read_only {
            return Err(LogError::ReadOnly);
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Request {
            events,
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| LogError::Closed)?
    }

    fn submit(&self, request: Request) -> Result<(), LogError> {
        let guard = lock(&self.inner.tx);
        let tx = guard.as_ref().ok_or(LogError::Closed)?;
        tx.send(request).map_err(|_| LogError::Closed)
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
    pub fn iter_from(&self, from_seq: u64) -> LogIter {
        LogIter {
            inner: Arc::clone(&self.inner),
            next_seq: from_seq.max(1),
            expect: Expect::Unresolved,
            buf: VecDeque::new(),
            source_done: false,
            done: false,
        }
    }

    /// Walks and checks the whole log; the first problem found is the error.
    ///
    /// A read-only log is verified as of its last [`EventLog::catch_up`].
    pub fn verify(&self) -> Result<VerifySummary, LogError> {
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
            Expect::Unresolved | Expect::MissingAnchor => GENESIS_PREV_HASH,
        };
        Ok(VerifySummary {
            records,
            first_seq,
            last_seq,
            last_hash: hex::encode(last_hash),
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

/// The writer thread's state: it alone knows the tail of the chain.
struct Writer {
    db: Arc<DB>,
    shared: Arc<Shared>,
    hook: Option<CommitHook>,
    last_seq: u64,
    last_hash: [u8; 32],
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        // `recv` fails only once every sender is gone and the queue is empty.
        while let Ok(first) = rx.recv() {
            let mut events = first.events.len();
            let mut requests = vec![first];
            while events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        requests.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit(requests, &sync);
        }
        // Every write was synced already; this is belt and braces for a clean shutdown.
        if let Err(e) = self.db.flush_wal(true) {
            warn!(error = %e, "event log: flushing the write-ahead log at close failed");
        }
        debug!(last_seq = self.last_seq, "event log writer stopped");
    }

    /// Writes `requests` in one synced batch, then runs the hook and answers the callers.
    fn commit(&mut self, requests: Vec<Request>, sync: &WriteOptions) {
        let time_ms = now_ms();
        let mut batch = WriteBatch::default();
        let mut seq = self.last_seq;
        let mut hash = self.last_hash;
        let mut accepted: Vec<(Reply, Vec<Record>)> = Vec::with_capacity(requests.len());
        for Request { events, reply } in requests {
            match encode_request(seq, &hash, time_ms, &events) {
                Ok((values, end_hash)) => {
                    let records: Vec<Record> = events
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
        if accepted.is_empty() {
            return;
        }
        if let Err(e) = self.db.write_opt(batch, sync) {
            let e = LogError::from(e);
            error!(error = %e, callers = accepted.len(), "event log: group commit failed");
            for (reply, _) in accepted {
                reply.send(Err(e.clone()));
            }
            return;
        }
        debug!(
            first_seq = self.last_seq + 1,
            last_seq = seq,
            callers = accepted.len(),
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
    /// The anchor record (`next_seq - 1`) has not been read yet.
    Unresolved,
    /// The hash of the previous record (zeros before record 1).
    Hash([u8; 32]),
    /// The anchor record is missing: any record found after it is a gap.
    MissingAnchor,
}

/// A stored `(key, value)` pair, not yet checked.
type RawEntry = (Box<[u8]>, Box<[u8]>);

/// Verified records in log order, from [`EventLog::iter_from`]. Owns a handle on the log,
/// so it can outlive the [`EventLog`] it came from and be moved to another thread.
pub struct LogIter {
    inner: Arc<Inner>,
    next_seq: u64,
    expect: Expect,
    /// Raw records read ahead.
    buf: VecDeque<RawEntry>,
    /// The last read reached the end of the log.
    source_done: bool,
    /// An error was yielded, or the end reached.
    done: bool,
}

impl LogIter {
    fn step(&mut self) -> Option<Result<Record, LogError>> {
        if let Expect::Unresolved = self.expect {
            if let Err(e) = self.resolve_anchor() {
                return Some(Err(e));
            }
        }
        if self.buf.is_empty() && !self.source_done {
            if let Err(e) = self.fill() {
                return Some(Err(e));
            }
        }
        let (k, v) = self.buf.pop_front()?;
        Some(self.check(&k, &v))
    }

    fn resolve_anchor(&mut self) -> Result<(), LogError> {
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

    /// Reads the next chunk of raw records, starting at the next expected key.
    fn fill(&mut self) -> Result<(), LogError> {
        let mut it = self.inner.db.raw_iterator();
        it.seek(key(self.next_seq));
        while self.buf.len() < READ_CHUNK {
            let Some((k, v)) = it.item() else { break };
            self.buf.push_back((Box::from(k), Box::from(v)));
            it.next();
        }
        it.status()?;
        if self.buf.len() < READ_CHUNK {
            self.source_done = true;
        }
        Ok(())
    }

    fn check(&mut self, k: &[u8], v: &[u8]) -> Result<Record, LogError> {
        let expected = self.next_seq;
        let seq = parse_key(k).ok_or_else(|| {
            corrupt(
                expected,
                format!("key {} is not a sequence number", hex::encode(k)),
            )
        })?;
        let prev = match self.expect {
            Expect::Hash(h) => h,
            Expect::Unresolved | Expect::MissingAnchor => {
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
        self.expect = Expect::Hash(hash);
        self.next_seq = seq + 1;
        Ok(record)
    }
}

impl Iterator for LogIter {
    type Item = Result<Record, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
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
