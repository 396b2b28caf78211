//! SIGTERM: stop accepting, let tries in flight finish within the bound, close the log.

use std::time::Duration;

use serde_json::json;

use crate::receiver::TestReceiver;
use crate::support::*;

async fn slow_setup(flags: &[&str], delay: Duration) -> (Daemon, Client, String, TestReceiver) {
    let d = Daemon::start(flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.slow_when_contains("slow", delay);
    master
        .create_webhook(
            &account,
            json!({"name": "slow", "uri": rx.url, "hook": "channel_create"}),
        )
        .await;
    master
        .send(
            "POST",
            "/v2/events",
            Some(
                json!({"data": {"hook_event": "channel_create", "account_id": account,
            "event_id": "in-flight", "call_id": "the-call", "note": "slow"}}),
            ),
        )
        .await
        .expect(202);
    let started = eventually(Duration::from_secs(10), || async {
        (rx.arrived() == 1).then_some(())
    })
    .await;
    assert!(started.is_some(), "the try started");
    (d, master, account, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_try_in_flight_finish_and_logs_it() {
    let (mut d, master, account, rx) =
        slow_setup(&["--allow-private-targets"], Duration::from_millis(800)).await;
    let token = master.token.clone();
    let status = d.stop();
    assert!(status.success(), "clean exit: {status}");
    assert_eq!(
        rx.received().len(),
        1,
        "the try in flight was answered before the exit"
    );
    // After a restart the attempt is logged as a success and nothing is sent again.
    let d = d.restart(&["--allow-private-targets"]);
    let mut master = d.client();
    master.token = token;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/attempts"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    assert_eq!(r.data()[0]["result"], "success");
    // Nothing is owed after the restart, and a later event of the same call (which per-call
    // order would put behind a resent one) is the next request the receiver sees.
    assert_eq!(d.health().await["pending_deliveries"], 0);
    master
        .send(
            "POST",
            "/v2/events",
            Some(
                json!({"data": {"hook_event": "channel_create", "account_id": account,
            "event_id": "marker", "call_id": "the-call"}}),
            ),
        )
        .await
        .expect(202);
    let got = rx.wait_for(2).await;
    let ids: Vec<_> = got.iter().map(|r| r.header("x-event-id")).collect();
    assert_eq!(
        ids,
        [Some("in-flight"), Some("marker")],
        "a finished delivery was sent again after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_longer_than_the_bound_is_cut_off_and_resumed_after_restart() {
    let flags = [
        "--allow-private-targets",
        "--shutdown-timeout-ms",
        "500",
        "--request-timeout-ms",
        "60000",
        "--retry-base-ms",
        "50",
    ];
    // The receiver holds the try for 20 s, far beyond the 500 ms bound (and within the
    // request timeout, so only the bound can cut it off).
    let (mut d, _master, _account, rx) = slow_setup(&flags, Duration::from_secs(20)).await;
    let status = d.stop();
    assert!(status.success(), "clean exit: {status}");
    assert!(
        rx.received().is_empty(),
        "the daemon waited for the try's answer instead of cutting it off"
    );
    rx.slow_when_contains("nothing-matches-this", Duration::ZERO);
    let _d = d.restart(&flags);
    // The delivery was still owed, so it is made again (at least once, same event id).
    let got = rx.wait_for(1).await;
    assert!(got
        .iter()
        .any(|r| r.header("x-event-id") == Some("in-flight")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_requests() {
    let mut d = Daemon::start(&[]);
    let client = d.client();
    client.get("/healthz").await.expect(200);
    let status = d.stop();
    assert!(status.success());
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", d.base))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "still serving after SIGTERM");
}
