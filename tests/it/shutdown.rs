//! SIGTERM: stop accepting, let tries in flight finish within the bound, close the log.

use std::time::{Duration, Instant};

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
            Some(json!({"data": {"hook_event": "channel_create",
            "account_id": account, "event_id": "in-flight", "note": "slow"}})),
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
    let again = eventually(Duration::from_millis(800), || async {
        (rx.arrived() > 1).then_some(())
    })
    .await;
    assert!(
        again.is_none(),
        "a finished delivery was sent again after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_longer_than_the_bound_is_cut_off_and_resumed_after_restart() {
    let flags = [
        "--allow-private-targets",
        "--shutdown-timeout-ms",
        "500",
        "--retry-base-ms",
        "50",
    ];
    let (mut d, _master, _account, rx) = slow_setup(&flags, Duration::from_secs(4)).await;
    let t0 = Instant::now();
    let status = d.stop();
    assert!(status.success(), "clean exit: {status}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t0.elapsed()
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
