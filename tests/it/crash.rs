//! kill -9 at awkward moments: every accepted event still reaches every webhook it
//! matched (at least once, same X-Event-ID), pending retries resume, failure counts
//! survive, and deleted webhooks get nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::receiver::TestReceiver;
use crate::support::*;

async fn post(master: &Client, data: Value) -> Option<u16> {
    // A request cut by the kill is not an accepted event: the caller learns nothing.
    let res = reqwest::Client::new()
        .post(format!("{}/v2/events", master.base))
        .header("X-Auth-Token", master.token.clone().unwrap_or_default())
        .body(json!({ "data": data }).to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

fn pairs(rx: &TestReceiver) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for r in rx.received() {
        let key = (
            r.header("x-event-id").unwrap_or("").to_owned(),
            r.header("x-hook-id").unwrap_or("").to_owned(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_is_delivered_across_kills_in_the_middle_of_bursts() {
    let flags = ["--allow-private-targets", "--retry-base-ms", "50"];
    let mut d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let mut token = master.token.clone();
    let rx = TestReceiver::start().await;
    rx.slow_when_contains("slowish", Duration::from_millis(30));
    let mut hooks = Vec::new();
    for verb in ["post", "get"] {
        hooks.push(
            master
                .create_webhook(&account, json!({"name": verb, "uri": rx.url, "hook": "channel_create", "http_verb": verb}))
                .await,
        );
    }
    let mut accepted: HashSet<String> = HashSet::new();
    let mut n = 0;
    for round in 0..3 {
        let mut client = d.client();
        client.token = token.clone();
        // A burst of batches, then a kill while deliveries are in flight.
        for _ in 0..6 {
            let batch: Vec<Value> = (0..25)
                .map(|i| {
                    n += 1;
                    json!({"hook_event": "channel_create", "account_id": account,
                           "event_id": format!("r{round}-e{n}"), "call_id": format!("call-{}", i % 5),
                           "note": "slowish"})
                })
                .collect();
            let ids: Vec<String> = batch
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned())
                .collect();
            if post(&client, Value::Array(batch)).await == Some(202) {
                accepted.extend(ids);
            }
        }
        d = d.crash_and_restart(&flags);
        let fresh = d.client().login(MASTER_KEY).await;
        token = fresh.token.clone();
    }
    assert_eq!(
        accepted.len(),
        3 * 6 * 25,
        "every batch was accepted before its kill"
    );
    let want: HashSet<(String, String)> = accepted
        .iter()
        .flat_map(|e| hooks.iter().map(move |h| (e.clone(), h.clone())))
        .collect();
    let done = eventually(Duration::from_secs(60), || async {
        let got: HashSet<(String, String)> = pairs(&rx).into_keys().collect();
        want.is_subset(&got).then_some(got)
    })
    .await;
    let got: HashSet<(String, String)> = pairs(&rx).into_keys().collect();
    assert!(
        done.is_some(),
        "missing {} of {} pairs",
        want.difference(&got).count(),
        want.len()
    );
    assert!(got.is_subset(&want), "deliveries of events never accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_retries_failure_counts_and_deletions_survive_kill_9() {
    // Retries are due 1-2 s after a failure: long enough to crash in between.
    let flags = [
        "--allow-private-targets",
        "--retry-base-ms",
        "2000",
        "--failure-threshold",
        "4",
    ];
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let token = master.token.clone();
    let flaky = TestReceiver::start().await;
    flaky.script(&[500], 200);
    let doomed_rx = TestReceiver::start().await;
    doomed_rx.script(&[], 500);
    let deleted_rx = TestReceiver::start().await;
    deleted_rx.script(&[500], 200);
    master
        .create_webhook(
            &account,
            json!({"name": "flaky", "uri": flaky.url, "hook": "channel_create", "retries": 2}),
        )
        .await;
    let doomed = master
        .create_webhook(
            &account,
            json!({"name": "doomed", "uri": doomed_rx.url, "hook": "channel_answer", "retries": 0}),
        )
        .await;
    let deleted = master.create_webhook(&account, json!({"name": "deleted", "uri": deleted_rx.url, "hook": "channel_destroy", "retries": 2})).await;
    let send = |hook_event: &'static str, id: &'static str| {
        let master = master.clone();
        let account = account.clone();
        async move {
            master
                .send("POST", "/v2/events", Some(json!({"data": {"hook_event": hook_event, "account_id": account, "event_id": id}})))
                .await
                .expect(202);
        }
    };
    for id in ["doomed-1", "doomed-2", "doomed-3"] {
        send("channel_answer", id).await;
    }
    send("channel_create", "retry-after-crash").await;
    send("channel_destroy", "to-deleted").await;
    // Three failures of the doomed hook (threshold 4) and one failed try of each of the
    // others are logged; then one hook is deleted with its retry pending.
    let ready = eventually(Duration::from_secs(20), || async {
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/attempts?paginate=false"
            ))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        let count = |prefix: &str| {
            items
                .iter()
                .filter(|a| a["event_id"].as_str().unwrap_or("").starts_with(prefix))
                .count()
        };
        (count("doomed-") == 3 && count("retry-after-crash") == 1 && count("to-deleted") == 1)
            .then_some(())
    })
    .await;
    assert!(ready.is_some(), "the first tries were logged");
    master
        .delete(&format!("/v2/accounts/{account}/webhooks/{deleted}"))
        .await
        .expect(200);

    let d = d.crash_and_restart(&flags);
    let mut master = d.client();
    master.token = token;
    // The pending retry resumes and succeeds, with the same event id.
    let got = flaky.wait_for(2).await;
    assert!(got
        .iter()
        .all(|r| r.header("x-event-id") == Some("retry-after-crash")));
    // The failure count survived: one more failure reaches the threshold of 4.
    master
        .send("POST", "/v2/events", Some(json!({"data": {"hook_event": "channel_answer", "account_id": account, "event_id": "doomed-4"}})))
        .await
        .expect(202);
    let disabled = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{doomed}"))
            .await
            .expect(200);
        (r.data()["enabled"] == false).then_some(r.data()["disable_reason"].clone())
    })
    .await;
    assert_eq!(disabled, Some(json!("too many failed attempts")));
    assert_eq!(doomed_rx.received().len(), 4);
    // Nothing went to the hook deleted before the crash, though its retry came due.
    let late = eventually(Duration::from_millis(2500), || async {
        (deleted_rx.arrived() > 1).then_some(())
    })
    .await;
    assert!(
        late.is_none(),
        "a deleted webhook was called after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_retry_after_a_crash_is_acknowledged_and_not_delivered_twice() {
    let flags = ["--allow-private-targets"];
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            json!({"name": "once", "uri": rx.url, "hook": "channel_create"}),
        )
        .await;
    let e = json!({"data": {"hook_event": "channel_create", "account_id": account, "event_id": "only-once"}});
    master
        .send("POST", "/v2/events", Some(e.clone()))
        .await
        .expect(202);
    rx.wait_for(1).await;
    // Crash once the delivery is logged as done (before that, a crash means the
    // delivery is still owed and is made again: at least once).
    let logged = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/attempts"))
            .await
            .expect(200);
        (r.data().as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(logged.is_some(), "the delivery was logged");
    let d = d.crash_and_restart(&flags);
    let master = d.master().await;
    let r = master.send("POST", "/v2/events", Some(e)).await.expect(202);
    assert_eq!(r.data()["accepted"], 1);
    let twice = eventually(Duration::from_millis(800), || async {
        (rx.arrived() > 1).then_some(())
    })
    .await;
    assert!(twice.is_none(), "the retried event was delivered again");
}
