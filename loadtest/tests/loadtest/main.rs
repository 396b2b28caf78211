//! The load tool end to end: the real `piston-loadtest` binary starts its own daemon (the
//! `piston-webhooks` binary beside it) and receiver, runs a small load and reconciles
//! every delivery; and `piston-webhooks loadtest` runs it. No timing assertions: speed
//! belongs in BENCHMARKS.md. The `--via amqp` test needs RabbitMQ on 127.0.0.1:5672
//! ([`broker`]): without it, a failure under `CI=true` and a loud skip elsewhere.

use std::process::Command;

mod broker;
mod modes;
mod support;
mod verdict;

use support::{daemon_binary, f, report_of, run_loadtest, u};

#[test]
fn loadtest_reconciles_every_delivery_and_measures_the_baseline() {
    let report = run_loadtest(&[
        "--events",
        "200",
        "--batch",
        "50",
        "--accounts",
        "2",
        "--hooks-per-account",
        "3",
        "--baseline",
    ]);
    assert_eq!(u(&report, "/events/accepted"), 200, "{report}");
    // 200 events, each for the 3 hooks of its account.
    assert_eq!(
        u(&report, "/reconciliation/expected_pairs"),
        600,
        "{report}"
    );
    assert_eq!(
        u(&report, "/reconciliation/received_pairs"),
        600,
        "{report}"
    );
    assert_eq!(u(&report, "/reconciliation/missing"), 0, "{report}");
    assert_eq!(u(&report, "/reconciliation/duplicates"), 0, "{report}");
    assert_eq!(
        u(&report, "/reconciliation/unexpected_pairs"),
        0,
        "{report}"
    );
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    // Watched for the default 2 s after the last expected delivery: nothing came.
    assert_eq!(u(&report, "/quiet_window/window_ms"), 2000, "{report}");
    assert_eq!(u(&report, "/quiet_window/requests"), 0, "{report}");
    assert_eq!(report["quiet_window"]["quiet"], true, "{report}");
    assert_eq!(u(&report, "/latency_ms/count"), 600);
    let (p50, p90, p99, p999, max) = (
        f(&report, "/latency_ms/p50"),
        f(&report, "/latency_ms/p90"),
        f(&report, "/latency_ms/p99"),
        f(&report, "/latency_ms/p99_9"),
        f(&report, "/latency_ms/max"),
    );
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{report}"
    );
    assert_eq!(u(&report, "/latency_from_accept_ms/count"), 600, "{report}");
    assert_eq!(u(&report, "/ingest_ms/count"), 4, "{report}");
    assert!(f(&report, "/deliveries/per_second") > 0.0, "{report}");
    assert!(f(&report, "/events/accepted_per_second") > 0.0, "{report}");
    assert!(u(&report, "/daemon/rss_kib") > 0, "{report}");
    assert!(f(&report, "/baseline/per_second") > 0.0, "{report}");
    assert!(f(&report, "/baseline/ratio") > 0.0, "{report}");
    assert_eq!(u(&report, "/baseline/errors"), 0, "{report}");
    // 6 hooks x 8 in flight each, under the daemon's 256 in all: the daemon's
    // concurrency, and the loop's.
    assert_eq!(u(&report, "/baseline/concurrency"), 48, "{report}");
    assert_eq!(u(&report, "/baseline/daemon_concurrency"), 48, "{report}");
    assert_eq!(
        u(&report, "/baseline/daemon_max_in_flight"),
        256,
        "{report}"
    );
    assert_eq!(
        u(&report, "/baseline/daemon_max_in_flight_per_hook"),
        8,
        "{report}"
    );
    assert!(!report["per_second"].as_array().unwrap().is_empty());
}

#[test]
fn the_baseline_runs_at_the_daemons_max_in_flight() {
    // 2 x 3 hooks x 8 per hook = 48 tries the hooks could run; the daemon runs 5.
    let report = run_loadtest(&[
        "--events",
        "40",
        "--batch",
        "20",
        "--accounts",
        "2",
        "--hooks-per-account",
        "3",
        "--max-in-flight",
        "5",
        "--quiet-window-ms",
        "200",
        "--baseline",
    ]);
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(u(&report, "/settings/max_in_flight"), 5, "{report}");
    assert_eq!(u(&report, "/baseline/concurrency"), 5, "{report}");
    assert_eq!(u(&report, "/baseline/daemon_concurrency"), 5, "{report}");
    assert_eq!(u(&report, "/baseline/healthy_hooks"), 6, "{report}");
    assert_eq!(u(&report, "/baseline/errors"), 0, "{report}");
}

#[test]
fn dead_hooks_and_receiver_errors_leave_the_healthy_hooks_reconciled() {
    let plot = tempfile::tempdir().unwrap();
    let svg = plot.path().join("chart.svg");
    let report = run_loadtest(&[
        "--events",
        "200",
        "--batch",
        "50",
        "--accounts",
        "2",
        "--hooks-per-account",
        "3",
        "--dead-hooks",
        "1",
        "--receiver-error-rate",
        "0.2",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    // One dead hook: 100 events of its account reach 2 hooks, the other 100 reach 3.
    assert_eq!(
        u(&report, "/reconciliation/expected_pairs"),
        500,
        "{report}"
    );
    assert_eq!(
        u(&report, "/reconciliation/received_pairs"),
        500,
        "{report}"
    );
    assert_eq!(u(&report, "/reconciliation/missing"), 0, "{report}");
    assert_eq!(u(&report, "/reconciliation/duplicates"), 0, "{report}");
    // About a fifth of the first tries failed and were retried: not duplicates.
    assert!(u(&report, "/reconciliation/injected_500s") > 0, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    assert!(report["baseline"].is_null());
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(chart.starts_with("<svg") && chart.contains("deliveries/s"));
}

#[test]
fn loadtest_via_amqp_reconciles_every_delivery_and_deletes_its_queues() {
    if !broker::rabbitmq_or_skip(
        "loadtest_via_amqp_reconciles_every_delivery_and_deletes_its_queues",
    ) {
        return;
    }
    let report = run_loadtest(&[
        "--via",
        "amqp",
        "--events",
        "300",
        "--batch",
        "50",
        "--accounts",
        "2",
        "--hooks-per-account",
        "2",
    ]);
    assert_eq!(report["settings"]["via"], "amqp", "{report}");
    // Confirmed by the broker, then appended by the daemon's consumer.
    assert_eq!(u(&report, "/events/accepted"), 300, "{report}");
    assert_eq!(u(&report, "/appended/events"), 300, "{report}");
    assert_eq!(report["appended"]["timed_out"], false, "{report}");
    assert!(f(&report, "/appended/per_second") > 0.0, "{report}");
    // 300 events, each for the 2 hooks of its account, identified by the `kz-` ids the
    // daemon derives from the messages.
    assert_eq!(
        u(&report, "/reconciliation/expected_pairs"),
        600,
        "{report}"
    );
    assert_eq!(
        u(&report, "/reconciliation/received_pairs"),
        600,
        "{report}"
    );
    assert_eq!(u(&report, "/reconciliation/missing"), 0, "{report}");
    assert_eq!(u(&report, "/reconciliation/duplicates"), 0, "{report}");
    assert_eq!(
        u(&report, "/reconciliation/unexpected_pairs"),
        0,
        "{report}"
    );
    assert_eq!(u(&report, "/errors/receiver_unidentified"), 0, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(u(&report, "/latency_ms/count"), 600, "{report}");
    // Nothing malformed, nothing left; the queues were deleted at the end.
    assert_eq!(u(&report, "/amqp/dead_lettered"), 0, "{report}");
    assert_eq!(u(&report, "/amqp/left_in_queue"), 0, "{report}");
    let queue = report["amqp"]["queue"].as_str().expect("queue name");
    assert!(queue.starts_with("piston-loadtest-"), "{report}");
}

#[test]
fn loadtest_without_hooks_measures_ingest_alone() {
    let report = run_loadtest(&[
        "--events",
        "500",
        "--batch",
        "100",
        "--accounts",
        "3",
        "--hooks-per-account",
        "0",
    ]);
    assert_eq!(report["settings"]["via"], "http", "{report}");
    assert_eq!(u(&report, "/events/accepted"), 500, "{report}");
    // Nothing to deliver: the check is the count of records the daemon appended.
    assert_eq!(u(&report, "/appended/events"), 500, "{report}");
    // Exact by construction, so no `exact` flag; counted again after the drain: no
    // event from elsewhere.
    assert!(report["appended"].get("exact").is_none(), "{report}");
    assert_eq!(u(&report, "/appended/events_at_end"), 500, "{report}");
    assert_eq!(u(&report, "/reconciliation/expected_pairs"), 0, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    // No hook: nothing could reach the receiver, no quiet window to wait for.
    assert!(report["quiet_window"].is_null(), "{report}");
    assert!(report["amqp"].is_null(), "{report}");
}

#[test]
fn piston_webhooks_loadtest_runs_the_load_tool_with_the_same_options() {
    let mut command = Command::new(daemon_binary());
    command.args([
        "loadtest",
        "--events",
        "100",
        "--batch",
        "50",
        "--accounts",
        "1",
        "--hooks-per-account",
        "1",
    ]);
    let report = report_of(command);
    assert_eq!(u(&report, "/events/accepted"), 100, "{report}");
    assert_eq!(
        u(&report, "/reconciliation/received_pairs"),
        100,
        "{report}"
    );
    assert_eq!(report["complete"], true, "{report}");
}
