use super::*;

#[test]
fn the_breaker_pauses_after_consecutive_failures_then_probes_one_at_a_time() {
    let pause = Duration::from_millis(500);
    let mut b = Breaker::default();
    assert_eq!(b.allowed_in_flight(1_000, 8), 8);
    for _ in 1..BREAKER_FAILURES {
        assert_eq!(b.record(false, 1_000, pause), None);
        assert_eq!(b.allowed_in_flight(1_000, 8), 8, "not tripped yet");
    }
    assert_eq!(b.record(false, 1_000, pause), Some(pause));
    assert_eq!(b.allowed_in_flight(1_000, 8), 0, "paused");
    assert_eq!(b.allowed_in_flight(1_499, 8), 0, "paused");
    assert_eq!(
        b.allowed_in_flight(1_500, 8),
        1,
        "one probe after the pause"
    );
    // A failed probe pauses again; a success closes the breaker.
    assert_eq!(b.record(false, 1_600, pause), Some(pause));
    assert_eq!(b.allowed_in_flight(2_000, 8), 0);
    assert_eq!(b.record(true, 2_100, pause), None);
    assert_eq!(b.allowed_in_flight(2_100, 8), 8);
}

#[test]
fn a_success_between_failures_keeps_the_breaker_closed() {
    let pause = Duration::from_millis(500);
    let mut b = Breaker::default();
    for _ in 0..10 {
        for _ in 1..BREAKER_FAILURES {
            assert_eq!(b.record(false, 0, pause), None);
        }
        assert_eq!(b.record(true, 0, pause), None);
    }
    assert_eq!(b.allowed_in_flight(0, 4), 4);
}
