use std::collections::HashMap;

use super::super::receiver::{pair_key, PairRecord};
use super::*;

fn ok(first_ok_us: u64, ok: u32, injected_errors: u32) -> PairRecord {
    PairRecord {
        ok,
        injected_errors,
        first_ok_us,
    }
}

#[test]
fn every_expected_pair_received_once_is_complete() {
    let expected = [pair_key(0, 0), pair_key(0, 1), pair_key(1, 0)];
    let records: HashMap<u64, PairRecord> = expected.iter().map(|&k| (k, ok(10, 1, 0))).collect();
    let mut seen = Vec::new();
    let r = reconcile(expected, &records, |key, _| seen.push(key));
    assert_eq!(r.expected_pairs, 3);
    assert_eq!(r.received_pairs, 3);
    assert_eq!((r.missing, r.duplicates, r.unexpected_pairs), (0, 0, 0));
    assert!(r.complete());
    assert_eq!(seen.len(), 3);
}

#[test]
fn missing_and_duplicate_pairs_are_counted() {
    let expected = [
        pair_key(0, 0),
        pair_key(0, 1),
        pair_key(1, 0),
        pair_key(1, 1),
    ];
    let mut records = HashMap::new();
    records.insert(pair_key(0, 0), ok(10, 3, 0)); // two duplicates
    records.insert(pair_key(0, 1), ok(10, 1, 0));
    // (1, 0) never arrived; (1, 1) only got injected 500s and no success.
    records.insert(pair_key(1, 1), ok(0, 0, 2));
    let r = reconcile(expected, &records, |_, _| {});
    assert_eq!(r.expected_pairs, 4);
    assert_eq!(r.received_pairs, 2);
    assert_eq!(r.missing, 2);
    assert_eq!(r.duplicates, 2);
    assert_eq!(r.injected_500s, 2);
    assert!(!r.complete());
}

#[test]
fn retries_after_injected_500s_are_not_duplicates() {
    let expected = [pair_key(7, 3)];
    let mut records = HashMap::new();
    // Two 500s, then the retry that succeeded: three requests, one delivery.
    records.insert(pair_key(7, 3), ok(99, 1, 2));
    let r = reconcile(expected, &records, |_, _| {});
    assert_eq!(r.received_pairs, 1);
    assert_eq!(r.duplicates, 0);
    assert_eq!(r.injected_500s, 2);
    assert!(r.complete());
}

#[test]
fn pairs_nobody_expected_are_reported_apart() {
    let expected = [pair_key(0, 0)];
    let mut records = HashMap::new();
    records.insert(pair_key(0, 0), ok(5, 1, 0));
    records.insert(pair_key(5, 9), ok(5, 2, 1));
    records.insert(pair_key(6, 9), ok(5, 1, 0));
    let r = reconcile(expected, &records, |_, _| {});
    assert!(r.complete());
    assert_eq!(r.unexpected_pairs, 2);
    assert_eq!(r.unexpected_requests, 4);
}

#[test]
fn the_callback_sees_each_received_pair_with_its_first_receipt() {
    let expected = [pair_key(1, 2), pair_key(3, 4)];
    let mut records = HashMap::new();
    records.insert(pair_key(1, 2), ok(1_500, 1, 0));
    let mut seen = Vec::new();
    reconcile(expected, &records, |key, rec| {
        seen.push((key, rec.first_ok_us))
    });
    assert_eq!(seen, vec![(pair_key(1, 2), 1_500)]);
}

#[test]
fn latency_percentiles_are_ordered_and_in_milliseconds() {
    let mut h = new_histogram(3).unwrap();
    for us in 1..=10_000u64 {
        h.record(us).unwrap();
    }
    let l = Latency::from_histogram(&h);
    assert_eq!(l.count, 10_000);
    assert!((l.p50 - 5.0).abs() < 0.01, "{l:?}");
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
    assert!((l.max - 10.0).abs() < 0.01, "{l:?}");
    assert_eq!(Latency::from_histogram(&new_histogram(3).unwrap()).count, 0);
}

#[test]
fn per_second_series_buckets_from_the_load_start() {
    let mut s = SeriesBuilder::new(1_000_000).unwrap();
    s.accepted(1_200_000, 100);
    s.delivered(1_300_000, 2_000);
    s.delivered(2_100_000, 4_000);
    s.delivered(2_200_000, 4_000);
    let built = s.build();
    assert_eq!(built.len(), 2);
    assert_eq!(built[0].events_accepted, 100);
    assert_eq!(built[0].deliveries, 1);
    assert_eq!(built[1].deliveries, 2);
    assert!((built[1].p99_ms - 4.0).abs() < 0.05, "{built:?}");
}

#[test]
fn throughput_is_count_over_the_window() {
    let t = Throughput::new(5_000, 2_000_000);
    assert_eq!(t.per_second, 2_500.0);
    assert_eq!(t.seconds, 2.0);
    assert_eq!(Throughput::new(10, 0).per_second, 0.0);
}
