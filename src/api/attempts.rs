//! Delivery attempts: `GET /v2/accounts/{A}/webhooks/attempts` and
//! `GET /v2/accounts/{A}/webhooks/{ID}/attempts`, newest first by log order, paged.
//!
//! The log indexes attempt records on disk by hook owner and by webhook (see
//! `actors::index`); a page walks that index from its start key in chunks and reads only
//! the records it shows (plus those a filter skips), however many attempts exist.

use axum::extract::{Path, State};
use eventlog::{AttemptResult, Event, IndexId};
use serde_json::{json, Value};

use actors::index::{attempts_by_hook_key, ATTEMPTS_BY_ACCOUNT, ATTEMPTS_BY_HOOK};

use super::auth::{webhook_in, Caller};
use super::body::QueryPairs;
use super::envelope::Reply;
use super::error::ApiError;
use super::fields::PageInfo;
use super::listing::ListQuery;
use super::schemas::{self, AccountPath, ListParams, WebhookPath};
use super::state::AppState;
use crate::clock;

/// Index entries read per step while a page fills.
const SCAN_CHUNK: usize = 256;

/// The most attempts one page holds, whatever `page_size` (or `paginate=false`) asks.
const MAX_PAGE_SIZE: usize = 1000;

/// The most index entries one request looks at: a filter that matches little ends the
/// page early, with a `next_start_key` to go on from, instead of walking every attempt.
const MAX_SCANNED: usize = 10_000;

/// Sequence numbers as fixed-width keys, so that key order is log order.
fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The attempt item of one `DeliveryAttempted` record.
fn attempt_item(state: &AppState, seq: u64) -> Option<Value> {
    let record = state.read_record(seq)?;
    let Event::DeliveryAttempted(a) = record.event else {
        return None;
    };
    let mut item = json!({
        "id": seq_key(seq),
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
    Some(item)
}

/// One page of the attempts indexed under (`index`, `key`).
fn list(
    state: &AppState,
    index: IndexId,
    key: &[u8],
    query: &QueryPairs,
) -> Result<Reply, ApiError> {
    let query = ListQuery::from_query(query);
    let ascending = query.ascending(true);
    let limit = query.page_limit().min(MAX_PAGE_SIZE);
    let mut cursor = query.start_key().and_then(|k| k.parse::<u64>().ok());
    let mut items = Vec::new();
    let mut first_key = None;
    let mut next_start_key = None;
    let mut scanned = 0usize;
    'scan: loop {
        let seqs = state.scan_index(index, key, cursor, ascending, SCAN_CHUNK)?;
        let exhausted = seqs.len() < SCAN_CHUNK;
        for seq in &seqs {
            if scanned == MAX_SCANNED {
                next_start_key = Some(seq_key(*seq));
                break 'scan;
            }
            scanned += 1;
            let Some(item) = attempt_item(state, *seq) else {
                continue;
            };
            if !query.matches(&item) {
                continue;
            }
            if items.len() == limit {
                next_start_key = Some(seq_key(*seq));
                break 'scan;
            }
            first_key.get_or_insert_with(|| seq_key(*seq));
            items.push(item);
        }
        match seqs.last() {
            Some(last) if !exhausted => {
                cursor = if ascending {
                    last.checked_add(1)
                } else {
                    last.checked_sub(1)
                };
                if cursor.is_none() {
                    break;
                }
            }
            _ => break,
        }
    }
    let page = PageInfo {
        page_size: items.len(),
        start_key: first_key,
        next_start_key,
    };
    Ok(Reply::ok(Value::Array(items)).paged(page))
}

/// `GET /v2/accounts/{A}/webhooks/attempts`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/webhooks/attempts",
    tag = "attempts",
    summary = "List the delivery attempts of the account's webhooks",
    description = "Newest first by default; at most 1000 per page whatever `page_size` asks. \
        Start keys are log sequence numbers. A filter that matches little ends the page early \
        with a `next_start_key`.",
    params(AccountPath, ListParams),
    responses((status = 200, description = "A page of attempts.", body = schemas::Page<schemas::Attempt>))
)]
pub(crate) async fn list_account_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let id = caller.authorize(&state.registry(), &account)?;
    list(&state, ATTEMPTS_BY_ACCOUNT, id.as_str().as_bytes(), &query)
}

/// `GET /v2/accounts/{A}/webhooks/{ID}/attempts`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}/attempts",
    tag = "attempts",
    summary = "List a webhook's delivery attempts",
    description = "Newest first by default; at most 1000 per page, as for the account's attempts.",
    params(WebhookPath, ListParams),
    responses((status = 200, description = "A page of attempts.", body = schemas::Page<schemas::Attempt>))
)]
pub(crate) async fn list_webhook_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let (account_id, hook_id) = {
        let registry = state.registry();
        let id = caller.authorize(&registry, &account)?;
        let hook_id = webhook_in(&registry, &id, &webhook)?.id.clone();
        (id, hook_id)
    };
    list(
        &state,
        ATTEMPTS_BY_HOOK,
        &attempts_by_hook_key(&account_id, &hook_id),
        &query,
    )
}
