use super::*;

fn mark(last_seq: u64, pending: u64) -> LogMark {
    LogMark {
        last_seq,
        pending,
        events_accepted: None,
    }
}

#[test]
fn without_hooks_the_appended_events_are_the_new_records() {
    let start = mark(12, 0);
    assert_eq!(appended_between(start, mark(12, 0), 0, 0), 0);
    assert_eq!(appended_between(start, mark(5_012, 0), 0, 0), 5_000);
}

#[test]
fn attempts_and_pending_deliveries_cancel_out() {
    // 3 hooks per account, 100 events appended: 300 deliveries owed. 120 attempts
    // logged, all final: 220 still pending; 220 records on top of the setup's 40.
    let start = mark(40, 0);
    let now = mark(40 + 100 + 120, 300 - 120);
    assert_eq!(appended_between(start, now, 3, 0), 100);
    // Every delivery done.
    assert_eq!(appended_between(start, mark(40 + 100 + 300, 0), 3, 0), 100);
}

#[test]
fn retried_attempts_are_subtracted_and_an_upper_bound_never_counts_early() {
    // 100 events x 2 hooks; 50 attempts, 10 of them retried (not final).
    let start = mark(7, 0);
    let now = mark(7 + 100 + 50, 200 - 40);
    assert_eq!(appended_between(start, now, 2, 10), 100);
    // Ignoring the retries would count 103 events; a larger bound gives fewer.
    assert_eq!(appended_between(start, now, 2, 0), 103);
    assert_eq!(appended_between(start, now, 2, 25), 95);
    // Never negative.
    assert_eq!(appended_between(start, mark(7, 0), 2, 25), 0);
}

#[test]
fn a_daemon_that_counts_accepted_events_is_read_exactly() {
    let start = LogMark {
        last_seq: 40,
        pending: 0,
        events_accepted: Some(1_000),
    };
    // Dead hooks' deliveries still pending and retried: the count does not care.
    let now = LogMark {
        last_seq: 40 + 100 + 57,
        pending: 180,
        events_accepted: Some(1_100),
    };
    assert_eq!(appended_between(start, now, 2, 999), 100);
    // Only one of the two reads has it: the derived count.
    let old = LogMark {
        events_accepted: None,
        ..now
    };
    assert_eq!(appended_between(start, old, 2, 0), (100 + 57 + 180) / 3);
}
