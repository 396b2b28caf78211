//! Redelivery on a real log: what a webhook owes, page by page, and the registry's cursor.

use eventlog::{AccountId, Attempt, AttemptResult, Event, EventId, WebhookId};
use serde_json::json;

use super::*;
use crate::Projection;

struct Setup {
    _dir: tempfile::TempDir,
    projection: Projection,
    log: EventLog,
    master: AccountId,
    child: AccountId,
    hook: WebhookId,
}

/// A master account with a child, and a `channel_create` hook of the master's that does
/// not include subaccounts.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let projection = Projection::new();
    let log = projection.open_log(&dir.path().join("eventlog")).unwrap();
    let (master, child, hook) = (
        AccountId::generate(),
        AccountId::generate(),
        WebhookId::generate(),
    );
    log.append(vec![
        Event::AccountCreated {
            account_id: master.clone(),
            parent_id: None,
            api_key: "redelivery-test-key".into(),
            doc: json!({"name": "Master"}),
        },
        Event::AccountCreated {
            account_id: child.clone(),
            parent_id: Some(master.clone()),
            api_key: "redelivery-child-key".into(),
            doc: json!({"name": "Child"}),
        },
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: hook.clone(),
            doc: json!({"name": "h", "hook": "channel_create", "uri": "http://example.com", "enabled": true}),
        },
    ])
    .await
    .unwrap();
    Setup {
        _dir: dir,
        projection,
        log,
        master,
        child,
        hook,
    }
}

fn accepted(account: &AccountId, n: u32, hook_event: &str) -> Event {
    Event::EventAccepted {
        event_id: EventId::parse(&format!("ev-{n}")).unwrap(),
        account_id: account.clone(),
        hook_event: hook_event.into(),
        payload: json!({"call_id": format!("call-{n}")}),
    }
}

fn attempt(s: &Setup, event_seq: u64, n: u32, result: AttemptResult) -> Event {
    Event::DeliveryAttempted(Attempt {
        event_seq,
        event_id: EventId::parse(&format!("ev-{n}")).unwrap(),
        webhook_id: s.hook.clone(),
        account_id: s.master.clone(),
        hook_event: "channel_create".into(),
        uri: "http://example.com".into(),
        method: "post".into(),
        result,
        reason: None,
        client_error: None,
        response_code: Some(if result == AttemptResult::Success {
            200
        } else {
            500
        }),
        response_body: None,
        retries_left: 0,
        latency_ms: 1,
        next_try_at_ms: None,
        local_fault: false,
    })
}

impl Setup {
    fn selector(&self, undelivered_only: bool) -> Selector {
        let registry = self.projection.registry();
        let registry = registry.read();
        Selector::for_hook(registry.webhook(&self.hook).unwrap(), undelivered_only)
    }

    fn count(&self, undelivered_only: bool, from: u64, until: u64) -> u64 {
        let registry = self.projection.registry();
        count(
            &self.log,
            registry,
            &self.selector(undelivered_only),
            from,
            until,
        )
        .unwrap()
    }
}

#[tokio::test]
async fn a_hook_owes_the_events_it_matches_and_did_not_receive() {
    let s = setup().await;
    // seq 4..=9: own matching events (4, 5, 7, 9), a child's (6), another kind (8).
    let records = s
        .log
        .append(vec![
            accepted(&s.master, 1, "channel_create"),
            accepted(&s.master, 2, "channel_create"),
            accepted(&s.child, 3, "channel_create"),
            accepted(&s.master, 4, "channel_create"),
            accepted(&s.master, 5, "channel_destroy"),
            accepted(&s.master, 6, "channel_create"),
        ])
        .await
        .unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![4, 5, 6, 7, 8, 9]);
    // ev-1 delivered; ev-2 failed for good; ev-4 failed then delivered.
    s.log
        .append(vec![
            attempt(&s, 4, 1, AttemptResult::Success),
            attempt(&s, 5, 2, AttemptResult::Failure),
            attempt(&s, 7, 4, AttemptResult::Failure),
            attempt(&s, 7, 4, AttemptResult::Success),
        ])
        .await
        .unwrap();

    assert_eq!(s.count(false, 4, 9), 4, "every matching event of the range");
    assert_eq!(s.count(true, 4, 9), 2, "ev-2 and ev-6 were never delivered");
    assert_eq!(s.count(true, 6, 8), 0);
    assert_eq!(s.count(true, 9, 9), 1);

    let registry = s.projection.registry();
    let redelivery = Redelivery {
        request_seq: 99,
        next_seq: 4,
        until_seq: 9,
        undelivered_only: true,
    };
    let page = next_page(&s.log, registry, &s.selector(true), &redelivery, 1234).unwrap();
    let got: Vec<(u64, &str)> = page
        .deliveries
        .iter()
        .map(|d| (d.event.seq, d.event.event_id.as_str()))
        .collect();
    assert_eq!(got, vec![(5, "ev-2"), (9, "ev-6")]);
    assert_eq!(page.next_seq, 10, "the range is done");
    assert_eq!(page.request_seq, 99);
    let first = &page.deliveries[0];
    assert_eq!(first.webhook_id, s.hook);
    assert_eq!((first.tries_done, first.next_try_at_ms), (0, 1234));
    assert_eq!(first.event.call_id(), Some("call-2"));
}

#[tokio::test]
async fn pages_hold_a_bounded_number_of_events_and_go_on_where_they_stopped() {
    let s = setup().await;
    let n = PAGE_EVENTS as u32 + 10;
    let events: Vec<Event> = (0..n)
        .map(|i| accepted(&s.master, i, "channel_create"))
        .collect();
    let records = s.log.append(events).await.unwrap();
    let (first, last) = (records[0].seq, records[records.len() - 1].seq);
    let registry = s.projection.registry();
    let mut redelivery = Redelivery {
        request_seq: 1,
        next_seq: first,
        until_seq: last,
        undelivered_only: true,
    };
    let page = next_page(&s.log, registry, &s.selector(true), &redelivery, 0).unwrap();
    assert_eq!(page.deliveries.len(), PAGE_EVENTS);
    assert_eq!(page.next_seq, first + PAGE_EVENTS as u64);
    redelivery.next_seq = page.next_seq;
    let page = next_page(&s.log, registry, &s.selector(true), &redelivery, 0).unwrap();
    assert_eq!(page.deliveries.len(), 10);
    assert_eq!(page.next_seq, last + 1);
    assert_eq!(s.count(true, first, last), u64::from(n));
}

#[tokio::test]
async fn a_subaccount_hook_owes_the_childrens_events_too() {
    let s = setup().await;
    let records = s
        .log
        .append(vec![
            accepted(&s.child, 1, "channel_create"),
            Event::WebhookUpdated {
                account_id: s.master.clone(),
                webhook_id: s.hook.clone(),
                doc: json!({"name": "h", "hook": "channel_create", "uri": "http://example.com", "enabled": true, "include_subaccounts": true}),
            },
        ])
        .await
        .unwrap();
    // Matching uses the configuration as it is now, not as it was then.
    assert_eq!(s.count(true, records[0].seq, records[0].seq), 1);
}

#[tokio::test]
async fn times_map_to_the_sequences_appended_within_them() {
    let s = setup().await;
    let last = s.log.last_seq();
    assert_eq!(seq_range(&s.log, 0, u64::MAX - 1).unwrap(), Some((1, last)));
    let future = eventlog::now_ms() + 60_000;
    assert_eq!(seq_range(&s.log, future, future + 1).unwrap(), None);
    assert_eq!(first_seq_at_or_after(&s.log, future).unwrap(), None);
    assert_eq!(first_seq_at_or_after(&s.log, 0).unwrap(), Some(1));
    assert_eq!(
        seq_range(&s.log, 0, 0).unwrap(),
        None,
        "nothing before 1970"
    );
}

#[tokio::test]
async fn the_registry_keeps_a_cursor_until_the_range_is_done_and_a_disable_drops_it() {
    let s = setup().await;
    let records = s
        .log
        .append(vec![Event::RedeliveryRequested {
            account_id: s.master.clone(),
            webhook_id: s.hook.clone(),
            requested_by: s.master.clone(),
            from_seq: 2,
            until_seq: 3,
            undelivered_only: true,
            events: 1,
            attempt_seq: None,
            since_ms: Some(0),
            until_ms: Some(1),
        }])
        .await
        .unwrap();
    let request_seq = records[0].seq;
    let registry = s.projection.registry();
    let expected = Redelivery {
        request_seq,
        next_seq: 2,
        until_seq: 3,
        undelivered_only: true,
    };
    assert_eq!(registry.read().redelivery_for(&s.hook), Some(&expected));
    assert!(registry.read().has_pending(&s.hook));
    let advance = |next_seq| Event::RedeliveryAdvanced {
        webhook_id: s.hook.clone(),
        request_seq,
        next_seq,
    };
    s.log.append(vec![advance(3)]).await.unwrap();
    assert_eq!(
        registry.read().redelivery_for(&s.hook).map(|r| r.next_seq),
        Some(3)
    );
    assert_eq!(registry.read().redelivery_pins().1, Some(3));
    s.log.append(vec![advance(4)]).await.unwrap();
    assert_eq!(registry.read().redelivery_for(&s.hook), None, "done");
    assert!(!registry.read().has_pending(&s.hook));

    // Asked again, then the hook is disabled: what it was owed is dropped.
    let again = Event::RedeliveryRequested {
        account_id: s.master.clone(),
        webhook_id: s.hook.clone(),
        requested_by: s.master.clone(),
        from_seq: 1,
        until_seq: 3,
        undelivered_only: false,
        events: 2,
        attempt_seq: Some(1),
        since_ms: None,
        until_ms: None,
    };
    s.log.append(vec![again.clone()]).await.unwrap();
    assert!(registry.read().redelivery_for(&s.hook).is_some());
    s.log
        .append(vec![Event::WebhookUpdated {
            account_id: s.master.clone(),
            webhook_id: s.hook.clone(),
            doc: json!({"name": "h", "hook": "channel_create", "uri": "http://example.com", "enabled": false}),
        }])
        .await
        .unwrap();
    assert_eq!(registry.read().redelivery_for(&s.hook), None);
    // A request for a disabled hook, or of another owner, is not taken.
    s.log.append(vec![again]).await.unwrap();
    assert_eq!(registry.read().redelivery_for(&s.hook), None);
}
