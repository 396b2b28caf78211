use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const BASE: Duration = Duration::from_millis(500);

#[test]
fn retry_delay_grows_exponentially_within_jitter_bounds() {
    let mut rng = StdRng::seed_from_u64(7);
    for try_number in 1..=8_u32 {
        let ceiling = BASE * 2_u32.pow(try_number - 1);
        for _ in 0..50 {
            let delay = retry_delay(BASE, try_number, None, &mut rng);
            assert!(
                delay <= ceiling,
                "try {try_number}: {delay:?} > {ceiling:?}"
            );
            assert!(
                delay >= ceiling / 2,
                "try {try_number}: {delay:?} < half of {ceiling:?}"
            );
        }
    }
}

#[test]
fn retry_delay_try_zero_is_first_retry() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20 {
        let delay = retry_delay(BASE, 0, None, &mut rng);
        assert!(delay >= BASE / 2 && delay <= BASE, "{delay:?}");
    }
}

#[test]
fn retry_delay_is_capped() {
    let mut rng = StdRng::seed_from_u64(3);
    for try_number in [12, 20, 31, 32, 33, 64, 1_000, u32::MAX] {
        let delay = retry_delay(BASE, try_number, None, &mut rng);
        assert!(delay <= MAX_BACKOFF, "{try_number}: {delay:?}");
        assert!(delay >= MAX_BACKOFF / 2, "{try_number}: {delay:?}");
    }
    // A base longer than the cap is not cut below itself.
    let long_base = Duration::from_secs(3_600);
    let delay = retry_delay(long_base, 5, None, &mut rng);
    assert!(delay <= long_base && delay >= long_base / 2, "{delay:?}");
    // Absurd bases do not overflow.
    let _ = retry_delay(Duration::MAX, u32::MAX, None, &mut rng);
}

#[test]
fn retry_delay_zero_base_is_zero() {
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(
        retry_delay(Duration::ZERO, 5, None, &mut rng),
        Duration::ZERO
    );
}

#[test]
fn retry_delay_jitters() {
    let mut rng = StdRng::seed_from_u64(11);
    let delays: std::collections::HashSet<Duration> = (0..20)
        .map(|_| retry_delay(BASE, 3, None, &mut rng))
        .collect();
    assert!(delays.len() > 10, "jitter should spread delays: {delays:?}");
}

#[test]
fn retry_delay_is_deterministic_for_a_seed() {
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (1..=6)
            .map(|n| retry_delay(BASE, n, None, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn retry_after_is_honoured_within_bounds() {
    let mut rng = StdRng::seed_from_u64(5);
    let thirty = Duration::from_secs(30);
    assert_eq!(retry_delay(BASE, 1, Some(thirty), &mut rng), thirty);
    // Even on a late retry whose backoff would be longer, the receiver's word counts.
    assert_eq!(retry_delay(BASE, 9, Some(thirty), &mut rng), thirty);
    // Never below our base...
    assert_eq!(retry_delay(BASE, 1, Some(Duration::ZERO), &mut rng), BASE);
    // ...nor beyond an hour.
    assert_eq!(
        retry_delay(BASE, 1, Some(Duration::from_secs(7_200)), &mut rng),
        MAX_RETRY_AFTER
    );
    assert_eq!(
        retry_delay(BASE, 1, Some(Duration::from_secs(u64::MAX)), &mut rng),
        MAX_RETRY_AFTER
    );
}

// ---------------------------------------------------------------------------------------
// RetryPolicy

#[test]
fn a_hooks_retries_default_to_two_and_stop_at_four() {
    assert_eq!(RetryPolicy::retries(None), RetryPolicy::DEFAULT_RETRIES);
    assert_eq!(RetryPolicy::DEFAULT_RETRIES, 2);
    assert_eq!(RetryPolicy::retries(Some(0)), 0);
    assert_eq!(RetryPolicy::retries(Some(3)), 3);
    assert_eq!(RetryPolicy::retries(Some(9)), RetryPolicy::MAX_RETRIES);
    assert_eq!(RetryPolicy::retries(Some(u64::MAX)), 4);
    assert_eq!(RetryPolicy::retries_left(2, 1), 2);
    assert_eq!(RetryPolicy::retries_left(2, 3), 0);
    assert_eq!(RetryPolicy::retries_left(0, 5), 0);
    assert_eq!(RetryPolicy::new(BASE).record_retry_wait(), BASE);
    assert_eq!(
        RetryPolicy::new(Duration::from_secs(60)).record_retry_wait(),
        MAX_RECORD_RETRY_WAIT
    );
}

#[test]
fn only_a_retryable_outcome_with_retries_left_is_tried_again() {
    let policy = RetryPolicy::new(BASE);
    let mut rng = StdRng::seed_from_u64(9);
    let retryable = TryOutcome::Retryable {
        status: Some(503),
        client_error: None,
        retry_after: Some(Duration::from_secs(30)),
    };
    assert_eq!(
        policy.next_try_at(&retryable, 1, 2, 1_000, &mut rng),
        Some(31_000),
        "the receiver's Retry-After, within bounds"
    );
    assert_eq!(policy.next_try_at(&retryable, 3, 0, 1_000, &mut rng), None);
    let no_answer = TryOutcome::Retryable {
        status: None,
        client_error: Some("timeout".into()),
        retry_after: None,
    };
    let at = policy
        .next_try_at(&no_answer, 1, 1, 1_000, &mut rng)
        .unwrap();
    assert!((1_250..=1_500).contains(&at), "{at}");
    for finished in [
        TryOutcome::Success { status: 200 },
        TryOutcome::Final { status: 404 },
    ] {
        assert_eq!(policy.next_try_at(&finished, 1, 2, 1_000, &mut rng), None);
    }
}
