use std::sync::Arc;
use std::time::Duration;

use eventlog::WriteStats;

use super::*;

/// The value of the sample `series` (name and labels as exposed) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_family_is_exposed_with_its_type_from_the_start() {
    let text = Metrics::new().render(&ScrapeFigures::default());
    for (family, kind) in [
        ("piston_events_accepted_total", "counter"),
        ("piston_deliveries_total", "counter"),
        ("piston_delivery_duration_seconds", "histogram"),
        ("piston_pending_deliveries", "gauge"),
        ("piston_webhooks", "gauge"),
        ("piston_webhooks_auto_disabled_total", "counter"),
        ("piston_log_appends_total", "counter"),
        ("piston_log_append_duration_seconds", "histogram"),
        ("piston_log_last_seq", "gauge"),
        ("piston_amqp_messages_total", "counter"),
    ] {
        let declared = format!("# TYPE {family} {kind}\n");
        assert!(
            text.contains(&declared),
            "{declared:?} missing from\n{text}"
        );
    }
    for series in [
        r#"piston_events_accepted_total{source="http"}"#,
        r#"piston_events_accepted_total{source="amqp"}"#,
        r#"piston_deliveries_total{result="success"}"#,
        r#"piston_deliveries_total{result="failure"}"#,
        r#"piston_webhooks{state="enabled"}"#,
        r#"piston_webhooks{state="disabled"}"#,
        r#"piston_webhooks{state="auto_disabled"}"#,
        r#"piston_amqp_messages_total{outcome="accepted"}"#,
        r#"piston_amqp_messages_total{outcome="duplicate"}"#,
        r#"piston_amqp_messages_total{outcome="dropped"}"#,
        r#"piston_amqp_messages_total{outcome="dead_lettered"}"#,
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
    }
}

#[test]
fn delivery_durations_fall_in_buckets_from_a_millisecond_to_thirty_seconds() {
    let metrics = Metrics::new();
    metrics.try_finished(true, Duration::from_micros(500));
    metrics.try_finished(true, Duration::from_millis(40));
    metrics.try_finished(false, Duration::from_secs(20));
    metrics.try_finished(false, Duration::from_secs(60));
    let text = metrics.render(&ScrapeFigures::default());
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(r#"piston_delivery_duration_seconds_bucket{{le="{le}"}}"#),
        )
    };
    assert_eq!(bucket("0.001"), Some(1.0), "{text}");
    assert_eq!(bucket("0.05"), Some(2.0));
    assert_eq!(bucket("10"), Some(2.0));
    assert_eq!(bucket("30"), Some(3.0));
    assert_eq!(bucket("+Inf"), Some(4.0));
    assert_eq!(
        sample(&text, "piston_delivery_duration_seconds_count"),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, r#"piston_deliveries_total{result="success"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"piston_deliveries_total{result="failure"}"#),
        Some(2.0)
    );
}

#[test]
fn handles_and_observers_count_into_their_own_daemon_only() {
    let one = Arc::new(Metrics::new());
    let other = Arc::new(Metrics::new());
    one.events_accepted(Source::Http).inc_by(3);
    one.amqp_messages(AmqpOutcome::DeadLettered).inc();
    one.webhook_auto_disabled();
    let observe = one.log_observer();
    observe(&WriteStats {
        records: 5,
        duration: Duration::from_micros(300),
        last_seq: 42,
    });
    let text = one.render(&ScrapeFigures {
        pending_deliveries: 7,
        webhooks: actors::WebhookStates {
            enabled: 2,
            disabled: 1,
            auto_disabled: 1,
        },
        log_last_seq: 42,
    });
    for (series, value) in [
        (r#"piston_events_accepted_total{source="http"}"#, 3.0),
        (
            r#"piston_amqp_messages_total{outcome="dead_lettered"}"#,
            1.0,
        ),
        ("piston_webhooks_auto_disabled_total", 1.0),
        ("piston_log_appends_total", 5.0),
        (
            r#"piston_log_append_duration_seconds_bucket{le="0.0005"}"#,
            1.0,
        ),
        ("piston_log_last_seq", 42.0),
        ("piston_pending_deliveries", 7.0),
        (r#"piston_webhooks{state="enabled"}"#, 2.0),
        (r#"piston_webhooks{state="auto_disabled"}"#, 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let untouched = other.render(&ScrapeFigures::default());
    assert_eq!(
        sample(&untouched, r#"piston_events_accepted_total{source="http"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&untouched, "piston_log_appends_total"), Some(0.0));
}
