use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use eventlog::{AccountId, WebhookId};

use super::*;

fn disabled() -> AutoDisabled {
    AutoDisabled {
        account_id: AccountId::parse(&"a".repeat(32)).unwrap(),
        webhook_id: WebhookId::parse(&"b".repeat(32)).unwrap(),
        name: Some("orders".into()),
        uri: Some("http://example.com/hook".into()),
        reason: actors::AUTO_DISABLE_REASON.into(),
        failures: 6,
        at_ms: 1_795_000_000_000,
    }
}

#[test]
fn the_body_names_the_hook_and_why() {
    let body: serde_json::Value =
        serde_json::from_slice(&alert_body("alert_1", &disabled())).unwrap();
    assert_eq!(
        body,
        json!({
            "type": "webhook_disabled",
            "alert_id": "alert_1",
            "account_id": "a".repeat(32),
            "webhook_id": "b".repeat(32),
            "name": "orders",
            "uri": "http://example.com/hook",
            "reason": actors::AUTO_DISABLE_REASON,
            "failures": 6,
            "timestamp": "2026-11-18T11:06:40Z",
        })
    );
}

#[test]
fn a_secret_that_is_not_whsec_base64_is_refused() {
    let url = url::Url::parse("http://127.0.0.1:1/").unwrap();
    assert!(matches!(
        Alerts::new(url, "not-a-secret", AlertPolicy::default()),
        Err(AlertError::Secret(_))
    ));
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A loopback receiver that answers 500 to the first request and 200 after.
async fn flaky_receiver() -> (url::Url, Seen) {
    let seen: Seen = Arc::default();
    let keep = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let keep = Arc::clone(&keep);
        async move {
            let mut seen = keep.lock().unwrap();
            seen.push((headers, body.to_vec()));
            if seen.len() == 1 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        url::Url::parse(&format!("http://{addr}/alerts")).unwrap(),
        seen,
    )
}

#[tokio::test]
async fn a_refused_alert_is_tried_again_with_the_same_id_and_a_valid_signature() {
    let (url, seen) = flaky_receiver().await;
    let secret = actors::signing::generate_secret();
    let policy = AlertPolicy {
        tries: 3,
        first_retry: Duration::from_millis(10),
        ..AlertPolicy::default()
    };
    let alerts = Alerts::new(url, secret.expose(), policy).unwrap();
    alerts.webhook_disabled(&disabled());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The second try succeeded: no third comes (the permit is given back).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one refused try, one accepted");
    let key = HmacKey::new(&decode_secret(secret.expose()).unwrap());
    let header = |h: &HeaderMap, name: &str| h.get(name).unwrap().to_str().unwrap().to_owned();
    let first_id = header(&seen[0].0, "webhook-id");
    for (headers, body) in &seen {
        let id = header(headers, "webhook-id");
        assert_eq!(id, first_id, "the same alert id on every try");
        let timestamp = header(headers, "webhook-timestamp");
        assert_eq!(
            header(headers, "webhook-signature"),
            sign_v1(&key, &id, &timestamp, body)
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["type"],
            "webhook_disabled"
        );
    }
    assert_eq!(
        alerts.inner.in_flight.available_permits(),
        policy.max_in_flight
    );
}

#[tokio::test]
async fn alerts_beyond_the_in_flight_bound_are_dropped_not_queued() {
    // A closed port: every try fails, so each alert holds its permit while it waits.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}/", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let policy = AlertPolicy {
        tries: 2,
        first_retry: Duration::from_secs(30),
        request_timeout: Duration::from_secs(1),
        max_in_flight: 2,
    };
    let secret = actors::signing::generate_secret();
    let alerts = Alerts::new(url, secret.expose(), policy).unwrap();
    for _ in 0..5 {
        alerts.webhook_disabled(&disabled());
    }
    assert_eq!(alerts.inner.in_flight.available_permits(), 0);
}
