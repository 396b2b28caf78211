//! Piston Webhooks: the daemon.
//!
//! [`Daemon::start`] opens the event log, rebuilds the registry by replaying it through
//! the same `apply` that live changes use ([`actors::Projection`] wires both), and makes
//! sure the master account exists; only then does [`Daemon::serve`] take a listener, so
//! the API never answers from a half-replayed state. Serving ends with the shutdown
//! choreography, step by step. This file is start, serve and shutdown only.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eventlog::{AccountId, Event, EventLog, LogError};
use parking_lot::RwLock;
use tokio::net::TcpListener;

use actors::{
    PendingResume, Projection, ProjectionError, Registry, RestartPolicy, RouterHandle, RouterMsg,
};

mod admin;
pub mod alerts;
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
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Alerts(#[from] alerts::AlertError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// A started daemon: log open, state replayed, not yet serving.
pub struct Daemon {
    config: ServeConfig,
    log: EventLog,
    registry: Arc<RwLock<Registry>>,
    router: RouterHandle,
    /// This daemon's metrics (each daemon has its own).
    metrics: Arc<telemetry::metrics::Metrics>,
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
        let metrics = Arc::new(telemetry::metrics::Metrics::new());
        let alerts = alerts_of(&config)?;
        let observer = Arc::new(telemetry::DeliveryTelemetry {
            metrics: Arc::clone(&metrics),
            alerts,
        });
        let projection = Projection::new().observed(observer, Some(metrics.log_observer()));
        let registry = Arc::clone(projection.registry());
        let log = projection.open_log(&config.data_dir.join("eventlog"))?;
        let restored = projection.restore(&log)?;
        bootstrap_master(&config, &log, &registry).await?;
        give_webhooks_secrets(&log, &registry).await?;
        // Deliveries owed from before this start resume once the API is up (`serve`), so
        // an operator can always reach the API, however large the backlog.
        let router = projection
            .start_router(
                &log,
                config.delivery_settings(),
                RestartPolicy::default(),
                PendingResume::WhenAsked,
            )
            .await?;
        Ok(Daemon {
            config,
            log,
            registry,
            router,
            metrics,
            snapshot_seq: restored.snapshot_seq,
            replayed_records: restored.replayed_records,
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
            Arc::clone(&self.metrics),
        );
        let app = api::router(state);
        // Kazoo's call events from RabbitMQ, when configured: beside HTTP ingest, through
        // the same validation and durable append.
        let amqp = self.config.amqp_settings().map(|settings| {
            let accepted = self
                .metrics
                .events_accepted(telemetry::metrics::Source::Amqp);
            let ingest = ingest::Ingest::new(self.log.clone(), accepted);
            amqp::AmqpConsumer::spawn(settings, ingest, &self.metrics)
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
        // The API is up: now the deliveries owed from before this start may go.
        self.router.resume_pending();
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
        let drained = match self.router.router() {
            Some(router) => router.call(RouterMsg::Drain, Some(bound)).await.ok(),
            None => None,
        };
        match drained {
            Some(ractor::rpc::CallResult::Success(())) => tracing::info!("delivery actors drained"),
            _ => tracing::warn!(?bound, "tries still in flight at the shutdown bound; they stay pending and are retried on the next start"),
        }
        self.router.stop(Duration::from_secs(2)).await;
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
/// Gives a signing secret to every webhook that has none (created by a build from before
/// webhooks had secrets), before any delivery starts, so every try is signed. Each is a
/// `WebhookSecretSet` record, as for a new webhook; a log with none to give appends nothing.
async fn give_webhooks_secrets(
    log: &EventLog,
    registry: &RwLock<Registry>,
) -> Result<(), DaemonError> {
    /// Records per append: bounded, however many webhooks an old log holds.
    const BATCH: usize = 1000;
    let missing: Vec<Event> = registry
        .read()
        .webhooks_without_secret()
        .map(|hook| Event::WebhookSecretSet {
            account_id: hook.account_id.clone(),
            webhook_id: hook.id.clone(),
            secret: actors::signing::generate_secret(),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let count = missing.len();
    let mut missing = missing.into_iter().peekable();
    while missing.peek().is_some() {
        log.append(missing.by_ref().take(BATCH).collect()).await?;
    }
    tracing::info!(
        webhooks = count,
        "signing secrets given to webhooks created without one"
    );
    Ok(())
}

/// The alert sender when `--alert-url` is given, signing with `--alert-secret`, or with
/// the secret in DATA_DIR/alert-secret (generated there on the first start without one).
fn alerts_of(config: &ServeConfig) -> Result<Option<alerts::Alerts>, DaemonError> {
    let Some(url) = config.alert_url() else {
        return Ok(None);
    };
    let secret = match &config.alert_secret {
        Some(given) => given.clone(),
        None => stored_alert_secret(&config.data_dir.join("alert-secret"))?,
    };
    let alerts = alerts::Alerts::new(url, &secret, alerts::AlertPolicy::default())?;
    Ok(Some(alerts))
}

/// The alert secret stored at `path`, generated and stored (mode 0600) if there is none.
fn stored_alert_secret(path: &Path) -> Result<String, DaemonError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = actors::signing::generate_secret();
            write_key_file(path, secret.expose())?;
            tracing::info!(path = %path.display(), "alert secret generated");
            Ok(secret.expose().to_owned())
        }
        Err(source) => Err(DaemonError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
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
