//! The REST API: routes, shared state and the Crossbar conventions.
//!
//! One file per resource under `api/`. Handlers read the [`Registry`] for validation and
//! answers, and change state only by committing events to the log ([`AppState::commit`]);
//! the log's commit hook applies them before the commit returns, so a handler sees its
//! own change when it reads back.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, patch, post, put};
use axum::Router;
use eventlog::{Event, EventLog, Record};
use parking_lot::RwLock;

use actors::Registry;

use crate::config::ServeConfig;
use crate::ingest::Ingest;

mod accounts;
mod attempts;
mod auth;
mod body;
mod envelope;
mod error;
mod events;
mod listing;
mod validate;
mod webhooks;

pub(crate) use error::ApiError;

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
    node: String,
}

impl AppState {
    /// Shares the registry and log with the API.
    pub fn new(
        registry: Arc<RwLock<Registry>>,
        log: EventLog,
        config: ServeConfig,
        start: StartInfo,
        figures: HealthFigures,
    ) -> Self {
        let node = format!("piston-webhooks@{}", config.listen);
        let ingest = Ingest::new(log.clone());
        AppState {
            inner: Arc::new(Shared {
                registry,
                log,
                ingest,
                start,
                figures,
                config,
                node,
            }),
        }
    }

    pub(crate) fn registry(&self) -> parking_lot::RwLockReadGuard<'_, Registry> {
        self.inner.registry.read()
    }

    pub(crate) fn ingest(&self) -> &Ingest {
        &self.inner.ingest
    }

    pub(crate) fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    pub(crate) fn node(&self) -> &str {
        &self.inner.node
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
    pub last_snapshot_seq: Arc<std::sync::atomic::AtomicU64>,
}

/// Every route of INTERFACE.md sections 3 and 4, with the envelope middleware.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v2/api_auth", put(auth::create_token))
        .route(
            "/v2/accounts/{account_id}",
            put(accounts::create_child_account)
                .get(accounts::get_account)
                .post(accounts::update_account)
                .patch(accounts::patch_account)
                .delete(accounts::delete_account),
        )
        .route(
            "/v2/accounts/{account_id}/children",
            get(accounts::list_children),
        )
        .route(
            "/v2/accounts/{account_id}/descendants",
            get(accounts::list_descendants),
        )
        .route(
            "/v2/accounts/{account_id}/api_key",
            get(accounts::get_api_key),
        )
        .route("/v2/events", post(events::ingest_events))
        .route("/v2/webhooks", get(webhooks::list_available_hooks))
        .route("/v2/webhooks/samples", get(webhooks::list_samples))
        .route(
            "/v2/webhooks/samples/{sample_id}",
            get(webhooks::get_sample),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks",
            get(webhooks::list_webhooks)
                .put(webhooks::create_webhook)
                .patch(webhooks::reenable_account_webhooks),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/attempts",
            get(attempts::list_account_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}/attempts",
            get(attempts::list_webhook_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}",
            get(webhooks::get_webhook)
                .post(webhooks::update_webhook)
                .patch(webhooks::patch_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/v2/accounts/{account_id}/descendants/webhooks",
            patch(webhooks::reenable_descendant_webhooks),
        )
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            envelope::complete_envelope,
        ))
        .layer(axum::middleware::from_fn(
            move |mut request: axum::extract::Request, next: axum::middleware::Next| {
                request.extensions_mut().insert(body::BodyLimit(limit));
                next.run(request)
            },
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Answers once the log is replayed and the API serves (no auth), with what an operator
/// wants at a glance.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> envelope::Reply {
    let (last_seq, pending, events_accepted) = {
        let registry = state.registry();
        (
            registry.last_seq(),
            registry.pending_count(),
            registry.events_accepted(),
        )
    };
    let start = state.inner.start;
    envelope::Reply::ok(serde_json::json!({
        "status": "ok",
        "last_seq": last_seq,
        "pending_deliveries": pending,
        "events_accepted": events_accepted,
        "last_snapshot_seq": state.inner.figures.last_snapshot_seq.load(std::sync::atomic::Ordering::Relaxed),
        "start": {"snapshot_seq": start.snapshot_seq, "replayed_records": start.replayed_records},
    }))
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
