//! `GET /healthz`: answers once the log is replayed and the API serves (no auth), with
//! what an operator wants at a glance. While the event log cannot be written (a full
//! disk, the writer stopped) it answers 503 with the reason: nothing can be accepted
//! then, and API writes answer 503 too.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use eventlog::LogHealth;
use serde_json::json;

use super::envelope::Reply;
use super::schemas;
use super::state::AppState;
use crate::clock;

/// `GET /healthz`: the log's last sequence, the deliveries pending, the events accepted,
/// the newest snapshot and how the last start went.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Health",
    security(()),
    responses(
        (status = 200, description = "Serving, the event log writable.", body = schemas::Envelope<schemas::Health>),
        (status = 503, description = "The event log cannot be written (`data.log.reason`).", body = schemas::Envelope<schemas::Health>),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Reply {
    let (last_seq, pending, events_accepted) = {
        let registry = state.registry();
        (
            registry.last_seq(),
            registry.pending_count(),
            registry.events_accepted(),
        )
    };
    let start = state.start_info();
    let (status, log) = match state.log_health() {
        LogHealth::Writable => (StatusCode::OK, json!({"writable": true})),
        LogHealth::Failing { reason, since_ms } => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"writable": false, "reason": reason, "since": clock::rfc3339(since_ms)}),
        ),
        LogHealth::Stopped => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"writable": false, "reason": "the event log's writer has stopped; restart the daemon"}),
        ),
    };
    let reply = Reply::ok(json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "log": log,
        "last_seq": last_seq,
        "pending_deliveries": pending,
        "events_accepted": events_accepted,
        "last_snapshot_seq": state.figures().last_snapshot_seq.load(Ordering::Relaxed),
        "start": {"snapshot_seq": start.snapshot_seq, "replayed_records": start.replayed_records},
    }));
    reply.with_status(status)
}
