//! Resend and recover (INTERFACE.md section 10):
//! `PUT /v2/accounts/{A}/webhooks/{ID}/attempts/{ATTEMPT_ID}/resend` and
//! `PUT /v2/accounts/{A}/webhooks/{ID}/recover`.
//!
//! Both append a `RedeliveryRequested` record (who asked, for which range of the log) and
//! answer 202; the webhook actor then delivers the range page by page
//! (`actors::redelivery`). A recover counts the events it will deliver in one streaming
//! pass over the window before it answers, so the count is exact and nothing of the
//! window is held in memory.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use eventlog::{AccountId, Event, WebhookId};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use actors::redelivery::{self, Selector, MAX_REDELIVERIES_PER_HOOK};

use super::auth::{webhook_in, Caller};
use super::body::CrossbarBody;
use super::envelope::Reply;
use super::error::ApiError;
use super::schemas::{self, WebhookPath};
use super::state::AppState;
use super::validate::require_object;
use crate::kazoo_errors::{Errors, Violation};

/// The webhook a redelivery is asked for, checked: the caller may act for its account,
/// it exists there, it is enabled, and it has room for another redelivery.
fn target(
    state: &AppState,
    caller: &Caller,
    account: &str,
    webhook: &str,
) -> Result<(AccountId, WebhookId), ApiError> {
    let registry = state.registry();
    let account_id = caller.authorize(&registry, account)?;
    let hook = webhook_in(&registry, &account_id, webhook)?;
    if !hook.enabled() {
        return Err(ApiError::Conflict(
            "the webhook is disabled: enable it before asking for a redelivery".to_owned(),
        ));
    }
    if registry.redeliveries_queued(&hook.id) >= MAX_REDELIVERIES_PER_HOOK {
        return Err(ApiError::Conflict(format!(
            "the webhook already has {MAX_REDELIVERIES_PER_HOOK} redeliveries under way"
        )));
    }
    Ok((account_id, hook.id.clone()))
}

/// `PUT /v2/accounts/{A}/webhooks/{ID}/attempts/{ATTEMPT_ID}/resend`: the attempt's
/// event is delivered again now (a new attempt, the same `X-Event-ID`), whether or not
/// it was delivered before.
#[utoipa::path(
    put,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}/attempts/{attempt_id}/resend",
    tag = "attempts",
    summary = "Deliver one attempt's event again",
    description = "A new attempt of the same event (the same `X-Event-ID`), whether the earlier one failed or not. 409 when the webhook is disabled or the event is past retention.",
    params(WebhookPath, ("attempt_id" = String, Path, description = "An attempt's `id` (20 digits).")),
    responses(
        (status = 202, description = "The event is queued for the webhook.", body = schemas::Envelope<schemas::Resent>),
        (status = 409, description = "The webhook is disabled, has 64 redeliveries under way, or the event was pruned.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn resend_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook, attempt)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let (account_id, webhook_id) = target(&state, &caller, &account, &webhook)?;
    let unknown = || ApiError::BadIdentifier(attempt.clone());
    let attempt_seq = attempt.parse::<u64>().map_err(|_| unknown())?;
    let record = state.read_record(attempt_seq).ok_or_else(unknown)?;
    let Event::DeliveryAttempted(tried) = record.event else {
        return Err(unknown());
    };
    if tried.account_id != account_id || tried.webhook_id != webhook_id {
        return Err(unknown());
    }
    if state.read_record(tried.event_seq).is_none() {
        return Err(ApiError::Conflict(format!(
            "the event {} of this attempt is no longer in the log (retention)",
            tried.event_id.as_str()
        )));
    }
    state
        .commit(vec![Event::RedeliveryRequested {
            account_id,
            webhook_id,
            requested_by: caller.account_id.clone(),
            from_seq: tried.event_seq,
            until_seq: tried.event_seq,
            undelivered_only: false,
            events: 1,
            attempt_seq: Some(attempt_seq),
            since_ms: None,
            until_ms: None,
        }])
        .await?;
    Ok(Reply::ok(json!({
        "attempt_id": attempt,
        "event_id": tried.event_id.as_str(),
        "events": 1,
    }))
    .with_status(StatusCode::ACCEPTED))
}

/// `PUT /v2/accounts/{A}/webhooks/{ID}/recover` with `{"data":{"since":T,"until":T?}}`:
/// every event of the window the webhook matches and did not receive with success is
/// delivered again, in log order.
#[utoipa::path(
    put,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}/recover",
    tag = "webhooks",
    summary = "Deliver again what a webhook did not receive",
    description = "Every event of the window (`since` to `until`, RFC 3339 or Unix seconds; `until` defaults to now) that the webhook matches with its current configuration and did not receive with success: final failures, and what arrived while it was disabled. Delivered in log order, a page at a time. 409 when the webhook is disabled.",
    params(WebhookPath),
    request_body = schemas::Request<schemas::RecoverWindow>,
    responses(
        (status = 202, description = "The count of events queued.", body = schemas::Envelope<schemas::Recovered>),
        (status = 409, description = "The webhook is disabled, or has 64 redeliveries under way.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let (since_ms, until_ms) = window(body.data()?)?;
    let (account_id, webhook_id) = target(&state, &caller, &account, &webhook)?;
    let selector = {
        let registry = state.registry();
        let hook = webhook_in(&registry, &account_id, webhook_id.as_str())?;
        Selector::for_hook(hook, true)
    };
    let log = state.log().clone();
    let registry = state.registry_handle();
    let counted = tokio::task::spawn_blocking(move || {
        let Some((from, until)) = redelivery::seq_range(&log, since_ms, until_ms)? else {
            return Ok::<_, eventlog::LogError>(None);
        };
        let events = redelivery::count(&log, &registry, &selector, from, until)?;
        Ok(Some((from, until, events)))
    })
    .await
    .map_err(|e| ApiError::Storage(format!("recover count failed: {e}")))??;
    let (from_seq, until_seq, events) = counted.unwrap_or((0, 0, 0));
    // Logged even when nothing is owed: the audit shows who asked for what.
    state
        .commit(vec![Event::RedeliveryRequested {
            account_id,
            webhook_id,
            requested_by: caller.account_id.clone(),
            from_seq,
            until_seq,
            undelivered_only: true,
            events,
            attempt_seq: None,
            since_ms: Some(since_ms),
            until_ms: Some(until_ms),
        }])
        .await?;
    Ok(Reply::ok(json!({ "events": events })).with_status(StatusCode::ACCEPTED))
}

/// The recover window, Unix ms: `since` required, `until` now when absent; each RFC 3339
/// or Unix seconds (a number or a string of digits).
fn window(data: Value) -> Result<(u64, u64), ApiError> {
    let data = require_object(data)?;
    let mut errors = Errors::default();
    let mut read = |key: &str| -> Option<u64> {
        let value = data.get(key)?;
        let parsed = instant_ms(value);
        if parsed.is_none() {
            errors.add(
                key,
                Violation::new(
                    "format",
                    json!({"message": "must be RFC 3339 (2026-12-03T17:00:00Z) or Unix seconds", "value": value}),
                ),
            );
        }
        parsed
    };
    let since = read("since");
    let until = read("until");
    if data.get("since").is_none() {
        errors.add("since", Violation::required());
    }
    errors.into_result().map_err(ApiError::from)?;
    let since = since.unwrap_or(0);
    let until = until.unwrap_or_else(eventlog::now_ms);
    if until < since {
        return Err(Errors::one(
            "until",
            Violation::new(
                "minimum",
                json!({"message": "until must not be before since"}),
            ),
        )
        .into());
    }
    Ok((since, until))
}

/// An instant as RFC 3339 or Unix seconds, in Unix ms.
fn instant_ms(value: &Value) -> Option<u64> {
    let from_secs = |secs: u64| secs.checked_mul(1000);
    match value {
        Value::Number(n) => n.as_u64().and_then(from_secs),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().ok().and_then(from_secs)
        }
        Value::String(s) => {
            let at = OffsetDateTime::parse(s, &Rfc3339).ok()?;
            u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_or_unix_seconds() {
        assert_eq!(instant_ms(&json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(instant_ms(&json!("1700000000")), Some(1_700_000_000_000));
        assert_eq!(
            instant_ms(&json!("2023-11-14T22:13:20Z")),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            instant_ms(&json!("2023-11-14T23:13:20.5+01:00")),
            Some(1_700_000_000_500)
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!("yesterday"),
            json!(""),
            json!(null),
            json!([]),
        ] {
            assert_eq!(instant_ms(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_window_needs_since_and_until_not_before_it() {
        assert!(window(json!({})).is_err());
        assert!(window(json!({"since": "soon"})).is_err());
        assert!(window(json!({"since": 20, "until": 10})).is_err());
        assert!(window(json!([1])).is_err());
        assert_eq!(
            window(json!({"since": 10, "until": 20})).ok(),
            Some((10_000, 20_000))
        );
        let (since, until) = window(json!({"since": 10})).expect("since alone");
        assert_eq!(since, 10_000);
        assert!(until >= since);
    }
}
