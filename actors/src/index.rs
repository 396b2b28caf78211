//! What the event log indexes on disk, so nothing per event has to stay in memory:
//! each accepted event's id is a unique key (a producer's retry of an event still in
//! the log is skipped atomically by the log's writer), and each delivery attempt is
//! indexed by the hook owner's account and by the webhook (the attempts listings).
//! Pruned records take their index entries with them.

use std::sync::Arc;

use eventlog::{Event, IndexId, IndexKeys, Indexer};

/// Attempts by the hook owner's account id.
pub const ATTEMPTS_BY_ACCOUNT: IndexId = 1;
/// Attempts by webhook id.
pub const ATTEMPTS_BY_HOOK: IndexId = 2;

/// The unique key of an accepted event's id.
pub fn event_id_key(event_id: &str) -> Vec<u8> {
    let mut key = b"event:".to_vec();
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// The index keys of one event.
pub fn index_keys(event: &Event) -> IndexKeys {
    match event {
        Event::EventAccepted { event_id, .. } => IndexKeys {
            unique: Some(event_id_key(event_id.as_str())),
            entries: Vec::new(),
        },
        Event::DeliveryAttempted(attempt) => IndexKeys {
            unique: None,
            entries: vec![
                (
                    ATTEMPTS_BY_ACCOUNT,
                    attempt.account_id.as_str().as_bytes().to_vec(),
                ),
                (
                    ATTEMPTS_BY_HOOK,
                    attempt.webhook_id.as_str().as_bytes().to_vec(),
                ),
            ],
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
    use eventlog::{AccountId, Attempt, AttemptResult, EventId, WebhookId};
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
        });
        let keys = index_keys(&attempt);
        assert_eq!(keys.unique, None);
        assert_eq!(
            keys.entries,
            vec![
                (ATTEMPTS_BY_ACCOUNT, account.as_str().as_bytes().to_vec()),
                (ATTEMPTS_BY_HOOK, hook.as_str().as_bytes().to_vec()),
            ]
        );
        let other = Event::AccountDeleted {
            account_id: account,
        };
        assert_eq!(index_keys(&other), IndexKeys::default());
    }
}
