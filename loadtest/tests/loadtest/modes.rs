//! Small real runs of the load tool's measuring modes: single-event ingest over many
//! connections (`--batch 1 --connections N`).

use crate::support::{f, run_loadtest, u};

#[test]
fn single_events_over_many_connections_are_all_accepted_and_delivered() {
    let report = run_loadtest(&[
        "--batch",
        "1",
        "--connections",
        "8",
        "--events",
        "400",
        "--accounts",
        "2",
        "--hooks-per-account",
        "1",
        "--quiet-window-ms",
        "200",
    ]);
    assert_eq!(u(&report, "/settings/connections"), 8, "{report}");
    assert_eq!(u(&report, "/settings/concurrency"), 8, "{report}");
    assert_eq!(u(&report, "/settings/batch"), 1, "{report}");
    // One POST per event, each answered 202.
    assert_eq!(u(&report, "/events/accepted"), 400, "{report}");
    assert_eq!(u(&report, "/ingest_ms/count"), 400, "{report}");
    assert_eq!(u(&report, "/appended/events"), 400, "{report}");
    assert!(f(&report, "/events/accepted_per_second") > 0.0, "{report}");
    // Sent as `{"data": EVENT}`, delivered like any other.
    assert_eq!(
        u(&report, "/reconciliation/received_pairs"),
        400,
        "{report}"
    );
    assert_eq!(report["passed"], true, "{report}");
}
