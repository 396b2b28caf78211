//! The daemon when its event log cannot be written (INTERFACE.md section 8): `/healthz`
//! says so with a 503 and the reason, writes answer 503, a delivery whose receiver
//! answered is not sent again while its attempt record waits, and everything recovers
//! without a restart once the log can be written again.
//!
//! The full disk is simulated with the log's fault hook, `PISTON_FAULT_DISK_FULL=<path>`
//! (every write fails as if the disk were full while that file exists): a real full disk
//! is shown at the event log's level (`eventlog/src/store/health/tests.rs` fills a tmpfs).

use std::time::Duration;

use serde_json::json;

use crate::receiver::TestReceiver;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_is_reported_and_nothing_is_sent_twice() {
    let temp = tempfile::tempdir().expect("temp dir");
    let full = temp.path().join("disk-is-full");
    let data = temp.path().join("data");
    let d = Daemon::start_with_env(
        &data,
        &["--allow-private-targets", "--retry-base-ms", "100"],
        &[("PISTON_FAULT_DISK_FULL", full.to_str().expect("utf-8 path"))],
    );
    let master = d.master().await;
    let root = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.slow_when_contains("held-call", Duration::from_secs(2));
    master
        .create_webhook(
            &root,
            json!({"name": "h", "uri": rx.url, "hook": "channel_create", "format": "json"}),
        )
        .await;
    let event = |call: &str| json!({"data": {"hook_event": "channel_create", "account_id": root, "call_id": call}});
    master
        .send("POST", "/v2/events", Some(event("held-call")))
        .await
        .expect(202);
    // The try is at the receiver: fill the disk before it answers.
    let arrived = eventually(Duration::from_secs(20), || async {
        (rx.arrived() == 1).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "the try reached the receiver");
    std::fs::write(&full, b"full").expect("fault file");

    // Health says why, and writes are refused.
    let health = eventually(Duration::from_secs(20), || async {
        let r = d.client().get("/healthz").await;
        (r.status == 503).then_some(r)
    })
    .await
    .expect("/healthz turns 503 once a write fails");
    assert_eq!(health.data()["log"]["writable"], false, "{}", health.body);
    assert!(
        health.data()["log"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        health.body
    );
    master
        .send("POST", "/v2/events", Some(event("refused-call")))
        .await
        .expect(503);

    // Space comes back: health recovers without a restart, the waiting attempt record is
    // written, and the receiver got the held event exactly once.
    std::fs::remove_file(&full).expect("remove the fault file");
    let recovered = eventually(Duration::from_secs(30), || async {
        let r = d.client().get("/healthz").await;
        (r.status == 200 && r.data()["pending_deliveries"] == 0).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "health and the attempt record recover");
    // A later event of the same call is delivered after the held one (per-call order),
    // so once it arrives, every copy of the held one would have arrived too.
    master
        .send("POST", "/v2/events", Some(event("held-call-marker")))
        .await
        .expect(202);
    let got = eventually(Duration::from_secs(20), || async {
        let r = rx.received();
        r.iter()
            .any(|x| x.text().contains("held-call-marker"))
            .then_some(r)
    })
    .await
    .expect("the marker arrived");
    let held = got
        .iter()
        .filter(|r| r.text().contains("\"held-call\""))
        .count();
    assert_eq!(
        held, 1,
        "the answered delivery was sent again while its record waited"
    );
}
