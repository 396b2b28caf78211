//! The queue without an actor: per-call order, the in-flight bound, and the timers it
//! asks for instead of setting them.

use std::sync::Arc;

use eventlog::{AccountId, EventId, WebhookId};
use serde_json::{json, Map, Value};

use super::*;
use crate::registry::AcceptedEvent;

const NOW: u64 = 1_000_000;

fn delivery(seq: u64, call: Option<&str>, next_try_at_ms: u64) -> PendingDelivery {
    let payload: Map<String, Value> = match call {
        Some(call) => json!({"call_id": call}),
        None => json!({}),
    }
    .as_object()
    .cloned()
    .unwrap();
    PendingDelivery {
        event: Arc::new(AcceptedEvent {
            seq,
            event_id: EventId::generate(),
            account_id: AccountId::parse(&format!("{:032x}", 1)).unwrap(),
            hook_event: "channel_create".into(),
            payload,
            accepted_ms: NOW,
        }),
        webhook_id: WebhookId::parse(&format!("{:032x}", 2)).unwrap(),
        tries_done: 0,
        next_try_at_ms,
    }
}

/// Starts every delivery the bound allows; returns their sequences.
fn start_all(queue: &mut Queue, max: usize) -> Vec<u64> {
    std::iter::from_fn(|| queue.next_to_start(max))
        .map(|d| d.event.seq)
        .collect()
}

#[test]
fn a_call_goes_one_delivery_at_a_time_and_other_calls_go_concurrently() {
    let mut q = Queue::default();
    for (seq, call) in [(1, "a"), (2, "a"), (3, "b"), (4, "a")] {
        assert_eq!(q.insert(delivery(seq, Some(call), NOW), NOW), None);
    }
    assert_eq!(q.insert(delivery(5, None, NOW), NOW), None);
    assert_eq!(start_all(&mut q, 8), vec![1, 3, 5]);
    assert!(q.busy());
    // Its try recorded and finished, the call's next delivery may go.
    assert_eq!(q.tried(1).map(|d| d.event.seq), Some(1));
    assert_eq!(q.finish(1, NOW), None);
    assert_eq!(start_all(&mut q, 8), vec![2]);
}

#[test]
fn at_most_the_bound_is_in_flight() {
    let mut q = Queue::default();
    for seq in 1..=5 {
        q.insert(delivery(seq, None, NOW), NOW);
    }
    assert_eq!(start_all(&mut q, 2), vec![1, 2]);
    q.tried(1);
    assert_eq!(start_all(&mut q, 2), vec![3]);
    // A delivery being recorded is no longer in flight, but keeps the queue busy.
    q.tried(2);
    q.tried(3);
    assert_eq!(q.finish(1, NOW), None);
    assert_eq!(q.finish(2, NOW), None);
    assert!(q.busy());
    assert_eq!(q.finish(3, NOW), None);
    assert!(!q.busy());
}

#[test]
fn a_delivery_due_later_asks_for_a_timer_and_starts_once_due() {
    let mut q = Queue::default();
    let later = NOW + 500;
    let timer = q.insert(delivery(1, Some("a"), later), NOW);
    assert_eq!(
        timer,
        Some(Timer {
            seq: 1,
            at_ms: later
        })
    );
    assert_eq!(timer.unwrap().wait(NOW), Duration::from_millis(500));
    assert_eq!(start_all(&mut q, 8), Vec::<u64>::new());
    assert_eq!(q.due(1, later), None);
    assert_eq!(start_all(&mut q, 8), vec![1]);
    // A stale timer changes nothing.
    assert_eq!(q.due(1, later), None);
}

#[test]
fn a_retry_waits_for_its_time_and_counts_only_a_recorded_try() {
    let mut q = Queue::default();
    q.insert(delivery(1, Some("a"), NOW), NOW);
    q.insert(delivery(2, Some("a"), NOW), NOW);
    assert_eq!(start_all(&mut q, 8), vec![1]);
    q.tried(1);
    let retry = NOW + 2_000;
    assert_eq!(
        q.retry_at(1, retry, true, NOW),
        Some(Timer {
            seq: 1,
            at_ms: retry
        })
    );
    // The call's later delivery still waits behind the retry.
    assert_eq!(start_all(&mut q, 8), Vec::<u64>::new());
    assert_eq!(q.due(1, retry), None);
    let again = q.next_to_start(8).unwrap();
    assert_eq!((again.event.seq, again.tries_done), (1, 1));
    // A try whose record failed is made again without counting.
    q.tried(1);
    assert_eq!(q.retry_at(1, NOW, false, NOW), None);
    assert_eq!(q.next_to_start(8).unwrap().tries_done, 1);
}

#[test]
fn an_earlier_delivery_arriving_late_goes_first() {
    let mut q = Queue::default();
    let later = NOW + 500;
    assert!(q.insert(delivery(5, Some("a"), later), NOW).is_some());
    assert_eq!(q.insert(delivery(3, Some("a"), NOW), NOW), None);
    // The displaced head waits again: its timer, when it fires, changes nothing.
    assert_eq!(q.due(5, later), None);
    assert_eq!(start_all(&mut q, 8), vec![3]);
    q.tried(3);
    assert_eq!(q.finish(3, later), None);
    assert_eq!(start_all(&mut q, 8), vec![5]);
    // A known sequence is taken once.
    assert_eq!(q.insert(delivery(5, Some("a"), NOW), NOW), None);
}
