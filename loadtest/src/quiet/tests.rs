use super::*;

const WINDOW: Duration = Duration::from_millis(2000);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_receiver_that_stays_silent_ends_the_window_after_one_window() {
    let t0 = Instant::now();
    let mut w = QuietWatch::new(WINDOW, t0, 600);
    assert_eq!(w.observe(t0 + ms(1999), 600), None);
    assert_eq!(
        w.observe(t0 + ms(2000), 600),
        Some(QuietWindow {
            window_ms: 2000,
            watched_ms: 2000,
            requests: 0,
            quiet: true
        })
    );
}

#[test]
fn a_late_duplicate_is_seen_and_restarts_the_window() {
    let t0 = Instant::now();
    let mut w = QuietWatch::new(WINDOW, t0, 600);
    // A duplicate 1.5 s after the last expected delivery: well past the old 500 ms.
    assert_eq!(w.observe(t0 + ms(1500), 601), None);
    assert_eq!(w.observe(t0 + ms(2100), 601), None, "the window restarted");
    assert_eq!(
        w.observe(t0 + ms(3500), 601),
        Some(QuietWindow {
            window_ms: 2000,
            watched_ms: 3500,
            requests: 1,
            quiet: true
        })
    );
}

#[test]
fn a_receiver_that_never_goes_quiet_stops_the_watch_after_ten_windows() {
    let t0 = Instant::now();
    let mut w = QuietWatch::new(WINDOW, t0, 0);
    let mut count = 0;
    let mut done = None;
    for step in 1..=100u64 {
        count += 3;
        done = w.observe(t0 + ms(step * 500), count);
        if done.is_some() {
            break;
        }
    }
    assert_eq!(
        done,
        Some(QuietWindow {
            window_ms: 2000,
            watched_ms: 20_000,
            requests: 120,
            quiet: false
        })
    );
}

#[test]
fn a_zero_window_ends_at_once() {
    let t0 = Instant::now();
    let mut w = QuietWatch::new(Duration::ZERO, t0, 5);
    assert_eq!(
        w.observe(t0, 5),
        Some(QuietWindow {
            window_ms: 0,
            watched_ms: 0,
            requests: 0,
            quiet: true
        })
    );
}

#[tokio::test]
async fn watch_counts_the_requests_made_during_the_window() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let requests = Arc::new(AtomicU64::new(10));
    let counted = Arc::clone(&requests);
    // A request arrives once the watch has read the counter a few times.
    let reads = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&reads);
    let done = watch(
        move || {
            if seen.fetch_add(1, Ordering::Relaxed) == 3 {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            counted.load(Ordering::Relaxed)
        },
        ms(100),
    )
    .await;
    assert_eq!(done.requests, 1, "{done:?}");
    assert!(done.quiet, "{done:?}");
    assert!(reads.load(Ordering::Relaxed) > 4);
    assert_eq!(requests.load(Ordering::Relaxed), 11);
}
