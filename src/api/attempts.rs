//! Delivery attempts: `GET /v2/accounts/{A}/webhooks/attempts` and
//! `GET /v2/accounts/{A}/webhooks/{ID}/attempts`, newest first by log order, paged.
//!
//! The registry indexes attempt records by sequence; the items are read from the log as
//! the page is built, so only what a page shows (plus filtered-out items) is read.

use axum::extract::{Path, State};
use eventlog::{AttemptResult, Event};
use serde_json::{json, Value};

use super::auth::{webhook_in, Caller};
use super::body::QueryPairs;
use super::envelope::Reply;
use super::error::ApiError;
use super::listing::ListQuery;
use super::AppState;
use crate::clock;

/// Sequence numbers as fixed-width keys, so that key order is log order.
fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The attempt item of one `DeliveryAttempted` record.
fn attempt_item(state: &AppState, seq: u64) -> Option<(String, Value, Value)> {
    let record = state.read_record(seq)?;
    let Event::DeliveryAttempted(a) = record.event else {
        return None;
    };
    let mut item = json!({
        "hook_id": a.webhook_id.as_str(),
        "event_id": a.event_id.as_str(),
        "hook_event": a.hook_event,
        "uri": a.uri,
        "method": a.method,
        "result": match a.result { AttemptResult::Success => "success", AttemptResult::Failure => "failure" },
        "retries_left": a.retries_left,
        "latency_ms": a.latency_ms,
        "timestamp": clock::gregorian_secs(record.time_ms),
    });
    if let Value::Object(map) = &mut item {
        for (key, value) in [
            ("reason", a.reason.map(Value::from)),
            ("client_error", a.client_error.map(Value::from)),
            ("response_code", a.response_code.map(Value::from)),
            ("response_body", a.response_body.map(Value::from)),
        ] {
            if let Some(v) = value {
                map.insert(key.to_owned(), v);
            }
        }
    }
    Some((seq_key(seq), item.clone(), item))
}

fn list(state: &AppState, seqs: &[u64], query: &QueryPairs) -> Reply {
    let query = ListQuery::from_query(query);
    // Cut at the start key first (the sequences are sorted), so a deep page does not read
    // the records before it; records are then read lazily, as the page fills.
    let start = query.start_key().and_then(|k| k.parse::<u64>().ok());
    let seqs = match (start, query.ascending(true)) {
        (Some(s), true) => &seqs[seqs.partition_point(|q| *q < s)..],
        (Some(s), false) => &seqs[..seqs.partition_point(|q| *q <= s)],
        (None, _) => seqs,
    };
    let items = seqs.iter().filter_map(|seq| attempt_item(state, *seq));
    let (data, page) = query.page(items, true);
    Reply::ok(Value::Array(data)).paged(page)
}

/// `GET /v2/accounts/{A}/webhooks/attempts`.
pub(crate) async fn list_account_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let seqs = {
        let registry = state.registry();
        let id = caller.authorize(&registry, &account)?;
        registry.attempts_of_account(&id).to_vec()
    };
    Ok(list(&state, &seqs, &query))
}

/// `GET /v2/accounts/{A}/webhooks/{ID}/attempts`.
pub(crate) async fn list_webhook_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let seqs = {
        let registry = state.registry();
        let id = caller.authorize(&registry, &account)?;
        let hook = webhook_in(&registry, &id, &webhook)?;
        registry.attempts_of_hook(&hook.id).to_vec()
    };
    Ok(list(&state, &seqs, &query))
}
