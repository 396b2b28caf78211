//! [`AppState`]: what every handler can reach — the registry to read, the log to commit
//! to, the configuration, the daemon's metrics — and the start figures `/healthz` reports.
//!
//! Handlers read the registry and change state only through [`AppState::commit`]; this
//! module routes nothing and knows no resource.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use eventlog::{Event, EventLog, Record};
use parking_lot::RwLock;

use actors::Registry;

use super::error::ApiError;
use super::limits::Limits;
use crate::config::ServeConfig;
use crate::ingest::Ingest;
use crate::telemetry::metrics::{Metrics, ScrapeFigures, Source};

/// Webhooks counted per read lock by a scrape.
const WEBHOOKS_PER_LOCK: usize = 10_000;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    registry: Arc<RwLock<Registry>>,
    log: EventLog,
    ingest: Ingest,
    start: StartInfo,
    figures: HealthFigures,
    config: ServeConfig,
    limits: Limits,
    node: String,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// Shares the registry and log with the API.
    pub fn new(
        registry: Arc<RwLock<Registry>>,
        log: EventLog,
        config: ServeConfig,
        start: StartInfo,
        figures: HealthFigures,
        metrics: Arc<Metrics>,
    ) -> Self {
        let node = format!("piston-webhooks@{}", config.listen);
        let ingest = Ingest::new(log.clone(), metrics.events_accepted(Source::Http));
        AppState {
            inner: Arc::new(Shared {
                registry,
                log,
                ingest,
                start,
                figures,
                limits: Limits::new(&config),
                config,
                node,
                metrics,
            }),
        }
    }

    /// The registry itself, for work that reads it off the runtime (a recover's count).
    pub(crate) fn registry_handle(&self) -> Arc<RwLock<Registry>> {
        Arc::clone(&self.inner.registry)
    }

    /// The event log, for reads that walk it off the runtime (a recover's count).
    pub(crate) fn log(&self) -> &EventLog {
        &self.inner.log
    }

    pub(crate) fn registry(&self) -> parking_lot::RwLockReadGuard<'_, Registry> {
        self.inner.registry.read()
    }

    pub(crate) fn ingest(&self) -> &Ingest {
        &self.inner.ingest
    }

    /// This daemon's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The registry's figures `/metrics` reports, each read under a short lock: the
    /// webhooks are counted [`WEBHOOKS_PER_LOCK`] at a time, the lock released between
    /// steps, so a scrape never holds back the log's writer (and so deliveries) for long.
    pub(crate) fn scrape_figures(&self) -> ScrapeFigures {
        let pending_deliveries = self.registry().pending_count() as u64;
        let mut webhooks = actors::WebhookStates::default();
        let mut after = None;
        loop {
            let (counts, next) = self
                .registry()
                .count_webhook_states(after.as_ref(), WEBHOOKS_PER_LOCK);
            webhooks.add(counts);
            match next {
                Some(id) => after = Some(id),
                None => break,
            }
        }
        ScrapeFigures {
            pending_deliveries,
            webhooks,
            log_last_seq: self.inner.log.last_seq(),
        }
    }

    pub(crate) fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    /// The tenant limits (INTERFACE.md section 8).
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn node(&self) -> &str {
        &self.inner.node
    }

    /// How the last start went.
    pub(crate) fn start_info(&self) -> StartInfo {
        self.inner.start
    }

    /// The live figures kept beside the registry's.
    pub(crate) fn figures(&self) -> &HealthFigures {
        &self.inner.figures
    }

    /// One record of the log, verified; `None` when it is missing or unreadable.
    pub(crate) fn read_record(&self, seq: u64) -> Option<Record> {
        match self.inner.log.iter_from(seq).next() {
            Some(Ok(record)) if record.seq == seq => Some(record),
            Some(Err(e)) => {
                tracing::error!(seq, error = %e, "cannot read a log record");
                None
            }
            _ => None,
        }
    }

    /// Whether the event log can be written now.
    pub(crate) fn log_health(&self) -> eventlog::LogHealth {
        self.inner.log.health()
    }

    /// Whether any account ever created a webhook with this id (the log keeps a unique
    /// key per created webhook, deleted ones included).
    pub(crate) fn webhook_id_used(&self, id: &eventlog::WebhookId) -> Result<bool, ApiError> {
        let key = actors::index::webhook_id_key(id);
        Ok(self.inner.log.unique_seq(&key)?.is_some())
    }

    /// Sequences indexed under (`index`, `key`) in the log, from `start`, in order.
    pub(crate) fn scan_index(
        &self,
        index: eventlog::IndexId,
        key: &[u8],
        start: Option<u64>,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<u64>, ApiError> {
        Ok(self
            .inner
            .log
            .scan_index(index, key, start, ascending, limit)?)
    }

    /// Appends events durably; they are applied to the registry before this returns.
    pub(crate) async fn commit(&self, events: Vec<Event>) -> Result<Vec<Record>, ApiError> {
        Ok(self.inner.log.append(events).await?)
    }
}

/// How the last start went, reported by `/healthz`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartInfo {
    /// Sequence of the snapshot loaded (0: none).
    pub snapshot_seq: u64,
    /// Records replayed after it.
    pub replayed_records: u64,
}

/// Live figures `/healthz` reports besides the registry's.
#[derive(Debug, Clone, Default)]
pub struct HealthFigures {
    /// Sequence of the newest snapshot saved.
    pub last_snapshot_seq: Arc<AtomicU64>,
}
