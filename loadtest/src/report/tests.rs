use super::*;

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
