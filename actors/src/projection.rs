//! The projection's wiring: how "appended" becomes "applied and routed".
//!
//! [`Projection`] holds the registry and the slot the router goes in. The event log it
//! opens ([`Projection::open_log`]) carries its commit hook, so every committed record
//! goes through [`Registry::apply`] on the log's writer thread, in log order, before
//! `append` returns, and the record's effects go to the router once one runs. Start-up
//! changes state in the only other way there is: [`Projection::restore`] loads the
//! newest usable snapshot, then replays the records after it through the same `apply`.
//! [`Projection::start_router`] starts the router last, which resumes every delivery the
//! registry holds as pending (at once, or when the daemon's API is up), and supervises
//! it: a router that stops unexpectedly is logged and started again, so deliveries
//! never stall silently.
//!
//! The daemon, the router tests and the fan-out bench are all wired by this one type.
//! Must not: know HTTP-in, the API or the daemon's flags (the caller hands over the
//! delivery settings and the restart policy), or decide when snapshots are taken.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use eventlog::{CommitHook, EventLog, LogError, OpenOptions, Record, WriteObserver};
use parking_lot::RwLock;
use ractor::{Actor, ActorRef};

use crate::observe::{DeliveryObserver, NoObserver};
use crate::registry::Registry;
use crate::router::{RestartPolicy, Router, RouterArgs, RouterMsg};
use crate::webhook::{DeliveryContext, DeliverySettings};
use crate::{client, index, snapshot};

/// Records read ahead of the apply loop during replay.
const REPLAY_READ_AHEAD: usize = 4096;

/// Why the projection could not be restored or its router started.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("starting the replay reader: {0}")]
    ReplayReader(std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot start the router: {0}")]
    Router(String),
    #[error("the replay reader failed: {0}")]
    ReplayReaderFailed(String),
    #[error("the replay stopped at record {applied} but the log goes to {last}")]
    ReplayIncomplete { applied: u64, last: u64 },
}

/// When the router resumes the deliveries owed from before the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingResume {
    /// As it starts (tests, benches).
    AtStart,
    /// When asked ([`RouterHandle::resume_pending`]): the daemon asks once its API is up.
    WhenAsked,
}

/// Restarts of a router that stopped unexpectedly, within [`ROUTER_RESTART_WINDOW`],
/// before the supervisor waits [`ROUTER_GIVE_UP_WAIT`] between restarts.
const ROUTER_MAX_QUICK_RESTARTS: usize = 5;
const ROUTER_RESTART_WINDOW: Duration = Duration::from_secs(60);
const ROUTER_RESTART_BACKOFF: Duration = Duration::from_millis(200);
const ROUTER_GIVE_UP_WAIT: Duration = Duration::from_secs(30);

/// The slot the commit hook hands effects to: the router running now, if any.
type RouterSlot = Arc<RwLock<Option<ActorRef<RouterMsg>>>>;

/// The running router and its supervisor.
pub struct RouterHandle {
    slot: RouterSlot,
    released: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl RouterHandle {
    /// The router running now (a restarted one after a failure).
    pub fn router(&self) -> Option<ActorRef<RouterMsg>> {
        self.slot.read().clone()
    }

    /// Resumes the deliveries owed from before the start (see [`PendingResume`]); a
    /// router restarted later resumes them by itself.
    pub fn resume_pending(&self) {
        self.released.store(true, Ordering::SeqCst);
        if let Some(router) = self.router() {
            let _ = router.cast(RouterMsg::ResumePending);
        }
    }

    /// Stops the router for good (no restart), waiting at most `timeout`.
    pub async fn stop(self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(router) = self.router() {
            if let Err(e) = router
                .stop_and_wait(Some("shutdown".into()), Some(timeout))
                .await
            {
                tracing::warn!(error = %e, "router did not stop in time");
            }
        }
        self.supervisor.abort();
        let _ = self.supervisor.await;
    }
}

/// What a start rebuilt the registry from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Sequence of the snapshot loaded (0: none, or none usable).
    pub snapshot_seq: u64,
    /// Records replayed after it.
    pub replayed_records: u64,
}

/// The registry and the router that the event log's commit hook feeds: every committed
/// record is applied to the registry, in log order, and its effects go to the router
/// once one runs (during replay and bootstrap there is none, and the router starts from
/// the registry anyway).
pub struct Projection {
    registry: Arc<RwLock<Registry>>,
    router: RouterSlot,
    /// Told of tries and auto-disables by the router's actors.
    observer: Arc<dyn DeliveryObserver>,
    /// Told of every group commit of the log [`Projection::open_log`] opens.
    on_write: Option<WriteObserver>,
}

impl Default for Projection {
    fn default() -> Self {
        Self::new()
    }
}

impl Projection {
    /// An empty registry, no router yet.
    pub fn new() -> Projection {
        Projection {
            registry: Arc::new(RwLock::new(Registry::new())),
            router: Arc::new(RwLock::new(None)),
            observer: Arc::new(NoObserver),
            on_write: None,
        }
    }

    /// The same projection, with the observers the daemon's metrics and alerts use: the
    /// actors report to `observer`, and the log it opens to `on_write`.
    pub fn observed(
        mut self,
        observer: Arc<dyn DeliveryObserver>,
        on_write: Option<WriteObserver>,
    ) -> Projection {
        self.observer = observer;
        self.on_write = on_write;
        self
    }

    /// The registry, shared with the API (reads) and the actors.
    pub fn registry(&self) -> &Arc<RwLock<Registry>> {
        &self.registry
    }

    /// Opens the event log in `dir` as the daemon does: with this projection's commit
    /// hook and the disk indexes of [`index::indexer`].
    pub fn open_log(&self, dir: &Path) -> Result<EventLog, LogError> {
        let registry = Arc::clone(&self.registry);
        let router = Arc::clone(&self.router);
        let on_commit: CommitHook = Arc::new(move |record: &Record| {
            let effects = registry.write().apply(record);
            if !effects.is_empty() {
                if let Some(router) = router.read().as_ref() {
                    let _ = router.cast(RouterMsg::Effects(effects));
                }
            }
        });
        EventLog::open_with(
            dir,
            OpenOptions {
                on_commit: Some(on_commit),
                on_write: self.on_write.clone(),
                indexer: Some(index::indexer()),
                indexer_version: index::INDEXER_VERSION,
            },
        )
    }

    /// Rebuilds the registry from `log`: the newest usable snapshot, then the records
    /// after it.
    pub fn restore(&self, log: &EventLog) -> Result<Restored, ProjectionError> {
        let snapshot_seq = self.load_snapshot(log);
        let replayed_records = self.replay(log, snapshot_seq + 1)?;
        tracing::info!(
            snapshot_seq,
            records = replayed_records,
            "event log replayed"
        );
        Ok(Restored {
            snapshot_seq,
            replayed_records,
        })
    }

    /// Loads the newest usable snapshot into the registry; returns its sequence (0:
    /// none, or unusable, so the whole log is replayed).
    pub fn load_snapshot(&self, log: &EventLog) -> u64 {
        let stored = match log.load_snapshot() {
            Ok(Some(s)) => s,
            Ok(None) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read snapshots; replaying the whole log");
                return 0;
            }
        };
        match snapshot::decode(&stored.bytes) {
            Ok(state) if state.last_seq() == stored.seq => {
                *self.registry.write() = state;
                tracing::info!(seq = stored.seq, "snapshot loaded");
                stored.seq
            }
            Ok(state) => {
                tracing::warn!(
                    seq = stored.seq,
                    state_seq = state.last_seq(),
                    "snapshot does not match its sequence; replaying the whole log"
                );
                0
            }
            Err(e) => {
                tracing::warn!(seq = stored.seq, error = %e, "unusable snapshot; replaying the whole log");
                0
            }
        }
    }

    /// Replays the log from `from_seq` through `Registry::apply`. Reading, verifying and
    /// decoding records runs on its own thread, a bounded queue ahead of the apply loop,
    /// so a start uses two cores. Returns how many records were applied.
    pub fn replay(&self, log: &EventLog, from_seq: u64) -> Result<u64, ProjectionError> {
        let (tx, rx) = sync_channel::<Result<Record, LogError>>(REPLAY_READ_AHEAD);
        let reader_log = log.clone();
        let reader = std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn(move || {
                for record in reader_log.iter_from(from_seq) {
                    let failed = record.is_err();
                    if tx.send(record).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(ProjectionError::ReplayReader)?;
        let applied = apply_all(&self.registry, rx);
        // A reader that panicked ended the channel early, as the end of the log would:
        // its state would be partial, and must not be served as if it were complete.
        if let Err(panic) = reader.join() {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "it panicked".to_owned());
            return Err(ProjectionError::ReplayReaderFailed(why));
        }
        let applied = applied?;
        let (reached, last) = (self.registry.read().last_seq(), log.last_seq());
        if reached < last {
            return Err(ProjectionError::ReplayIncomplete {
                applied: reached,
                last,
            });
        }
        Ok(applied)
    }

    /// Starts the router with the delivery client and `settings`, hands it the effects of
    /// later commits, and supervises it: if it ever stops unexpectedly, that is logged as
    /// an error and a new router starts, which picks up every delivery the registry holds
    /// (tries in flight may be made again: at-least-once).
    pub async fn start_router(
        &self,
        log: &EventLog,
        settings: DeliverySettings,
        policy: RestartPolicy,
        resume: PendingResume,
    ) -> Result<RouterHandle, ProjectionError> {
        let ctx = Arc::new(
            DeliveryContext::new(
                client::build_client(settings.allow_private_targets)?,
                log.clone(),
                Arc::clone(&self.registry),
                settings,
            )
            .with_observer(Arc::clone(&self.observer)),
        );
        let released = Arc::new(AtomicBool::new(resume == PendingResume::AtStart));
        let stopping = Arc::new(AtomicBool::new(false));
        let args = RouterArgs {
            ctx: Arc::clone(&ctx),
            policy: policy.clone(),
            resume_pending: released.load(Ordering::SeqCst),
        };
        let (router, handle) = Actor::spawn(None, Router, args)
            .await
            .map_err(|e| ProjectionError::Router(e.to_string()))?;
        *self.router.write() = Some(router.clone());
        let supervisor = tokio::spawn(supervise_router(
            Arc::clone(&self.router),
            ctx,
            policy,
            Arc::clone(&released),
            Arc::clone(&stopping),
            router,
            handle,
        ));
        Ok(RouterHandle {
            slot: Arc::clone(&self.router),
            released,
            stopping,
            supervisor,
        })
    }
}

/// Watches the router; when it stops without being asked to, stops the actors it left
/// behind and starts a new one (quickly at first, then every [`ROUTER_GIVE_UP_WAIT`]).
async fn supervise_router(
    slot: RouterSlot,
    ctx: Arc<DeliveryContext>,
    policy: RestartPolicy,
    released: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    mut router: ActorRef<RouterMsg>,
    mut handle: tokio::task::JoinHandle<()>,
) {
    let mut recent: std::collections::VecDeque<std::time::Instant> = Default::default();
    loop {
        let _ = (&mut handle).await;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        tracing::error!("the router stopped unexpectedly; deliveries are restarted with a new one");
        *slot.write() = None;
        // Its webhook actors outlive a failed router: stop them, so no hook is served
        // twice once the new router starts its own.
        router
            .stop_children_and_wait(
                Some("router restarting".into()),
                Some(Duration::from_secs(5)),
            )
            .await;
        let now = std::time::Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > ROUTER_RESTART_WINDOW)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        let wait = if recent.len() > ROUTER_MAX_QUICK_RESTARTS {
            ROUTER_GIVE_UP_WAIT
        } else {
            ROUTER_RESTART_BACKOFF
        };
        loop {
            tokio::time::sleep(wait).await;
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let args = RouterArgs {
                ctx: Arc::clone(&ctx),
                policy: policy.clone(),
                resume_pending: released.load(Ordering::SeqCst),
            };
            match Actor::spawn(None, Router, args).await {
                Ok((next, next_handle)) => {
                    *slot.write() = Some(next.clone());
                    tracing::warn!("router restarted");
                    (router, handle) = (next, next_handle);
                    break;
                }
                Err(e) => tracing::error!(error = %e, "cannot restart the router; trying again"),
            }
        }
    }
}

/// Applies the records of `rx` in order, holding the registry's write lock throughout,
/// until the channel ends or a record cannot be read. Returns how many were applied.
fn apply_all(
    registry: &RwLock<Registry>,
    rx: Receiver<Result<Record, LogError>>,
) -> Result<u64, LogError> {
    let mut state = registry.write();
    let mut applied = 0u64;
    for record in rx {
        state.apply(&record?);
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;
