use super::*;

fn mark(last_seq: u64, pending: u64, events_accepted: u64) -> LogMark {
    LogMark {
        last_seq,
        pending,
        events_accepted,
    }
}

#[test]
fn the_appended_events_are_the_difference_of_the_daemons_count() {
    let start = mark(40, 0, 1_000);
    assert_eq!(appended_between(start, start), 0);
    // Deliveries pending, attempts logged and retried: only the count matters.
    assert_eq!(
        appended_between(start, mark(40 + 100 + 57, 180, 1_100)),
        100
    );
    // A count that went down (another daemon answered): never negative.
    assert_eq!(appended_between(start, mark(7, 0, 3)), 0);
}
