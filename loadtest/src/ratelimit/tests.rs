use std::time::{Duration, Instant};

use super::TokenBucket;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn a_full_bucket_lets_the_first_burst_through() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1000.0, 100.0, t0);
    assert_eq!(bucket.take(100.0, t0), Duration::ZERO);
}

#[test]
fn an_empty_bucket_makes_takers_queue_at_the_rate() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1000.0, 100.0, t0);
    bucket.take(100.0, t0);
    // Two more batches asked at the same instant: 100 ms and 200 ms later.
    assert!((ms(bucket.take(100.0, t0)) - 100.0).abs() < 0.01);
    assert!((ms(bucket.take(100.0, t0)) - 200.0).abs() < 0.01);
}

#[test]
fn tokens_refill_with_time_but_never_beyond_the_burst() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1000.0, 100.0, t0);
    bucket.take(100.0, t0);
    // 50 ms later, 50 tokens are back: a batch of 100 waits 50 ms.
    let t1 = t0 + Duration::from_millis(50);
    assert!((ms(bucket.take(100.0, t1)) - 50.0).abs() < 0.01);
    // After a long idle time the bucket holds `burst`, not more.
    let t2 = t1 + Duration::from_secs(10);
    assert_eq!(bucket.take(100.0, t2), Duration::ZERO);
    assert!(bucket.take(1.0, t2) > Duration::ZERO);
}

#[test]
fn the_long_run_rate_is_the_configured_rate() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(500.0, 10.0, t0);
    // A sender that always waits what it is told: 1,000 events of batches of 10.
    let mut now = t0;
    for _ in 0..100 {
        now += bucket.take(10.0, now);
    }
    // The first 10 were free (the full bucket); 990 more at 500/s take 1.98 s.
    let elapsed = now.duration_since(t0).as_secs_f64();
    assert!((elapsed - 1.98).abs() < 0.001, "{elapsed}");
}

#[test]
fn a_time_earlier_than_the_last_take_adds_no_tokens() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(1);
    let mut bucket = TokenBucket::new(10.0, 10.0, later);
    bucket.take(10.0, later);
    assert!((ms(bucket.take(1.0, t0)) - 100.0).abs() < 0.01);
}
