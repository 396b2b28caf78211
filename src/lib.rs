//! Piston Webhooks: the daemon.
//!
//! [`Daemon::start`] opens the event log, rebuilds the registry by replaying it through
//! the same `apply` that live changes use, and makes sure the master account exists;
//! only then does [`Daemon::serve`] take a listener, so the API never answers from a
//! half-replayed state.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use eventlog::{AccountId, Event, EventLog, LogError};
use parking_lot::RwLock;
use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;

use actors::{DeliveryContext, Registry, RestartPolicy, Router, RouterArgs, RouterMsg};

pub mod amqp;
pub mod api;
pub mod audit;
mod catalog;
pub mod clock;
pub mod config;
pub mod housekeeping;
pub mod http_server;
pub mod ingest;
mod kazoo_errors;
pub mod process_limits;
pub mod snapshot;
pub mod telemetry;
pub mod version;

pub use config::ServeConfig;

/// Kept as `piston_webhooks::VERSION` for the load tool; modules of this crate import
/// [`version::VERSION`].
pub use version::VERSION;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("cannot start the router: {0}")]
    Router(String),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// The registry and the router that the event log's commit hook feeds: every committed
/// record is applied to the registry, in log order, and its effects go to the router
/// once one runs (during replay and bootstrap there is none, and the router starts from
/// the registry anyway). The daemon and the fan-out bench wire themselves with it.
pub struct Projection {
    pub registry: Arc<RwLock<Registry>>,
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

    /// Opens the event log in `dir` as the daemon does: with this projection's commit
    /// hook and the disk indexes of [`actors::index::indexer`].
    pub fn open_log(&self, dir: &Path) -> Result<EventLog, LogError> {
        let registry = Arc::clone(&self.registry);
        let router = Arc::clone(&self.router);
        let on_commit: eventlog::CommitHook = Arc::new(move |record: &eventlog::Record| {
            let effects = registry.write().apply(record);
            if !effects.is_empty() {
                if let Some(router) = router.get() {
                    let _ = router.cast(RouterMsg::Effects(effects));
                }
            }
        });
        EventLog::open_with(
            dir,
            eventlog::OpenOptions {
                on_commit: Some(on_commit),
                indexer: Some(actors::index::indexer()),
                indexer_version: actors::index::INDEXER_VERSION,
            },
        )
    }

    /// Starts the router (which resumes the registry's pending deliveries) with the
    /// delivery settings of `config`, and hands it the effects of later commits.
    pub async fn start_router(
        &self,
        config: &ServeConfig,
        log: &EventLog,
    ) -> Result<ActorRef<RouterMsg>, DaemonError> {
        let ctx = Arc::new(DeliveryContext::new(
            actors::client::build_client(config.allow_private_targets)?,
            log.clone(),
            Arc::clone(&self.registry),
            config.delivery_settings(),
        ));
        let args = RouterArgs {
            ctx,
            policy: RestartPolicy::default(),
        };
        let (router, _handle) = Actor::spawn(None, Router, args)
            .await
            .map_err(|e| DaemonError::Router(e.to_string()))?;
        let _ = self.router.set(router.clone());
        Ok(router)
    }
}

/// A started daemon: log open, state replayed, not yet serving.
pub struct Daemon {
    config: ServeConfig,
    log: EventLog,
    registry: Arc<RwLock<Registry>>,
    router: ActorRef<RouterMsg>,
    /// Sequence of the snapshot the start loaded (0: none).
    snapshot_seq: u64,
    /// Records replayed after it.
    replayed_records: u64,
}

impl Daemon {
    /// Opens the log, replays it and bootstraps the master account.
    pub async fn start(config: ServeConfig) -> Result<Daemon, DaemonError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DaemonError::Io {
            context: format!("creating data dir {}", config.data_dir.display()),
            source,
        })?;
        let projection = Projection::new();
        let registry = Arc::clone(&projection.registry);
        let log = projection.open_log(&config.data_dir.join("eventlog"))?;
        let snapshot_seq = load_snapshot(&log, &registry);
        let replayed = replay(&log, &registry, snapshot_seq + 1)?;
        tracing::info!(snapshot_seq, records = replayed, "event log replayed");
        bootstrap_master(&config, &log, &registry).await?;
        let router = projection.start_router(&config, &log).await?;
        Ok(Daemon {
            config,
            log,
            registry,
            router,
            snapshot_seq,
            replayed_records: replayed,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// Serves the API on `listener` until `shutdown` resolves, then closes the log.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DaemonError> {
        // Snapshots and retention in the background.
        let housekeeping = housekeeping::Housekeeping::new(
            self.log.clone(),
            Arc::clone(&self.registry),
            self.config.housekeeping_settings(),
        );
        let state = api::AppState::new(
            Arc::clone(&self.registry),
            self.log.clone(),
            self.config.clone(),
            api::StartInfo {
                snapshot_seq: self.snapshot_seq,
                replayed_records: self.replayed_records,
            },
            api::HealthFigures {
                last_snapshot_seq: housekeeping.last_snapshot(),
            },
        );
        let app = api::router(state);
        // Kazoo's call events from RabbitMQ, when configured: beside HTTP ingest, through
        // the same validation and durable append.
        let amqp = self.config.amqp_settings().map(|settings| {
            let ingest = ingest::Ingest::new(self.log.clone());
            amqp::AmqpConsumer::spawn(settings, ingest)
        });
        let (housekeeping_stop, housekeeping_rx) = tokio::sync::watch::channel(false);
        let housekeeping_task =
            tokio::spawn(housekeeping.clone().run(housekeeping_rx, self.snapshot_seq));
        // Stop accepting on the signal; let requests in progress finish, but within a
        // bound, so one slow client cannot hold the shutdown.
        let bound = self.config.shutdown_timeout();
        let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
        // The API (and so HTTP ingest) runs on threads of its own, so that a delivery
        // backlog, which can keep this runtime's workers busy for minutes, does not
        // starve requests: they get their share of the CPU from the OS scheduler.
        let api_runtime = api_runtime()?;
        let listener = listener.into_std().map_err(|source| DaemonError::Io {
            context: "handing the listener to the API runtime".into(),
            source,
        })?;
        let limits = http_server::ConnectionLimits::new(self.config.max_connections);
        let server = api_runtime.spawn(async move {
            let listener = TcpListener::from_std(listener)?;
            http_server::serve(listener, app, limits, async move {
                shutdown.await;
                let _ = signalled_tx.send(true);
            })
            .await
        });
        let overdue = async move {
            let _ = signalled_rx.wait_for(|s| *s).await;
            tokio::time::sleep(bound).await;
        };
        tokio::select! {
            served = server => served
                .map_err(std::io::Error::other)
                .and_then(|served| served)
                .map_err(|source| DaemonError::Io {
                    context: "serving the API".into(),
                    source,
                })?,
            () = overdue => tracing::warn!(?bound, "requests still open at the shutdown bound; closing them"),
        }
        // Requests still open past the bound are dropped with their runtime.
        api_runtime.shutdown_background();
        // No new events from RabbitMQ: finish the batch in hand (appended, then acked);
        // what was not acked goes back to the queue.
        if let Some(consumer) = amqp {
            consumer.stop(bound).await;
        }
        // Let tries in flight finish and be logged; whatever has not started (or does not
        // finish within the bound) stays pending in the log and resumes on the next start.
        tracing::info!("API stopped; draining the delivery actors");
        match self
            .router
            .call(RouterMsg::Drain, Some(bound))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(())) => tracing::info!("delivery actors drained"),
            _ => tracing::warn!(?bound, "tries still in flight at the shutdown bound; they stay pending and are retried on the next start"),
        }
        if let Err(e) = self
            .router
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(2)))
            .await
        {
            tracing::warn!(error = %e, "router did not stop in time");
        }
        let _ = housekeeping_stop.send(true);
        let _ = housekeeping_task.await;
        // A last snapshot, so the next start replays next to nothing.
        if let Err(e) = housekeeping.snapshot().await {
            tracing::warn!(error = %e, "final snapshot failed; the next start replays more");
        }
        tracing::info!("closing the event log");
        self.log.close()?;
        Ok(())
    }
}

/// The runtime the API is served on: as many workers as cores (at least 2).
fn api_runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("api")
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Io {
            context: "starting the API runtime".into(),
            source,
        })
}

/// Replays the log from `from_seq` through `Registry::apply`. Reading, verifying and
/// decoding records runs on its own thread, a bounded queue ahead of the apply loop, so
/// a start uses both cores. Returns how many records were applied.
fn replay(log: &EventLog, registry: &RwLock<Registry>, from_seq: u64) -> Result<u64, DaemonError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<eventlog::Record, LogError>>(4096);
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
        .map_err(|source| DaemonError::Io {
            context: "starting the replay reader".into(),
            source,
        })?;
    let mut state = registry.write();
    let mut applied = 0u64;
    let mut outcome = Ok(());
    for record in rx {
        match record {
            Ok(record) => {
                state.apply(&record);
                applied += 1;
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    drop(state);
    // The reader ends once its records are consumed or the channel closes.
    let _ = reader.join();
    outcome?;
    Ok(applied)
}

/// Loads the newest usable snapshot into `registry`; returns its sequence (0: none, or
/// unusable, so the whole log is replayed).
fn load_snapshot(log: &EventLog, registry: &RwLock<Registry>) -> u64 {
    let snapshot = match log.load_snapshot() {
        Ok(Some(s)) => s,
        Ok(None) => return 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read snapshots; replaying the whole log");
            return 0;
        }
    };
    match snapshot::decode(&snapshot.bytes) {
        Ok(state) if state.last_seq() == snapshot.seq => {
            *registry.write() = state;
            tracing::info!(seq = snapshot.seq, "snapshot loaded");
            snapshot.seq
        }
        Ok(state) => {
            tracing::warn!(
                seq = snapshot.seq,
                state_seq = state.last_seq(),
                "snapshot does not match its sequence; replaying the whole log"
            );
            0
        }
        Err(e) => {
            tracing::warn!(seq = snapshot.seq, error = %e, "unusable snapshot; replaying the whole log");
            0
        }
    }
}

/// Creates the master account on first start, or rotates its key to the one given.
async fn bootstrap_master(
    config: &ServeConfig,
    log: &EventLog,
    registry: &RwLock<Registry>,
) -> Result<(), DaemonError> {
    let master = registry
        .read()
        .master()
        .map(|m| (m.id.clone(), m.api_key.clone()));
    let key_file = config.data_dir.join("master-api-key");
    match (master, &config.master_api_key) {
        (None, given) => {
            let api_key = given
                .clone()
                .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
            let account_id = AccountId::generate();
            log.append(vec![Event::AccountCreated {
                account_id: account_id.clone(),
                parent_id: None,
                api_key: api_key.clone(),
                doc: serde_json::json!({"name": "Master Account"}),
            }])
            .await?;
            write_key_file(&key_file, &api_key)?;
            if given.is_none() {
                eprintln!(
                        "piston-webhooks: created the master account {account_id}; its API key is {api_key} (also stored in {})",
                        key_file.display()
                    );
            }
            tracing::info!(%account_id, "master account created");
        }
        (Some((account_id, stored)), Some(given)) if &stored != given => {
            log.append(vec![Event::ApiKeyChanged {
                account_id,
                api_key: given.clone(),
            }])
            .await?;
            write_key_file(&key_file, given)?;
            tracing::info!("master API key replaced by the configured one");
        }
        _ => {}
    }
    Ok(())
}
fn write_key_file(path: &Path, key: &str) -> Result<(), DaemonError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| DaemonError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(key.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}
