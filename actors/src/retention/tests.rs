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

#[test]
fn configuration_history_keeps_each_current_document_and_forgets_superseded_updates() {
    use crate::registry::Registry;

    let master = AccountId::parse(&format!("{:032x}", 1)).unwrap();
    let (kept_hook, gone_hook) = (WebhookId::generate(), WebhookId::generate());
    let doc =
        |name: &str| json!({"name": name, "uri": "http://example.com/", "hook": "channel_create"});
    let events = vec![
        Event::AccountCreated {
            account_id: master.clone(),
            parent_id: None,
            api_key: "k".into(),
            doc: json!({"name": "m"}),
        },
        Event::AccountUpdated {
            account_id: master.clone(),
            doc: json!({"name": "m2"}),
        },
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: kept_hook.clone(),
            doc: doc("v1"),
        },
        Event::WebhookUpdated {
            account_id: master.clone(),
            webhook_id: kept_hook.clone(),
            doc: doc("v2"),
        },
        Event::WebhookUpdated {
            account_id: master.clone(),
            webhook_id: kept_hook.clone(),
            doc: doc("v3"),
        },
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: gone_hook.clone(),
            doc: doc("g1"),
        },
        Event::WebhookUpdated {
            account_id: master.clone(),
            webhook_id: gone_hook.clone(),
            doc: doc("g2"),
        },
        Event::WebhookSecretSet {
            account_id: master.clone(),
            webhook_id: gone_hook.clone(),
            secret: eventlog::Secret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        },
        Event::WebhookSecretSet {
            account_id: master.clone(),
            webhook_id: kept_hook.clone(),
            secret: eventlog::Secret::new("whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
        },
        Event::WebhookDeleted {
            account_id: master.clone(),
            webhook_id: gone_hook.clone(),
        },
    ];
    let records: Vec<Record> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| record(i as u64 + 1, e))
        .collect();
    let mut registry = Registry::new();
    for r in &records {
        registry.apply(r);
    }
    let rule = RetentionRule::for_registry(&registry, 50_000);
    let forgotten: Vec<u64> = records
        .iter()
        .filter(|r| rule.may_forget(r))
        .map(|r| r.seq)
        .collect();
    // Kept: both creations (ids are never reused), the current documents (the account's
    // update at 2, the live hook's at 5), the live hook's secret (9) and the deletion;
    // forgotten: the live hook's superseded update (4), the deleted hook's update (7) and
    // its secret (8).
    assert_eq!(forgotten, vec![4, 7, 8]);

    // What is left replays to the same documents.
    let mut compacted = Registry::new();
    for r in records.iter().filter(|r| !rule.may_forget(r)) {
        compacted.apply(r);
    }
    assert_eq!(compacted.webhook(&kept_hook).unwrap().doc["name"], "v3");
    assert_eq!(compacted.account(&master).unwrap().doc["name"], "m2");
    assert!(compacted.webhook(&gone_hook).is_none());

    // Without compaction (a registry from an older snapshot), nothing of it goes.
    let conservative = RetentionRule::new(HashSet::new(), 50_000);
    assert!(records.iter().all(|r| !conservative.may_forget(r)));
}
