//! `GET /metrics` (INTERFACE.md section 10) and `--alert-url`: counters move by what the
//! daemon did, each daemon counts its own, and an auto-disable sends a signed alert once
//! the disable is in the log.

use std::time::Duration;

use serde_json::{json, Value};
use standardwebhooks::Webhook;

use crate::receiver::TestReceiver;
use crate::support::*;

/// Quick retries; auto-disable after `threshold` failures.
fn flags(threshold: &'static str) -> Vec<&'static str> {
    vec![
        "--allow-private-targets",
        "--retry-base-ms",
        "20",
        "--failure-threshold",
        threshold,
    ]
}

/// The whole exposition, checking status and content type.
async fn scrape(d: &Daemon) -> String {
    let r = reqwest::get(format!("{}/metrics", d.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    r.text().await.unwrap()
}

/// The value of one series (name with its labels, as exposed); 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (10 s at most) until every series has its expected value; fails naming them.
async fn until_values(d: &Daemon, expected: &[(&str, f64)]) -> String {
    let got = eventually(Duration::from_secs(10), || async {
        let text = scrape(d).await;
        expected
            .iter()
            .all(|(series, want)| value(&text, series) == *want)
            .then_some(text)
    })
    .await;
    match got {
        Some(text) => text,
        None => {
            let text = scrape(d).await;
            let seen: Vec<_> = expected
                .iter()
                .map(|(series, want)| (series, *want, value(&text, series)))
                .collect();
            panic!("(series, wanted, got): {seen:?}\n{text}");
        }
    }
}

fn event(account: &str, n: usize) -> Value {
    json!({"hook_event": "channel_create", "account_id": account,
           "call_id": format!("call-{n}"), "event_id": format!("metrics-{n}")})
}

async fn post_events(master: &Client, events: Vec<Value>) {
    master
        .send("POST", "/v2/events", Some(json!({ "data": events })))
        .await
        .expect(202);
}

const HTTP_ACCEPTED: &str = r#"piston_events_accepted_total{source="http"}"#;
const SUCCESSES: &str = r#"piston_deliveries_total{result="success"}"#;
const FAILURES: &str = r#"piston_deliveries_total{result="failure"}"#;

#[tokio::test]
async fn events_deliveries_and_log_appends_are_counted() {
    let d = Daemon::start(&flags("1000"));
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            json!({"name": "m", "uri": rx.url, "hook": "channel_create"}),
        )
        .await;
    let before = scrape(&d).await;
    assert_eq!(value(&before, HTTP_ACCEPTED), 0.0);
    assert_eq!(value(&before, r#"piston_webhooks{state="enabled"}"#), 1.0);
    let appends_before = value(&before, "piston_log_appends_total");
    assert!(appends_before >= 2.0, "the master account and the webhook");

    post_events(&master, (0..3).map(|n| event(&account, n)).collect()).await;
    // A producer's retry of an accepted event is acknowledged but not counted again.
    post_events(&master, vec![event(&account, 0)]).await;
    rx.wait_for(3).await;
    d.wait_until_nothing_is_owed().await;
    let text = until_values(
        &d,
        &[
            (HTTP_ACCEPTED, 3.0),
            (r#"piston_events_accepted_total{source="amqp"}"#, 0.0),
            (SUCCESSES, 3.0),
            (FAILURES, 0.0),
            ("piston_delivery_duration_seconds_count", 3.0),
            ("piston_pending_deliveries", 0.0),
        ],
    )
    .await;
    // 3 events and 3 attempt records (the token of the login is in `before` already).
    assert_eq!(
        value(&text, "piston_log_appends_total") - appends_before,
        6.0,
        "{text}"
    );
    let last_seq = d.health().await["last_seq"].as_f64().unwrap();
    assert_eq!(value(&text, "piston_log_last_seq"), last_seq);
    assert!(value(&text, "piston_log_append_duration_seconds_count") >= 1.0);
    assert_eq!(
        value(
            &text,
            r#"piston_delivery_duration_seconds_bucket{le="+Inf"}"#
        ),
        3.0
    );
}

#[tokio::test]
async fn two_daemons_in_one_process_count_apart() {
    let one = Daemon::start(&[]);
    let other = Daemon::start(&[]);
    let (m1, m2) = (one.master().await, other.master().await);
    let (a1, a2) = (m1.own_account().await, m2.own_account().await);
    post_events(&m1, (0..2).map(|n| event(&a1, n)).collect()).await;
    post_events(&m2, vec![event(&a2, 7)]).await;
    until_values(&one, &[(HTTP_ACCEPTED, 2.0)]).await;
    until_values(&other, &[(HTTP_ACCEPTED, 1.0)]).await;
}

#[tokio::test]
async fn an_auto_disable_is_counted_and_alerted_signed_once_it_is_in_the_log() {
    let alerts = TestReceiver::start().await;
    let mut extra = flags("2");
    let alert_url = format!("{}/alerts", alerts.url);
    extra.extend(["--alert-url", alert_url.as_str()]);
    let d = Daemon::start(&extra);
    // No --alert-secret: the daemon generated one and keeps it beside the master key.
    let secret_file = d.data_dir.join("alert-secret");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let secret = secret.trim();
    assert!(secret.starts_with("whsec_"), "{secret}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let master = d.master().await;
    let account = master.own_account().await;
    let bad = TestReceiver::start().await;
    bad.script(&[], 500);
    let hook_id = master
        .create_webhook(
            &account,
            json!({"name": "doomed", "uri": bad.url, "hook": "channel_create", "retries": 4}),
        )
        .await;
    post_events(&master, vec![event(&account, 1)]).await;

    let got = alerts.wait_for(1).await;
    // Sent only once the disable was durable (and so applied): the hook reads disabled.
    let hook = master
        .get(&format!("/v2/accounts/{account}/webhooks/{hook_id}"))
        .await
        .expect(200);
    assert_eq!(hook.data()["enabled"], false, "{:?}", hook.data());
    let alert = &got[0];
    assert_eq!(alert.method, "POST");
    assert_eq!(alert.uri, "/alerts");
    Webhook::new(secret)
        .unwrap()
        .verify(&alert.body, &alert.headers)
        .expect("the alert verifies with the alert secret");
    let other_secret = actors_secret();
    assert!(
        Webhook::new(&other_secret)
            .unwrap()
            .verify(&alert.body, &alert.headers)
            .is_err(),
        "a signature any secret verifies would prove nothing"
    );
    let body = alert.json();
    assert_eq!(body["type"], "webhook_disabled");
    assert_eq!(body["account_id"], account.as_str());
    assert_eq!(body["webhook_id"], hook_id.as_str());
    assert_eq!(body["name"], "doomed");
    assert_eq!(body["uri"], bad.url.as_str());
    assert_eq!(body["reason"], "too many failed attempts");
    assert_eq!(body["failures"], 2);
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    let text = until_values(
        &d,
        &[
            ("piston_webhooks_auto_disabled_total", 1.0),
            (r#"piston_webhooks{state="auto_disabled"}"#, 1.0),
            (r#"piston_webhooks{state="enabled"}"#, 0.0),
            (FAILURES, 2.0),
            (SUCCESSES, 0.0),
        ],
    )
    .await;
    assert_eq!(value(&text, HTTP_ACCEPTED), 1.0);
    // One alert per disable.
    assert_eq!(alerts.received().len(), 1);
}

/// A valid secret that is not the daemon's.
fn actors_secret() -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    )
}
