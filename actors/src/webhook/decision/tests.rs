//! Given a hook, a delivery and a try's result, then this attempt, this retry time and
//! this verdict on the hook: no actor, no clock, a seeded random source.

use std::sync::Arc;
use std::time::Duration;

use eventlog::{AccountId, EventId, WebhookId};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use super::*;
use crate::registry::{AcceptedEvent, Webhook};

const NOW: u64 = 10_000_000;
const BASE: Duration = Duration::from_millis(100);

fn settings(failure_threshold: u32) -> DeliverySettings {
    DeliverySettings {
        retry_base: BASE,
        request_timeout: Duration::from_secs(5),
        failure_threshold,
        failure_window: Duration::from_secs(60),
        max_in_flight_per_hook: 4,
        max_in_flight_total: 64,
        max_response_body: 4096,
        max_delivery_bytes: 1024 * 1024,
        allow_private_targets: false,
        secret_rotation_overlap: Duration::from_secs(60),
        idle_stop: Duration::from_secs(60),
    }
}

fn hook(retries: u64) -> HookConfig {
    let doc = json!({
        "name": "h",
        "uri": "http://example.com/hook",
        "hook": "channel_create",
        "http_verb": "post",
        "retries": retries,
    });
    let webhook = Webhook {
        id: WebhookId::parse(&format!("{:032x}", 2)).unwrap(),
        account_id: AccountId::parse(&format!("{:032x}", 1)).unwrap(),
        doc: doc.as_object().cloned().unwrap(),
        disable_reason: None,
        recent_failures: VecDeque::new(),
        created_ms: 0,
        modified_ms: 0,
        doc_seq: 0,
        secrets: Default::default(),
    };
    HookConfig::new(&webhook, false)
}

fn delivery(tries_done: u32) -> PendingDelivery {
    PendingDelivery {
        event: Arc::new(AcceptedEvent {
            seq: 7,
            event_id: EventId::parse("ev-7").unwrap(),
            account_id: AccountId::parse(&format!("{:032x}", 1)).unwrap(),
            hook_event: "channel_create".into(),
            payload: serde_json::Map::new(),
            accepted_ms: NOW,
        }),
        webhook_id: WebhookId::parse(&format!("{:032x}", 2)).unwrap(),
        tries_done,
        next_try_at_ms: NOW,
    }
}

fn answered(status: u16) -> TryResult {
    TryResult {
        outcome: crate::delivery::classify_status(status, None),
        response_code: Some(status),
        response_body: Some("body".into()),
        client_error: None,
        latency_ms: 12,
        local_fault: false,
    }
}

fn run(
    hook: &HookConfig,
    tries_done: u32,
    result: TryResult,
    auto_disable: &mut AutoDisable,
) -> Decision {
    let settings = settings(3);
    let mut rng = StdRng::seed_from_u64(1);
    decide(
        hook,
        &delivery(tries_done),
        result,
        NOW,
        &settings,
        auto_disable,
        &mut rng,
    )
}

#[test]
fn a_success_finishes_the_delivery_and_is_recorded_as_such() {
    let mut auto_disable = AutoDisable::default();
    let d = run(&hook(2), 0, answered(200), &mut auto_disable);
    assert!(d.success && !d.disables_hook);
    assert_eq!(d.next_try_at_ms, None);
    let a = &d.attempt;
    assert_eq!(a.result, AttemptResult::Success);
    assert_eq!((a.event_seq, a.event_id.as_str()), (7, "ev-7"));
    assert_eq!(
        (a.uri.as_str(), a.method.as_str()),
        ("http://example.com/hook", "post")
    );
    assert_eq!((a.reason.as_deref(), a.response_code), (None, Some(200)));
    assert_eq!(
        (a.response_body.as_deref(), a.latency_ms),
        (Some("body"), 12)
    );
    assert_eq!(a.retries_left, 2);
    assert_eq!(auto_disable.failures(), 0);
}

#[test]
fn a_retryable_failure_with_retries_left_is_tried_again_after_the_backoff() {
    let mut auto_disable = AutoDisable::default();
    let d = run(&hook(2), 1, answered(503), &mut auto_disable);
    assert!(!d.success && !d.disables_hook);
    assert_eq!(d.attempt.result, AttemptResult::Failure);
    assert_eq!(d.attempt.reason.as_deref(), Some("bad response code"));
    assert_eq!(d.attempt.retries_left, 1);
    // The second retry waits between one and two bases.
    let at = d.next_try_at_ms.unwrap();
    assert!((NOW + 100..=NOW + 200).contains(&at), "{}", at - NOW);
    assert_eq!(d.attempt.next_try_at_ms, d.next_try_at_ms);
    assert_eq!(auto_disable.failures(), 1);
}

#[test]
fn the_last_try_and_a_final_failure_finish_the_delivery() {
    let mut auto_disable = AutoDisable::default();
    let last = run(&hook(2), 2, answered(503), &mut auto_disable);
    assert_eq!((last.attempt.retries_left, last.next_try_at_ms), (0, None));
    let final_failure = run(&hook(2), 0, answered(404), &mut auto_disable);
    assert_eq!(final_failure.next_try_at_ms, None);
    assert_eq!(final_failure.attempt.retries_left, 2);
    let no_retries = run(&hook(0), 0, answered(500), &mut auto_disable);
    assert_eq!(no_retries.next_try_at_ms, None);
}

#[test]
fn a_try_without_an_answer_is_a_client_error() {
    let mut auto_disable = AutoDisable::default();
    let result = TryResult::no_answer("connection refused".into(), 3);
    let d = run(&hook(2), 0, result, &mut auto_disable);
    assert_eq!(d.attempt.reason.as_deref(), Some("http client error"));
    assert_eq!(
        d.attempt.client_error.as_deref(),
        Some("connection refused")
    );
    assert!(d.next_try_at_ms.is_some());
}

#[test]
fn the_threshold_within_the_window_disables_the_hook_once() {
    // Two failures long ago are out of the window; two recent ones count.
    let mut auto_disable = AutoDisable::new(
        VecDeque::from([NOW - 120_000, NOW - 61_000, NOW - 30_000, NOW - 1]),
        true,
    );
    let d = run(&hook(2), 0, answered(500), &mut auto_disable);
    assert!(d.disables_hook);
    assert!(auto_disable.disabled());
    assert_eq!(auto_disable.failures(), 3);
    // A hook already disabled is not disabled again, and a success counts nothing.
    let again = run(&hook(2), 0, answered(500), &mut auto_disable);
    assert!(!again.disables_hook);
    let success = run(&hook(2), 0, answered(200), &mut auto_disable);
    assert!(!success.disables_hook);
    assert_eq!(auto_disable.failures(), 4);
}

#[test]
fn a_hook_disabled_by_hand_is_not_auto_disabled() {
    let mut auto_disable = AutoDisable::new(VecDeque::from([NOW - 2, NOW - 1]), false);
    assert!(auto_disable.disabled());
    let d = run(&hook(2), 0, answered(500), &mut auto_disable);
    assert!(!d.disables_hook);
}
