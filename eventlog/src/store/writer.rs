//! The writer thread: the only code that appends, and so the only one that knows the tail
//! of the chain. It takes the queued appends in two lanes ([`Queued`]: foreground first,
//! background in the room left and a reserved share) and group-commits each round in three
//! phases:
//!
//! 1. **admit and encode** ([`Writer::prepare`]): per caller, skip the events whose unique
//!    key is taken (with an indexer), encode the rest as the next records of the chain
//!    (the codec), and add them, their index entries and a prune's deletions and metadata
//!    to one batch. A caller whose events cannot be admitted or encoded is answered at
//!    once; the others go on.
//! 2. **write** ([`Writer::write`]): one synced RocksDB write; if it fails, nothing of the
//!    round is in the log, every caller in it gets [`LogError::Unwritable`] and the log's
//!    health is failing (`health`) until a write succeeds; while failing and idle, the
//!    writer probes with an empty synced write every [`PROBE_INTERVAL`].
//! 3. **publish** ([`Writer::publish`]): move the tail, publish the counters, run the commit
//!    hook on every record in log order, then answer the callers.
//!
//! Index rebuilds run here too, between two rounds. Must not: read the log for anyone else,
//! or let a panicking hook or indexer stop the thread (both are caught).
//!
//! It runs past 500 lines because the thread's loop, its two lanes, the three phases and
//! the health every write reports are one piece of state that only this thread touches.

use std::collections::{HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocksdb::{WriteBatch, WriteOptions, DB};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::checkpoint::PendingCheckpoint;
use super::codec::{cf, encode_chain, key, META_CF};
use super::fault::Faults;
use super::health::{Health, PROBE_INTERVAL};
use super::index::{self, IndexFamilies, Indexer};
use crate::error::LogError;
use crate::record::{Event, Record};

#[cfg(test)]
mod tests;

/// Called on the writer thread for every committed record, in log order, after the record
/// is durable and before the appending caller is answered.
///
/// It runs on the single writer thread, so it must be quick and must not append to the log,
/// prune it or verify it (that would wait for itself, or for a prune waiting on the writer).
/// A panic in the hook is caught and logged.
pub type CommitHook = Arc<dyn Fn(&Record) + Send + Sync>;

/// Called on the writer thread once per durable group commit, before its records are
/// published (so before any caller of it is answered), with what it wrote. Meant for
/// counters: it must be as quick as a [`CommitHook`] and do no more. A panic in it is
/// caught and logged.
pub type WriteObserver = Arc<dyn Fn(&WriteStats) + Send + Sync>;

/// One durable group commit, as a [`WriteObserver`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Records written.
    pub records: u64,
    /// From the writer taking the round to the synced write's end (admit, encode, write).
    pub duration: Duration,
    /// The sequence of the last record written.
    pub last_seq: u64,
}

/// Soft cap on the events of one group commit: a batch takes no more requests once it
/// holds this many, so one huge burst does not build an unbounded `WriteBatch`.
const MAX_BATCH_EVENTS: usize = 4096;

/// The share of [`MAX_BATCH_EVENTS`] kept for background appends when some wait, so
/// they are never starved by the others.
const BACKGROUND_SHARE_EVENTS: usize = MAX_BATCH_EVENTS / 4;

/// Now, in Unix milliseconds: the clock records are stamped with (`time_ms`), and the
/// one every crate of the daemon reads.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        // A clock before 1970 is wrong, but not a reason to refuse writes.
        .unwrap_or(0)
}

/// Counters the writer publishes for readers.
pub(super) struct Shared {
    /// The seq of the last committed record.
    pub(super) last_seq: AtomicU64,
    /// Synced group commits since open.
    pub(super) batches: AtomicU64,
    /// Jobs sent to the writer thread that it has not received yet.
    pub(super) queued: AtomicU64,
    /// Whether the log can be written, as the last write showed.
    pub(super) health: Health,
}

impl Shared {
    /// The counters of a log whose last record is `last_seq`.
    pub(super) fn new(last_seq: u64) -> Shared {
        Shared {
            last_seq: AtomicU64::new(last_seq),
            batches: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            health: Health::writable(),
        }
    }
}

/// Work for the writer thread.
pub(super) enum Job {
    /// Append (and, for a prune, delete).
    Append(Request),
    /// Rebuild the indexes, between two group commits.
    RebuildIndexes(mpsc::SyncSender<Result<u64, LogError>>),
}

/// One caller's append, queued for the writer thread.
pub(super) struct Request {
    pub(super) events: Vec<Event>,
    /// Set for the checkpoint of a prune: its deletions and metadata join the same batch.
    pub(super) prune: Option<PendingCheckpoint>,
    pub(super) reply: Reply,
    /// Appended with [`EventLog::append_background`]: it yields to the others.
    ///
    /// [`EventLog::append_background`]: crate::EventLog::append_background
    pub(super) background: bool,
}

/// Where the writer sends the outcome of one append.
pub(super) enum Reply {
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
pub(super) struct Writer {
    pub(super) db: Arc<DB>,
    pub(super) shared: Arc<Shared>,
    pub(super) hook: Option<CommitHook>,
    /// Told of every durable group commit.
    pub(super) on_write: Option<WriteObserver>,
    /// Derives index entries and unique keys; `None`: no index is maintained.
    pub(super) indexer: Option<Indexer>,
    /// The version of what `indexer` derives, stored in the built marker by a rebuild.
    pub(super) indexer_version: u32,
    /// No indexer, but the indexes are marked built: the first write removes the marker.
    pub(super) unmark_built: bool,
    /// The seq of the last record, which the next append follows.
    pub(super) last_seq: u64,
    /// The hash of the last record, which the next append chains to.
    pub(super) last_hash: [u8; 32],
    /// The faults to inject (tests only; none in production).
    pub(super) faults: Arc<Faults>,
}

/// Marks the log stopped when the writer thread ends, by returning or by a panic.
struct StoppedOnExit(Arc<Shared>);

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        self.0.health.stopped();
    }
}

/// One group commit being built: the batch, the tail it reaches and the callers it answers.
struct GroupCommit {
    batch: WriteBatch,
    /// The seq of the last record in the batch (the writer's tail while it holds none).
    last_seq: u64,
    /// The hash of that record.
    last_hash: [u8; 32],
    /// Unique keys claimed by the records of this batch so far.
    taken: HashSet<Vec<u8>>,
    /// Events skipped as duplicates of a unique key.
    skipped: usize,
    /// The callers admitted, with their records.
    accepted: Vec<(Reply, Vec<Record>)>,
}

impl GroupCommit {
    /// An empty group commit after the record `last_seq` with `last_hash`.
    fn after(last_seq: u64, last_hash: [u8; 32], callers: usize) -> GroupCommit {
        GroupCommit {
            batch: WriteBatch::default(),
            last_seq,
            last_hash,
            taken: HashSet::new(),
            skipped: 0,
            accepted: Vec::with_capacity(callers),
        }
    }

    /// Admits and encodes one caller's events as the next records (see [`Writer::prepare`]);
    /// a caller refused is answered at once.
    fn add(
        &mut self,
        db: &DB,
        indexing: Option<(&Indexer, &IndexFamilies<'_>)>,
        request: Request,
        time_ms: u64,
    ) {
        let Request {
            events,
            prune,
            reply,
            background: _,
        } = request;
        let admitted = match indexing {
            Some((indexer, families)) => index::admit(db, families, indexer, events, &self.taken),
            None => Ok(index::Admitted {
                events,
                keys: Vec::new(),
                skipped: 0,
            }),
        };
        // A prune's checkpoint is its only event (never skipped: it has no unique key),
        // so it becomes record `last_seq + 1`; its deletions and metadata join the batch
        // only if the event could be encoded.
        let encoded = admitted.and_then(|admitted| {
            let (values, end_hash) =
                encode_chain(self.last_seq, &self.last_hash, time_ms, &admitted.events)?;
            if let Some(pending) = &prune {
                pending.write_into(db, &mut self.batch, self.last_seq + 1)?;
            }
            Ok((admitted, values, end_hash))
        });
        let (admitted, values, end_hash) = match encoded {
            Ok(encoded) => encoded,
            // Only this caller's events are refused; the rest of the batch goes on.
            Err(e) => {
                warn!(error = %e, "event log: append refused");
                reply.send(Err(e));
                return;
            }
        };
        self.skipped += admitted.skipped;
        let records: Vec<Record> = admitted
            .events
            .into_iter()
            .zip(self.last_seq + 1..)
            .map(|(event, seq)| Record {
                seq,
                time_ms,
                event,
            })
            .collect();
        for (record, value) in records.iter().zip(&values) {
            self.batch.put(key(record.seq), value);
        }
        if let Some((_, families)) = indexing {
            for (record, keys) in records.iter().zip(admitted.keys) {
                families.put(&mut self.batch, record.seq, &keys);
                self.taken.extend(keys.unique);
            }
        }
        self.last_seq += records.len() as u64;
        self.last_hash = end_hash;
        self.accepted.push((reply, records));
    }
}

impl Writer {
    /// Starts the writer thread on `jobs`.
    pub(super) fn spawn(self, jobs: mpsc::Receiver<Job>) -> Result<JoinHandle<()>, LogError> {
        thread::Builder::new()
            .name("eventlog-writer".to_owned())
            .spawn(move || self.run(jobs))
            .map_err(|e| LogError::Storage(format!("cannot start the writer thread: {e}")))
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let _stopped = StoppedOnExit(Arc::clone(&self.shared));
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        let mut queued = Queued::default();
        loop {
            // Wait only when nothing is queued.
            if queued.is_empty() {
                match self.next_job(&rx, &sync) {
                    Some(job) => self.take(job, &mut queued, &sync),
                    None => break,
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

    /// Waits for the next job, probing the log every [`PROBE_INTERVAL`] meanwhile while it
    /// is failing; `None` once every sender is gone and the channel is empty.
    fn next_job(&self, rx: &mpsc::Receiver<Job>, sync: &WriteOptions) -> Option<Job> {
        loop {
            if !self.shared.health.is_failing() {
                return rx.recv().ok();
            }
            match rx.recv_timeout(PROBE_INTERVAL) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => {
                    // Its outcome is the health it sets.
                    let _ = self.write_synced(WriteBatch::default(), sync, 0);
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Queues an append; a rebuild runs at once, after every append queued before it.
    fn take(&mut self, job: Job, queued: &mut Queued, sync: &WriteOptions) {
        self.shared.queued.fetch_sub(1, Ordering::AcqRel);
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
        index::rebuild(&self.db, indexer, self.indexer_version).inspect_err(|e| {
            error!(error = %e, "event log: rebuilding the indexes failed");
        })
    }

    /// Writes `requests` as one group commit, in the three phases of the module
    /// documentation: admit and encode, write, publish.
    fn commit(&mut self, requests: Vec<Request>, sync: &WriteOptions) {
        let started = Instant::now();
        let Some(mut commit) = self.prepare(requests) else {
            return;
        };
        if commit.last_seq == self.last_seq {
            // Nothing to write: every event left was a duplicate of a stored record.
            if commit.skipped > 0 {
                debug!(
                    skipped = commit.skipped,
                    "event log: group commit skipped every event"
                );
            }
            for (reply, records) in commit.accepted {
                reply.send(Ok(records));
            }
            return;
        }
        // Callers whose events were all skipped are answered with the write's outcome too:
        // a duplicate of a record of this batch is only a duplicate if the batch commits.
        let batch = std::mem::take(&mut commit.batch);
        if let Err(e) = self.write(batch, commit.accepted.len(), sync) {
            for (reply, _) in commit.accepted {
                reply.send(Err(e.clone()));
            }
            return;
        }
        self.observe(&WriteStats {
            records: commit.last_seq - self.last_seq,
            duration: started.elapsed(),
            last_seq: commit.last_seq,
        });
        self.publish(commit);
    }

    /// Tells the write observer, if any, of a durable group commit.
    fn observe(&self, stats: &WriteStats) {
        if let Some(observer) = &self.on_write {
            if panic::catch_unwind(AssertUnwindSafe(|| observer(stats))).is_err() {
                error!(
                    last_seq = stats.last_seq,
                    "event log: write observer panicked"
                );
            }
        }
    }

    /// Phase 1, admit and encode: each caller's events become the next records of the
    /// chain in one batch. With an indexer, an event whose unique key is taken is skipped,
    /// and the index entries and unique keys of the others join the batch; a prune's
    /// deletions and metadata join it with its checkpoint record. A caller that cannot be
    /// admitted or encoded is answered at once and the others go on; `None` (every caller
    /// answered) when the index column families are missing.
    fn prepare(&self, requests: Vec<Request>) -> Option<GroupCommit> {
        let time_ms = now_ms();
        let families = match self
            .indexer
            .as_ref()
            .map(|_| IndexFamilies::of(&self.db))
            .transpose()
        {
            Ok(families) => families,
            Err(e) => {
                error!(error = %e, "event log: group commit refused");
                for request in requests {
                    request.reply.send(Err(e.clone()));
                }
                return None;
            }
        };
        let indexing = self.indexer.as_ref().zip(families.as_ref());
        let mut commit = GroupCommit::after(self.last_seq, self.last_hash, requests.len());
        for request in requests {
            commit.add(&self.db, indexing, request, time_ms);
        }
        Some(commit)
    }

    /// Phase 2, write: `batch` in one synced write, with the removal of the indexes' built
    /// marker on the first write of a log without indexer. On error (logged, for `callers`
    /// callers) nothing of the batch is in the log and the log is failing.
    fn write(
        &mut self,
        mut batch: WriteBatch,
        callers: usize,
        sync: &WriteOptions,
    ) -> Result<(), LogError> {
        if self.unmark_built {
            let meta = cf(&self.db, META_CF).inspect_err(|e| {
                error!(error = %e, "event log: group commit refused");
            })?;
            index::unmark_built(meta, &mut batch);
        }
        self.write_synced(batch, sync, callers)?;
        if self.unmark_built {
            info!("event log: written without an indexer, the indexes are now marked incomplete");
            self.unmark_built = false;
        }
        Ok(())
    }

    /// One synced write of `batch` (for `callers` callers; 0 for a probe), and the health
    /// it shows: failing from the first failure in a row (logged as an error once), writable
    /// again from the next success.
    fn write_synced(
        &self,
        batch: WriteBatch,
        sync: &WriteOptions,
        callers: usize,
    ) -> Result<(), LogError> {
        let outcome = match self.faults.before_write() {
            Some(injected) => Err(injected),
            None => self
                .db
                .write_opt(batch, sync)
                .map_err(rocksdb::Error::into_string),
        };
        let health = &self.shared.health;
        match outcome {
            Ok(()) => {
                if let Some(since_ms) = health.succeeded() {
                    info!(
                        failed_for_ms = now_ms().saturating_sub(since_ms),
                        "event log: writable again"
                    );
                }
                Ok(())
            }
            Err(reason) => {
                if health.failed(&reason) {
                    error!(
                        error = %reason,
                        callers,
                        "event log: a write failed; appends fail until one succeeds"
                    );
                } else {
                    debug!(error = %reason, callers, "event log: still cannot write");
                }
                Err(LogError::Unwritable(reason))
            }
        }
    }

    /// Phase 3, publish, once `commit` is durable: moves the tail, publishes the counters,
    /// runs the commit hook on every record in log order, then answers the callers.
    fn publish(&mut self, commit: GroupCommit) {
        debug!(
            first_seq = self.last_seq + 1,
            last_seq = commit.last_seq,
            callers = commit.accepted.len(),
            skipped = commit.skipped,
            "event log: group commit"
        );
        self.last_seq = commit.last_seq;
        self.last_hash = commit.last_hash;
        self.shared
            .last_seq
            .store(commit.last_seq, Ordering::Release);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.hook {
            for record in commit.accepted.iter().flat_map(|(_, records)| records) {
                // The record is durable whatever the hook does: keep the writer alive.
                if panic::catch_unwind(AssertUnwindSafe(|| hook(record))).is_err() {
                    error!(seq = record.seq, "event log: commit hook panicked");
                }
            }
        }
        for (reply, records) in commit.accepted {
            reply.send(Ok(records));
        }
    }
}
