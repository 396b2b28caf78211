//! `GET /healthz`: answers once the log is replayed and the API serves (no auth), with
//! what an operator wants at a glance.

use std::sync::atomic::Ordering;

use axum::extract::State;
use serde_json::json;

use super::envelope::Reply;
use super::state::AppState;

/// `GET /healthz`: the log's last sequence, the deliveries pending, the events accepted,
/// the newest snapshot and how the last start went.
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
    Reply::ok(json!({
        "status": "ok",
        "last_seq": last_seq,
        "pending_deliveries": pending,
        "events_accepted": events_accepted,
        "last_snapshot_seq": state.figures().last_snapshot_seq.load(Ordering::Relaxed),
        "start": {"snapshot_seq": start.snapshot_seq, "replayed_records": start.replayed_records},
    }))
}
