//! Small real runs of the load tool's measuring modes: single-event ingest over many
//! connections (`--batch 1 --connections N`); the daemon's RSS sampled over the run;
//! its memory while a dead hook's backlog grows (`--dead-backlog N`).

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

#[test]
fn the_daemons_rss_is_sampled_over_the_run_and_plotted() {
    let plot = tempfile::tempdir().unwrap();
    let svg = plot.path().join("chart.svg");
    // 1,500 events at 1,000/s: the load lasts more than a second, so the sampler reads
    // at 0, 500 and 1000 ms at least, then once more at the end.
    let report = run_loadtest(&[
        "--events",
        "1500",
        "--batch",
        "50",
        "--rate",
        "1000",
        "--accounts",
        "2",
        "--hooks-per-account",
        "1",
        "--quiet-window-ms",
        "200",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(report["passed"], true, "{report}");
    let series = report["memory_series"].as_array().expect("memory_series");
    assert!(series.len() >= 4, "{report}");
    let times: Vec<u64> = series.iter().filter_map(|s| s["at_ms"].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{report}");
    assert!(
        series.iter().all(|s| s["rss_kib"].as_u64() > Some(0)),
        "{report}"
    );
    let sampled = &report["daemon"]["sampled"];
    assert_eq!(
        u(&report, "/daemon/sampled/samples"),
        series.len() as u64,
        "{report}"
    );
    assert_eq!(u(&report, "/daemon/sampled/every_ms"), 500, "{report}");
    let (min, median, max) = (
        u(&report, "/daemon/sampled/min_kib"),
        u(&report, "/daemon/sampled/median_kib"),
        u(&report, "/daemon/sampled/max_kib"),
    );
    assert!(0 < min && min <= median && median <= max, "{sampled}");
    // The last sample is the end of the run.
    assert_eq!(
        series.last().and_then(|s| s["rss_kib"].as_u64()),
        sampled["end_kib"].as_u64(),
        "{report}"
    );
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(
        chart.contains("daemon RSS MiB"),
        "no RSS series in the chart"
    );
}

#[test]
fn a_dead_hooks_backlog_is_measured_as_it_grows() {
    // A retry base of a minute: the daemon gives up on none of the deliveries during
    // the run, so the hook is owed every event at the end.
    let report = run_loadtest(&[
        "--dead-backlog",
        "2000",
        "--batch",
        "50",
        "--retry-base-ms",
        "60000",
    ]);
    assert_eq!(report["passed"], true, "{report}");
    let settings = &report["settings"];
    assert_eq!(settings["dead_backlog"], 2000, "{report}");
    assert_eq!(
        (
            &settings["accounts"],
            &settings["hooks"],
            &settings["dead_hooks"],
            &settings["events"]
        ),
        (&1.into(), &1.into(), &1.into(), &2000.into()),
        "{report}"
    );
    assert_eq!(u(&report, "/events/accepted"), 2000, "{report}");
    assert_eq!(u(&report, "/reconciliation/expected_pairs"), 0, "{report}");
    // Owed every event, and the hook was not auto-disabled.
    assert_eq!(u(&report, "/dead_backlog/owed_at_end"), 2000, "{report}");
    let series = report["memory_series"].as_array().expect("memory_series");
    assert!(series.len() >= 2, "{report}");
    assert_eq!(
        series.last().and_then(|s| s["pending_deliveries"].as_u64()),
        Some(2000),
        "{report}"
    );
    assert_eq!(
        series.last().and_then(|s| s["events_appended"].as_u64()),
        Some(2000),
        "{report}"
    );
    let (start, max, end) = (
        u(&report, "/dead_backlog/rss_start_kib"),
        u(&report, "/dead_backlog/rss_max_kib"),
        u(&report, "/dead_backlog/rss_end_kib"),
    );
    assert!(0 < start && start <= max && end <= max, "{report}");
    assert!(
        f(&report, "/dead_backlog/kib_per_100k_owed").is_finite(),
        "{report}"
    );
    // The RSS at each tenth of the backlog: at least the reading at its largest.
    let steps = report["dead_backlog"]["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{report}");
    assert_eq!(
        steps.last().map(|s| &s["owed"]),
        Some(&2000.into()),
        "{report}"
    );
}
