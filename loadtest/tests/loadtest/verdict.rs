//! The run's verdict: refused and timed-out ingest fail the run (exit 3), and are
//! reported; pairs of a timed-out batch that reached their own hooks are told apart from
//! misdirected ones; late duplicates are caught by the quiet window.

use crate::support::{free_loopback_addr, run_failing_loadtest, u, TestDaemon};

#[test]
fn refused_batches_fail_the_run_and_are_reported() {
    // Batches of 20 events (~8 KB) are over the daemon's 6,000-byte limit: 413. The last
    // batch, 10 events (~4 KB), is accepted.
    let daemon = TestDaemon::start(&["--max-body-bytes", "6000"]);
    let receiver = free_loopback_addr();
    let report = run_failing_loadtest(&[
        "--target",
        &daemon.url,
        "--master-api-key",
        daemon.key,
        "--receiver-listen",
        &receiver,
        "--events",
        "110",
        "--batch",
        "20",
        "--accounts",
        "1",
        "--hooks-per-account",
        "1",
    ]);
    assert_eq!(u(&report, "/events/sent"), 110, "{report}");
    assert_eq!(u(&report, "/events/accepted"), 10, "{report}");
    assert_eq!(u(&report, "/events/refused"), 100, "{report}");
    assert_eq!(u(&report, "/errors/api/http/413"), 5, "{report}");
    // What was accepted was delivered, once: the reconciliation itself is complete.
    assert_eq!(u(&report, "/reconciliation/received_pairs"), 10, "{report}");
    assert_eq!(
        u(&report, "/reconciliation/misdirected_pairs"),
        0,
        "{report}"
    );
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(
        report["failures"],
        serde_json::json!(["5 ingest batches refused (5 x 413): 100 events not accepted"]),
        "{report}"
    );
}

#[test]
fn timed_out_batches_fail_the_run_and_their_deliveries_are_not_misdirected() {
    // A 1 µs request timeout: the POSTs of 200 events (validated, appended and synced
    // by a debug build) are not answered in time.
    let report = run_failing_loadtest(&[
        "--events",
        "400",
        "--batch",
        "200",
        "--accounts",
        "1",
        "--hooks-per-account",
        "2",
        "--request-timeout",
        "0.000001",
        "--quiet-window-ms",
        "500",
    ]);
    let timed_out = u(&report, "/events/timed_out");
    assert!(timed_out > 0, "{report}");
    assert_eq!(
        u(&report, "/errors/api/timeouts") * 200,
        timed_out,
        "{report}"
    );
    assert_eq!(
        u(&report, "/events/accepted") + timed_out + u(&report, "/events/refused"),
        400,
        "{report}"
    );
    // The daemon may have appended and delivered them: to their own hooks, which is
    // no misdirection.
    assert_eq!(
        u(&report, "/reconciliation/misdirected_pairs"),
        0,
        "{report}"
    );
    assert_eq!(
        u(&report, "/reconciliation/unexpected_pairs"),
        u(&report, "/reconciliation/timed_out_pairs"),
        "{report}"
    );
    let failures = report["failures"].as_array().expect("failures");
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.contains("timed out"))),
        "{report}"
    );
}

#[test]
fn late_duplicates_are_caught_by_the_quiet_window_and_fail_the_run() {
    // The receiver answers after 300 ms, the daemon gives up on a try after 200 ms: each
    // of the 4 pairs is tried 3 times (the hook's retries), and the receiver counts
    // every try as a delivery. The retries come seconds after the first receipts (the
    // circuit breaker tries one at a time), long after the old 500 ms settle.
    let daemon = TestDaemon::start(&[
        "--request-timeout-ms",
        "200",
        "--failure-threshold",
        "1000000",
    ]);
    let receiver = free_loopback_addr();
    let report = run_failing_loadtest(&[
        "--target",
        &daemon.url,
        "--master-api-key",
        daemon.key,
        "--receiver-listen",
        &receiver,
        "--events",
        "4",
        "--batch",
        "4",
        "--accounts",
        "1",
        "--hooks-per-account",
        "1",
        "--receiver-delay-ms",
        "300",
        "--quiet-window-ms",
        "5000",
    ]);
    assert_eq!(u(&report, "/reconciliation/received_pairs"), 4, "{report}");
    assert_eq!(u(&report, "/reconciliation/duplicates"), 8, "{report}");
    assert_eq!(u(&report, "/quiet_window/window_ms"), 5000, "{report}");
    assert_eq!(u(&report, "/quiet_window/requests"), 8, "{report}");
    assert_eq!(report["quiet_window"]["quiet"], true, "{report}");
    assert_eq!(
        report["failures"],
        serde_json::json!(["8 duplicate deliveries"]),
        "{report}"
    );
}
