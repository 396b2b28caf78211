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

pub mod api;
mod catalog;
pub mod clock;
pub mod config;
pub mod ingest;

pub use config::ServeConfig;

/// This build's version, as reported in envelopes and `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// A started daemon: log open, state replayed, not yet serving.
pub struct Daemon {
    config: ServeConfig,
    log: EventLog,
    registry: Arc<RwLock<Registry>>,
    router: ActorRef<RouterMsg>,
}

impl Daemon {
    /// Opens the log, replays it and bootstraps the master account.
    pub async fn start(config: ServeConfig) -> Result<Daemon, DaemonError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DaemonError::Io {
            context: format!("creating data dir {}", config.data_dir.display()),
            source,
        })?;
        let registry = Arc::new(RwLock::new(Registry::new()));
        // The commit hook: apply every committed record, in log order, then hand its
        // effects to the router (once it runs; during bootstrap there is none, and the
        // router starts from the registry anyway).
        let router_slot: Arc<OnceLock<ActorRef<RouterMsg>>> = Arc::new(OnceLock::new());
        let hook_registry = Arc::clone(&registry);
        let hook_router = Arc::clone(&router_slot);
        let log = EventLog::open(
            &config.data_dir.join("eventlog"),
            Some(Arc::new(move |record: &eventlog::Record| {
                let effects = hook_registry.write().apply(record);
                if !effects.is_empty() {
                    if let Some(router) = hook_router.get() {
                        let _ = router.cast(RouterMsg::Effects(effects));
                    }
                }
            })),
        )?;
        let replayed = {
            let mut state = registry.write();
            let mut n = 0u64;
            for record in log.iter_from(1) {
                state.apply(&record?);
                n += 1;
            }
            n
        };
        tracing::info!(records = replayed, "event log replayed");
        bootstrap_master(&config, &log, &registry).await?;
        let ctx = Arc::new(DeliveryContext {
            client: actors::client::build_client(config.allow_private_targets)?,
            log: log.clone(),
            registry: Arc::clone(&registry),
            settings: config.delivery_settings(),
        });
        let args = RouterArgs {
            ctx,
            policy: RestartPolicy::default(),
        };
        let (router, _handle) = Actor::spawn(None, Router, args)
            .await
            .map_err(|e| DaemonError::Router(e.to_string()))?;
        let _ = router_slot.set(router.clone());
        Ok(Daemon {
            config,
            log,
            registry,
            router,
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
        let state = api::AppState::new(
            Arc::clone(&self.registry),
            self.log.clone(),
            self.config.clone(),
        );
        let app = api::router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| DaemonError::Io {
                context: "serving the API".into(),
                source,
            })?;
        tracing::info!("API stopped; stopping the delivery actors");
        if let Err(e) = self
            .router
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await
        {
            tracing::warn!(error = %e, "router did not stop in time");
        }
        tracing::info!("closing the event log");
        self.log.close()?;
        Ok(())
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
