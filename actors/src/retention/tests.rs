use eventlog::{AccountId, Attempt, AttemptResult, EventId, WebhookId};
use serde_json::json;

use super::*;

fn record(seq: u64, event: Event) -> Record {
    Record {
        seq,
        time_ms: 1_000,
        event,
    }
}

fn accepted(seq: u64) -> Record {
    record(
        seq,
        Event::EventAccepted {
            event_id: EventId::generate(),
            account_id: AccountId::generate(),
            hook_event: "channel_create".into(),
            payload: json!({"call_id": "c"}),
        },
    )
}

fn token(expires_at: u64) -> Record {
    record(
        9,
        Event::TokenIssued {
            token_hash: "h".into(),
            account_id: AccountId::generate(),
            expires_at,
            expires_at_ms: None,
        },
    )
}

#[test]
fn call_events_and_attempts_go_unless_still_owed_and_configuration_stays() {
    let rule = RetentionRule::new(HashSet::from([2]), 50_000);
    assert!(rule.may_forget(&accepted(1)));
    assert!(!rule.may_forget(&accepted(2)), "still owed to a webhook");
    let attempt = Event::DeliveryAttempted(Attempt {
        event_seq: 1,
        event_id: EventId::generate(),
        webhook_id: WebhookId::generate(),
        account_id: AccountId::generate(),
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
    assert!(rule.may_forget(&record(3, attempt)));
    let account = Event::AccountCreated {
        account_id: AccountId::generate(),
        parent_id: None,
        api_key: "k".into(),
        doc: json!({"name": "m"}),
    };
    assert!(!rule.may_forget(&record(4, account)));
}

#[test]
fn tokens_go_once_expired_before_the_cutoff() {
    let rule = RetentionRule::new(HashSet::new(), 50_000);
    assert!(rule.may_forget(&token(49)));
    assert!(!rule.may_forget(&token(50)));
    assert!(!rule.may_forget(&token(u64::MAX)));
}
