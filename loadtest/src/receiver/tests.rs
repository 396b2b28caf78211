use std::collections::HashMap;

use hyper::header::{HeaderMap, HeaderValue};

use super::*;

fn state(error_rate: f64) -> ReceiverState {
    let s = ReceiverState::new(
        Clock::new(),
        Behaviour {
            delay: Duration::ZERO,
            error_rate,
            max_injected_per_pair: 2,
        },
    );
    s.set_identity(Identity {
        event_prefix: "lt-x-".into(),
        derived_ids: None,
        events: 10,
        accounts: 2,
        hooks: HashMap::from([("ha".to_owned(), 0), ("hb".to_owned(), 1)]),
        hook_account: vec![0, 1],
    });
    s
}

fn headers(event: &str, hook: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-event-id", HeaderValue::from_str(event).unwrap());
    h.insert("x-hook-id", HeaderValue::from_str(hook).unwrap());
    h
}

#[test]
fn requests_are_identified_by_event_and_hook() {
    let s = state(0.0);
    assert_eq!(
        s.pair_of(&headers("lt-x-4", "ha")),
        Some((pair_key(4, 0), true))
    );
    // Event 4 is account 0's; hook hb is account 1's.
    assert_eq!(
        s.pair_of(&headers("lt-x-4", "hb")),
        Some((pair_key(4, 1), false))
    );
    assert_eq!(
        s.pair_of(&headers("lt-x-10", "ha")),
        None,
        "beyond --events"
    );
    assert_eq!(s.pair_of(&headers("lt-y-1", "ha")), None, "another run");
    assert_eq!(s.pair_of(&headers("lt-x-1", "hc")), None, "unknown hook");
    assert_eq!(s.pair_of(&HeaderMap::new()), None);
}

#[test]
fn with_amqp_requests_are_identified_by_the_derived_event_id() {
    let s = ReceiverState::new(
        Clock::new(),
        Behaviour {
            delay: Duration::ZERO,
            error_rate: 0.0,
            max_injected_per_pair: 2,
        },
    );
    let id = format!("kz-{:016x}{}", 0xfeed_beef_u64, "0".repeat(24));
    assert_eq!(derived_key(&id), Some(0xfeed_beef));
    assert_eq!(derived_key("lt-x-3"), None);
    assert_eq!(derived_key("kz-xyz"), None);
    s.set_identity(Identity {
        event_prefix: "lt-x-".into(),
        derived_ids: Some(HashMap::from([(0xfeed_beef, 3)])),
        events: 10,
        accounts: 2,
        hooks: HashMap::from([("ha".to_owned(), 0), ("hb".to_owned(), 1)]),
        hook_account: vec![0, 1],
    });
    assert_eq!(s.pair_of(&headers(&id, "hb")), Some((pair_key(3, 1), true)));
    // The producer's own ids are not what the daemon delivers over AMQP.
    assert_eq!(s.pair_of(&headers("lt-x-3", "hb")), None);
    let other = format!("kz-{:016x}{}", 0xdead_u64, "0".repeat(24));
    assert_eq!(s.pair_of(&headers(&other, "hb")), None);
}

#[test]
fn receipts_are_counted_per_pair_with_the_first_time() {
    let s = state(0.0);
    let key = pair_key(2, 0);
    assert_eq!(s.record(key, true, 100), StatusCode::OK);
    assert_eq!(s.record(key, true, 200), StatusCode::OK);
    let records = s.take_records();
    assert_eq!(
        records.get(&key),
        Some(&PairRecord {
            ok: 2,
            injected_errors: 0,
            first_ok_us: 100
        })
    );
    assert_eq!(s.unique_ok.load(Ordering::Relaxed), 1);
    assert_eq!(s.ok_total.load(Ordering::Relaxed), 2);
}

#[test]
fn injected_errors_stop_at_the_retries_so_the_pair_is_delivered() {
    // An error rate of (nearly) one: every try that may fail does.
    let s = state(0.999_999_999);
    let key = pair_key(3, 1);
    assert_eq!(s.record(key, true, 1), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(s.record(key, true, 2), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(s.record(key, true, 3), StatusCode::OK);
    // After a success, no more injected failures.
    assert_eq!(s.record(key, true, 4), StatusCode::OK);
    let records = s.take_records();
    let rec = records.get(&key).unwrap();
    assert_eq!((rec.ok, rec.injected_errors, rec.first_ok_us), (2, 2, 3));
    assert_eq!(s.injected.load(Ordering::Relaxed), 2);
}

#[test]
fn pair_keys_round_trip_the_event_and_the_hook() {
    assert_eq!(event_of(pair_key(123_456, 7)), 123_456);
    assert_eq!(hook_of(pair_key(123_456, 7)), 7);
    assert_eq!(event_of(pair_key(u32::MAX, u32::MAX)), u32::MAX);
    assert_eq!(hook_of(pair_key(u32::MAX, u32::MAX)), u32::MAX);
    assert_eq!(hook_of(pair_key(u32::MAX, 0)), 0);
}
