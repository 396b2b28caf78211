//! What the event log indexes on disk, so nothing per event has to stay in memory:
//! each accepted event's id is a unique key (a producer's retry of an event still in
//! the log is skipped atomically by the log's writer), and each delivery attempt is
//! indexed by the hook owner's account and by the webhook (the attempts listings); a
//! successful attempt is also indexed by webhook and event (what a recover skips).
//! Pruned records take their index entries with them.

use std::sync::Arc;

use eventlog::{AccountId, AttemptResult, Event, IndexId, IndexKeys, Indexer, WebhookId};

/// Attempts by the hook owner's account id.
pub const ATTEMPTS_BY_ACCOUNT: IndexId = 1;
/// Attempts by the hook owner's account and the webhook id ([`attempts_by_hook_key`]).
pub const ATTEMPTS_BY_HOOK: IndexId = 2;

/// Successful attempts by owner, webhook and event sequence ([`delivered_key`]): whether
/// a webhook received an event, in one seek.
pub const DELIVERED: IndexId = 3;

/// The version of what [`index_keys`] derives: a log indexed under another version is
/// re-indexed when it opens. 2: webhook ids are unique keys, and attempts by webhook are
/// keyed by owner and webhook. 3: successful attempts by webhook and event.
pub const INDEXER_VERSION: u32 = 3;

/// The unique key of an accepted event's id.
pub fn event_id_key(event_id: &str) -> Vec<u8> {
    let mut key = b"event:".to_vec();
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// The unique key of a created webhook's id: held for as long as the log keeps the
/// creating record (configuration history is kept), so an id is never used twice.
pub fn webhook_id_key(webhook_id: &WebhookId) -> Vec<u8> {
    let mut key = b"webhook:".to_vec();
    key.extend_from_slice(webhook_id.as_str().as_bytes());
    key
}

/// The attempts-by-webhook entry key: the hook owner's account and the hook, so a
/// listing under one account never sees another account's attempts, whatever the ids.
pub fn attempts_by_hook_key(account_id: &AccountId, webhook_id: &WebhookId) -> Vec<u8> {
    let mut key = Vec::with_capacity(65);
    key.extend_from_slice(account_id.as_str().as_bytes());
    key.push(b'/');
    key.extend_from_slice(webhook_id.as_str().as_bytes());
    key
}

/// The [`DELIVERED`] entry key of one event (by its `EventAccepted` sequence) to one
/// webhook of one owner.
pub fn delivered_key(account_id: &AccountId, webhook_id: &WebhookId, event_seq: u64) -> Vec<u8> {
    let mut key = attempts_by_hook_key(account_id, webhook_id);
    key.push(b'/');
    key.extend_from_slice(&event_seq.to_be_bytes());
    key
}

/// The index keys of one event.
pub fn index_keys(event: &Event) -> IndexKeys {
    match event {
        Event::EventAccepted { event_id, .. } => IndexKeys {
            unique: Some(event_id_key(event_id.as_str())),
            entries: Vec::new(),
        },
        Event::DeliveryAttempted(attempt) => {
            let mut entries = vec![
                (
                    ATTEMPTS_BY_ACCOUNT,
                    attempt.account_id.as_str().as_bytes().to_vec(),
                ),
                (
                    ATTEMPTS_BY_HOOK,
                    attempts_by_hook_key(&attempt.account_id, &attempt.webhook_id),
                ),
            ];
            if attempt.result == AttemptResult::Success {
                entries.push((
                    DELIVERED,
                    delivered_key(&attempt.account_id, &attempt.webhook_id, attempt.event_seq),
                ));
            }
            IndexKeys {
                unique: None,
                entries,
            }
        }
        Event::WebhookCreated { webhook_id, .. } => IndexKeys {
            unique: Some(webhook_id_key(webhook_id)),
            entries: Vec::new(),
        },
        _ => IndexKeys::default(),
    }
}

/// The indexer to open the daemon's log with.
pub fn indexer() -> Indexer {
    Arc::new(index_keys)
}

#[cfg(test)]
mod tests {
    use eventlog::{AccountId, Attempt, EventId, WebhookId};
    use serde_json::json;

    use super::*;

    #[test]
    fn accepted_events_are_unique_by_id_and_attempts_indexed_by_owner_and_hook() {
        let account = AccountId::generate();
        let hook = WebhookId::generate();
        let accepted = Event::EventAccepted {
            event_id: EventId::parse("ev-1").unwrap(),
            account_id: account.clone(),
            hook_event: "channel_create".into(),
            payload: json!({}),
        };
        assert_eq!(index_keys(&accepted).unique, Some(b"event:ev-1".to_vec()));
        assert!(index_keys(&accepted).entries.is_empty());
        let attempt = Event::DeliveryAttempted(Attempt {
            event_seq: 1,
            event_id: EventId::parse("ev-1").unwrap(),
            webhook_id: hook.clone(),
            account_id: account.clone(),
            hook_event: "channel_create".into(),
            uri: "http://example.com".into(),
            method: "post".into(),
            result: AttemptResult::Success,
            reason: None,
            client_error: None,
            response_code: Some(200),
            response_body: None,
            retries_left: 2,
            latency_ms: 1,
            next_try_at_ms: None,
            local_fault: false,
        });
        let keys = index_keys(&attempt);
        assert_eq!(keys.unique, None);
        assert_eq!(
            keys.entries,
            vec![
                (ATTEMPTS_BY_ACCOUNT, account.as_str().as_bytes().to_vec()),
                (ATTEMPTS_BY_HOOK, attempts_by_hook_key(&account, &hook)),
                (DELIVERED, delivered_key(&account, &hook, 1)),
            ]
        );
        let Event::DeliveryAttempted(mut failed) = attempt else {
            unreachable!()
        };
        failed.result = AttemptResult::Failure;
        assert_eq!(
            index_keys(&Event::DeliveryAttempted(failed)).entries.len(),
            2,
            "a failed try is not a delivery"
        );
        let other = Event::AccountDeleted {
            account_id: account,
        };
        assert_eq!(index_keys(&other), IndexKeys::default());
    }
}
