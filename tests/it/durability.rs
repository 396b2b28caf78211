//! Snapshots make restarts replay only the tail; a broken snapshot falls back to a full
//! replay; retention prunes call events and attempts but keeps configuration.

use std::time::Duration;

use serde_json::{json, Value};

use crate::receiver::TestReceiver;
use crate::support::*;

async fn health(d: &Daemon) -> Value {
    d.client().get("/healthz").await.expect(200).data().clone()
}

async fn build_history(master: &Client, account: &str, n: usize) -> Vec<String> {
    let mut hooks = Vec::new();
    for i in 0..n {
        hooks.push(
            master
                .create_webhook(account, hook_doc(&format!("h{i}")))
                .await,
        );
    }
    hooks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_a_snapshot_and_the_next_start_replays_only_the_tail() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let hooks = build_history(&master, &account, 20).await;
    let token = master.token.clone();
    let before = health(&d).await;
    let d = d.restart(&[]);
    let after = health(&d).await;
    assert_eq!(
        after["start"]["snapshot_seq"], before["last_seq"],
        "{after}"
    );
    assert_eq!(after["start"]["replayed_records"], 0);
    let mut master = d.client();
    master.token = token;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks?paginate=false"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), hooks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_snapshots_bound_the_replay_after_a_crash() {
    let flags = [
        "--snapshot-every",
        "10",
        "--housekeeping-interval-ms",
        "100",
    ];
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    build_history(&master, &account, 30).await;
    // Wait for a periodic snapshot to cover all but the last few records, then crash
    // (so there is no final snapshot).
    let last = health(&d).await["last_seq"].as_u64().unwrap();
    let covered = eventually(Duration::from_secs(10), || async {
        let h = health(&d).await;
        (h["last_snapshot_seq"].as_u64().unwrap() + 10 > last).then_some(())
    })
    .await;
    assert!(covered.is_some(), "a periodic snapshot was taken");
    let d = d.crash_and_restart(&flags);
    let h = health(&d).await;
    let snap = h["start"]["snapshot_seq"].as_u64().unwrap();
    assert!(snap > 0 && snap <= last, "{h}");
    assert!(
        h["start"]["replayed_records"].as_u64().unwrap() < 12,
        "replayed more than the tail: {h}"
    );
    let master = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks?paginate=false"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_falls_back_to_a_full_replay() {
    let mut d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    build_history(&master, &account, 5).await;
    assert!(d.stop().success());
    // Overwrite every stored snapshot with garbage.
    {
        let path = d.data_dir.join("eventlog");
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
        assert!(cfs.iter().any(|c| c == "snapshots"), "{cfs:?}");
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, &cfs).unwrap();
        let cf = db.cf_handle("snapshots").unwrap();
        let keys: Vec<Box<[u8]>> = db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0)
            .collect();
        assert!(!keys.is_empty(), "a snapshot was saved at the stop");
        for k in keys {
            db.put_cf(cf, k, b"garbage, not a snapshot").unwrap();
        }
    }
    let d = Daemon::start_in(&d.data_dir.clone(), &[]);
    let h = health(&d).await;
    assert_eq!(h["start"]["snapshot_seq"], 0, "{h}");
    assert_eq!(
        h["start"]["replayed_records"], h["last_seq"],
        "the whole log: {h}"
    );
    let master = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 5);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_attempts_and_events_but_keeps_configuration() {
    let flags = [
        "--allow-private-targets",
        "--retention-seconds",
        "2",
        "--housekeeping-interval-ms",
        "200",
    ];
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    let hook_id = master
        .create_webhook(
            &account,
            json!({"name": "kept", "uri": rx.url, "hook": "channel_create"}),
        )
        .await;
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"hook_event": "channel_create", "account_id": account, "event_id": format!("old-{i}")}))
        .collect();
    master
        .send("POST", "/v2/events", Some(json!({"data": events})))
        .await
        .expect(202);
    rx.wait_for(20).await;
    let listed = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/attempts?paginate=false"
            ))
            .await
            .expect(200);
        (r.data().as_array().unwrap().len() == 20).then_some(())
    })
    .await;
    assert!(listed.is_some(), "20 attempts listed");
    // Newer traffic keeps the log's tail above the cut.
    let pruned = eventually(Duration::from_secs(20), || async {
        master
            .send(
                "POST",
                "/v2/events",
                Some(json!({"data": {"hook_event": "channel_answer", "account_id": account}})),
            )
            .await
            .expect(202);
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/attempts?paginate=false"
            ))
            .await
            .expect(200);
        r.data().as_array().unwrap().is_empty().then_some(())
    })
    .await;
    assert!(pruned.is_some(), "old attempts are pruned");
    // Configuration stays, and survives a restart after the prune.
    master
        .get(&format!("/v2/accounts/{account}/webhooks/{hook_id}"))
        .await
        .expect(200);
    let d = d.restart(&flags);
    let master = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{hook_id}"))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "kept");
    // A pruned event id is outside the retention window: accepted again as new.
    master
        .send("POST", "/v2/events", Some(json!({"data": {"hook_event": "channel_create", "account_id": account, "event_id": "old-0"}})))
        .await
        .expect(202);
    let again = eventually(Duration::from_secs(10), || async {
        (rx.received().len() > 20).then_some(())
    })
    .await;
    assert!(again.is_some());
}

async fn post_event_ids(master: &Client, account: &str, ids: &[&str]) {
    for id in ids {
        master
            .send(
                "POST",
                "/v2/events",
                Some(json!({"data": {"hook_event": "channel_create", "account_id": account, "event_id": id}})),
            )
            .await
            .expect(202);
    }
}

/// `/healthz` counts accepted events (producer retries of one id once), and the count
/// survives a clean restart (snapshot) and a crash (replay of the records after the
/// snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_counts_accepted_events_across_restarts() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let before = health(&d).await["events_accepted"]
        .as_u64()
        .expect("a count");
    post_event_ids(
        &master,
        &account,
        &["count-1", "count-2", "count-3", "count-1"],
    )
    .await;
    assert_eq!(health(&d).await["events_accepted"], before + 3);
    let d = d.restart(&[]);
    assert_eq!(health(&d).await["events_accepted"], before + 3);
    // Records after the clean stop's snapshot, then a crash: the next start must replay
    // them (and still count `count-1` once).
    let master = d.master().await;
    post_event_ids(&master, &account, &["count-4", "count-5", "count-1"]).await;
    let at_crash = health(&d).await;
    let last_seq = at_crash["last_seq"].as_u64().unwrap();
    let snapshot_seq = at_crash["last_snapshot_seq"].as_u64().unwrap();
    assert!(
        snapshot_seq < last_seq,
        "records after the last snapshot at the crash: {at_crash}"
    );
    let d = d.crash_and_restart(&[]);
    let h = health(&d).await;
    assert_eq!(h["start"]["snapshot_seq"], snapshot_seq, "{h}");
    assert_eq!(
        h["start"]["replayed_records"],
        last_seq - snapshot_seq,
        "the records after the snapshot were replayed: {h}"
    );
    assert!(h["start"]["replayed_records"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(h["last_seq"], last_seq, "{h}");
    assert_eq!(h["events_accepted"], before + 5, "{h}");
    // The token issued after the snapshot exists only in the replayed tail.
    let mut replayed_token = d.client();
    replayed_token.token = master.token.clone();
    replayed_token
        .get(&format!("/v2/accounts/{account}"))
        .await
        .expect(200);
}
