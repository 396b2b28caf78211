use super::*;

#[test]
fn the_baseline_runs_as_many_requests_at_once_as_the_daemon_may_run_tries() {
    // 6 hooks x 8 per hook, under the daemon's 256.
    assert_eq!(concurrency(6, 8, 256), 48);
    // 100 hooks x 8 = 800: the daemon runs at most 256 at once, and so does the loop
    // (it used to stop at 64).
    assert_eq!(concurrency(100, 8, 256), 256);
    assert_eq!(concurrency(100, 8, 1024), 800);
    // No healthy hook: still one request at a time.
    assert_eq!(concurrency(0, 8, 256), 1);
}
