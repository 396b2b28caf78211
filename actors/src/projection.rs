//! The projection's wiring: how "appended" becomes "applied and routed".
//!
//! [`Projection`] holds the registry and the slot the router goes in. The event log it
//! opens ([`Projection::open_log`]) carries its commit hook, so every committed record
//! goes through [`Registry::apply`] on the log's writer thread, in log order, before
//! `append` returns, and the record's effects go to the router once one runs. Start-up
//! changes state in the only other way there is: [`Projection::restore`] loads the
//! newest usable snapshot, then replays the records after it through the same `apply`.
//! [`Projection::start_router`] starts the router last, which resumes every delivery the
//! registry holds as pending.
//!
//! The daemon, the router tests and the fan-out bench are all wired by this one type.
//! Must not: know HTTP-in, the API or the daemon's flags (the caller hands over the
//! delivery settings and the restart policy), or decide when snapshots are taken.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, OnceLock};

use eventlog::{CommitHook, EventLog, LogError, OpenOptions, Record};
use parking_lot::RwLock;
use ractor::{Actor, ActorRef};

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
    router: Arc<OnceLock<ActorRef<RouterMsg>>>,
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
            router: Arc::new(OnceLock::new()),
        }
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
                if let Some(router) = router.get() {
                    let _ = router.cast(RouterMsg::Effects(effects));
                }
            }
        });
        EventLog::open_with(
            dir,
            OpenOptions {
                on_commit: Some(on_commit),
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
        // The reader ends once its records are consumed or the channel closes. Whether
        // it panicked is in `joined`, which is not acted on: a reader that panicked ends
        // the replay early, as the end of the log would.
        let joined = reader.join();
        let _ = joined;
        Ok(applied?)
    }

    /// Starts the router (which resumes the registry's pending deliveries) with the
    /// delivery client and `settings`, and hands it the effects of later commits.
    pub async fn start_router(
        &self,
        log: &EventLog,
        settings: DeliverySettings,
        policy: RestartPolicy,
    ) -> Result<ActorRef<RouterMsg>, ProjectionError> {
        let ctx = Arc::new(DeliveryContext::new(
            client::build_client(settings.allow_private_targets)?,
            log.clone(),
            Arc::clone(&self.registry),
            settings,
        ));
        let (router, _handle) = Actor::spawn(None, Router, RouterArgs { ctx, policy })
            .await
            .map_err(|e| ProjectionError::Router(e.to_string()))?;
        let _ = self.router.set(router.clone());
        Ok(router)
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
