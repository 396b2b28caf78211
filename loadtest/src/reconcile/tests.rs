use std::collections::HashMap;

use super::*;
use crate::load::ApiErrors;
use crate::receiver::pair_key;
use crate::report::{Appended, Errors, Events, Settings};

fn ok(first_ok_us: u64, ok: u32, injected_errors: u32) -> PairRecord {
    PairRecord {
        ok,
        injected_errors,
        first_ok_us,
    }
}

/// Every unexpected pair is misdirected.
fn misdirected(_: u64) -> Unexpected {
    Unexpected::Misdirected
}

#[test]
fn every_expected_pair_received_once_is_complete() {
    let expected = [pair_key(0, 0), pair_key(0, 1), pair_key(1, 0)];
    let records: HashMap<u64, PairRecord> = expected.iter().map(|&k| (k, ok(10, 1, 0))).collect();
    let mut seen = Vec::new();
    let r = reconcile(expected, &records, misdirected, |key, _| seen.push(key));
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
    let r = reconcile(expected, &records, misdirected, |_, _| {});
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
    let r = reconcile(expected, &records, misdirected, |_, _| {});
    assert_eq!(r.received_pairs, 1);
    assert_eq!(r.duplicates, 0);
    assert_eq!(r.injected_500s, 2);
    assert!(r.complete());
}

#[test]
fn unexpected_pairs_are_told_apart_timed_out_or_misdirected() {
    let expected = [pair_key(0, 0)];
    let mut records = HashMap::new();
    records.insert(pair_key(0, 0), ok(5, 1, 0));
    // Event 5's batch timed out: its own hook 9 got it (it was in the log after all).
    records.insert(pair_key(5, 9), ok(5, 2, 1));
    // Event 0 went to hook 4 too, another account's; event 6 was refused, yet sent.
    records.insert(pair_key(0, 4), ok(5, 1, 0));
    records.insert(pair_key(6, 9), ok(5, 1, 1));
    let classify = |key: u64| {
        if key == pair_key(5, 9) {
            Unexpected::OfTimedOutBatch
        } else {
            Unexpected::Misdirected
        }
    };
    let r = reconcile(expected, &records, classify, |_, _| {});
    assert!(r.complete());
    assert_eq!(r.unexpected_pairs, 3);
    assert_eq!(r.unexpected_requests, 3 + 1 + 2);
    assert_eq!(r.timed_out_pairs, 1);
    assert_eq!(r.misdirected_pairs, 2);
    assert_eq!(r.misdirected_requests, 3);
    assert_eq!(r.misdirected_keys, vec![pair_key(0, 4), pair_key(6, 9)]);
}

#[test]
fn misdirected_examples_are_the_first_ten_keys() {
    let records: HashMap<u64, PairRecord> =
        (0..25).map(|e| (pair_key(e, 1), ok(1, 1, 0))).collect();
    let r = reconcile([], &records, misdirected, |_, _| {});
    assert_eq!(r.misdirected_pairs, 25);
    let expected: Vec<u64> = (0..10).map(|e| pair_key(e, 1)).collect();
    assert_eq!(r.misdirected_keys, expected);
}

#[test]
fn the_callback_sees_each_received_pair_with_its_first_receipt() {
    let expected = [pair_key(1, 2), pair_key(3, 4)];
    let mut records = HashMap::new();
    records.insert(pair_key(1, 2), ok(1_500, 1, 0));
    let mut seen = Vec::new();
    reconcile(expected, &records, misdirected, |key, rec| {
        seen.push((key, rec.first_ok_us))
    });
    assert_eq!(seen, vec![(pair_key(1, 2), 1_500)]);
}

/// The report of a run where everything went right: 100 events, 200 pairs.
fn good_report() -> Report {
    Report {
        settings: Settings {
            via: "http",
            ..Settings::default()
        },
        events: Events {
            sent: 100,
            accepted: 100,
            ..Events::default()
        },
        reconciliation: Reconciliation {
            expected_pairs: 200,
            received_pairs: 200,
            ..Reconciliation::default()
        },
        appended: Some(Appended {
            events: 100,
            ..Appended::default()
        }),
        ..Report::default()
    }
}

#[test]
fn a_run_where_everything_arrived_once_passes() {
    assert_eq!(failures(&good_report()), Vec::<String>::new());
}

#[test]
fn refused_and_timed_out_batches_fail_the_run() {
    let mut report = good_report();
    report.events.accepted = 70;
    report.events.refused = 20;
    report.events.timed_out = 10;
    report.errors = Errors {
        api: ApiErrors {
            http: [(413, 1), (503, 1)].into_iter().collect(),
            timeouts: 1,
            ..ApiErrors::default()
        },
        receiver_unidentified: 0,
    };
    let failures = failures(&report);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(
        failures[0],
        "2 ingest batches refused (1 x 413, 1 x 503): 20 events not accepted"
    );
    assert_eq!(
        failures[1],
        "1 ingest batches timed out: 10 events may or may not be in the log"
    );
}

#[test]
fn transport_errors_and_broker_refusals_fail_the_run() {
    let mut report = good_report();
    report.settings.via = "amqp";
    report.errors.api = ApiErrors {
        transport: 2,
        nacked: 1,
        unroutable: 3,
        ..ApiErrors::default()
    };
    let failures = failures(&report);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].starts_with("2 ingest messages failed in transport"));
    assert_eq!(
        failures[1],
        "1 messages nacked and 3 unroutable by the broker"
    );
}

#[test]
fn missing_duplicate_and_misdirected_deliveries_fail_the_run() {
    let mut report = good_report();
    report.reconciliation.missing = 3;
    report.reconciliation.duplicates = 2;
    report.reconciliation.misdirected_pairs = 1;
    report.reconciliation.misdirected_requests = 2;
    report.misdirected = vec!["event 4 (account 0) -> hook h1 (account 1)".into()];
    report.errors.receiver_unidentified = 5;
    let failures = failures(&report);
    assert_eq!(
        failures,
        vec![
            "3 of 200 expected deliveries missing".to_owned(),
            "2 duplicate deliveries".to_owned(),
            "1 deliveries (2 requests) to a hook that should not have had them, e.g. \
             event 4 (account 0) -> hook h1 (account 1)"
                .to_owned(),
            "5 requests the receiver could not match to an event and hook of this run".to_owned(),
        ]
    );
}

#[test]
fn pairs_of_timed_out_batches_alone_do_not_fail_the_run_twice() {
    // The timeout fails the run; its events reaching their own hooks does not add to it.
    let mut report = good_report();
    report.reconciliation.unexpected_pairs = 4;
    report.reconciliation.timed_out_pairs = 4;
    assert_eq!(failures(&report), Vec::<String>::new());
}

#[test]
fn drain_timeouts_fail_the_run() {
    let mut report = good_report();
    report.drain_timed_out = true;
    if let Some(a) = report.appended.as_mut() {
        a.timed_out = true;
    }
    let failures = failures(&report);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("every expected delivery"));
    assert!(failures[1].contains("every accepted event"));
}

#[test]
fn a_receiver_that_never_went_quiet_fails_the_run() {
    let mut report = good_report();
    report.quiet_window = Some(crate::quiet::QuietWindow {
        window_ms: 2000,
        watched_ms: 20_000,
        requests: 70,
        quiet: false,
    });
    assert_eq!(
        failures(&report),
        vec![
            "the receiver never went 2000 ms without a request after the last expected \
             delivery: 70 requests in 20000 ms"
                .to_owned()
        ]
    );
    // Quiet, even after a few late requests (counted where they belong): no failure here.
    report.quiet_window = Some(crate::quiet::QuietWindow {
        window_ms: 2000,
        watched_ms: 3000,
        requests: 1,
        quiet: true,
    });
    assert_eq!(failures(&report), Vec::<String>::new());
}
