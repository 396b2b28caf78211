//! Resend and recover (INTERFACE.md section 10): what a disable left undelivered comes
//! back in log order, what was delivered does not, a resend repeats one attempt's event,
//! a recover survives kill -9, and nobody recovers another account's hook.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::receiver::TestReceiver;
use crate::support::{eventually, log_records, Client, Daemon};

const FLAGS: &[&str] = &[
    "--allow-private-targets",
    "--retry-base-ms",
    "20",
    "--failure-threshold",
    "2",
];

fn event(account: &str, n: usize, call: &str, hook_event: &str) -> Value {
    json!({"hook_event": hook_event, "account_id": account, "call_id": call,
           "event_id": format!("rd-{n}")})
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_events(api: &Client, events: Vec<Value>) {
    api.send("POST", "/v2/events", Some(json!({"data": events})))
        .await
        .expect(202);
}

async fn wait_disabled(api: &Client, account: &str, hook: &str) {
    let disabled = eventually(Duration::from_secs(30), || async {
        let r = api
            .get(&format!("/v2/accounts/{account}/webhooks/{hook}"))
            .await;
        (r.data()["enabled"] == false).then_some(())
    })
    .await;
    assert!(disabled.is_some(), "the failing hook auto-disabled");
}

fn event_ids(received: &[crate::receiver::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.header("x-event-id").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn recover_delivers_what_a_disable_left_in_order_and_skips_what_arrived() {
    let d = Daemon::start(FLAGS);
    let receiver = TestReceiver::start().await;
    let api = d.master().await;
    let root = api.own_account().await;
    let acme = api.create_account(&root, "Acme").await;
    let since = unix_now() - 60;
    let hook = api
        .create_webhook(
            &acme,
            json!({"name": "crm", "uri": receiver.url, "hook": "channel_create", "retries": 1}),
        )
        .await;

    // rd-0 arrives; rd-1 fails twice and the hook auto-disables.
    post_events(&api, vec![event(&acme, 0, "call-a", "channel_create")]).await;
    receiver.wait_for(1).await;
    receiver.script(&[], 500);
    post_events(&api, vec![event(&acme, 1, "call-a", "channel_create")]).await;
    wait_disabled(&api, &acme, &hook).await;
    d.wait_until_nothing_is_owed().await;
    assert_eq!(receiver.received().len(), 3);

    // While it is disabled: two more of its kind, one of another kind.
    post_events(
        &api,
        vec![
            event(&acme, 2, "call-a", "channel_create"),
            event(&acme, 3, "call-b", "channel_create"),
            event(&acme, 4, "call-a", "channel_destroy"),
        ],
    )
    .await;

    // A disabled hook is not recovered: enable it first.
    let path = format!("/v2/accounts/{acme}/webhooks/{hook}/recover");
    let r = api
        .send("PUT", &path, Some(json!({"data": {"since": since}})))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);

    receiver.script(&[], 200);
    api.send(
        "PATCH",
        &format!("/v2/accounts/{acme}/webhooks"),
        Some(json!({"data": {"re-enable": true}})),
    )
    .await
    .expect(200);
    let r = api
        .send("PUT", &path, Some(json!({"data": {"since": since}})))
        .await
        .expect(202);
    assert_eq!(r.data()["events"], 3, "rd-1, rd-2, rd-3: {:?}", r.body);

    let got = receiver.wait_for(6).await;
    let recovered = event_ids(&got[3..]);
    let position = |id: &str| recovered.iter().position(|e| e == id);
    let mut sorted = recovered.clone();
    sorted.sort();
    assert_eq!(sorted, ["rd-1", "rd-2", "rd-3"], "{recovered:?}");
    assert!(
        position("rd-1") < position("rd-2"),
        "per-call order: {recovered:?}"
    );

    // Each recovered delivery is an attempt, listed with its id; nothing more comes.
    let attempts = eventually(Duration::from_secs(30), || async {
        let r = api
            .get(&format!("/v2/accounts/{acme}/webhooks/{hook}/attempts"))
            .await
            .expect(200);
        let items = r.data().as_array().cloned().unwrap_or_default();
        (items.iter().filter(|a| a["result"] == "success").count() == 4).then_some(items)
    })
    .await
    .expect("four successful attempts listed");
    for item in &attempts {
        let id = item["id"].as_str().unwrap();
        assert!(
            id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit()),
            "{item}"
        );
    }
    let again = api
        .send(
            "PUT",
            &path,
            Some(json!({"data": {"since": since, "until": unix_now() + 1}})),
        )
        .await
        .expect(202);
    assert_eq!(again.data()["events"], 0, "everything was delivered");

    // The audit shows who asked for what.
    d.wait_until_nothing_is_owed().await;
    let asked = log_records(&d.data_dir, &["redelivery_requested"], 1);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[0]["requested_by"], root.as_str());
    assert_eq!(asked[0]["webhook_id"], hook.as_str());
    assert_eq!(asked[0]["events"], 3);
    assert_eq!(asked[0]["undelivered_only"], true);
    assert_eq!(receiver.received().len(), 6, "nothing delivered twice");
}

#[tokio::test]
async fn resend_repeats_one_attempts_event_and_only_for_its_own_hook() {
    let d = Daemon::start(FLAGS);
    let receiver = TestReceiver::start().await;
    let api = d.master().await;
    let root = api.own_account().await;
    let acme = api.create_account(&root, "Acme").await;
    let globex = api.create_account(&root, "Globex").await;
    let doc = json!({"name": "h", "uri": receiver.url, "hook": "channel_create"});
    let hook = api.create_webhook(&acme, doc.clone()).await;
    let other = api.create_webhook(&globex, doc).await;
    post_events(&api, vec![event(&acme, 7, "call-r", "channel_create")]).await;
    receiver.wait_for(1).await;
    let attempts_path = format!("/v2/accounts/{acme}/webhooks/{hook}/attempts");
    let attempt = eventually(Duration::from_secs(30), || async {
        let r = api.get(&attempts_path).await.expect(200);
        r.data()[0]["id"].as_str().map(str::to_owned)
    })
    .await
    .expect("an attempt id");

    let resend = |account: &str, hook: &str, attempt: &str| {
        format!("/v2/accounts/{account}/webhooks/{hook}/attempts/{attempt}/resend")
    };
    let r = api
        .send(
            "PUT",
            &resend(&acme, &hook, &attempt),
            Some(json!({"data": {}})),
        )
        .await
        .expect(202);
    assert_eq!(r.data()["event_id"], "rd-7");
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[1].header("x-event-id"),
        Some("rd-7"),
        "sent again, same event id"
    );

    // Another account's hook, an unknown attempt, a word: all unknown ids.
    for path in [
        resend(&globex, &other, &attempt),
        resend(&acme, &hook, "00000000000000000001"),
        resend(&acme, &hook, "99999999999999999999"),
        resend(&acme, &hook, "latest"),
    ] {
        let r = api.send("PUT", &path, Some(json!({"data": {}}))).await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.body);
    }
    // Globex's own credentials cannot reach Acme's hook.
    let globex_api = api.as_account(&globex).await;
    let r = globex_api
        .send(
            "PUT",
            &resend(&acme, &hook, &attempt),
            Some(json!({"data": {}})),
        )
        .await;
    assert!(r.status == 403 || r.status == 401, "{:?}", r.body);

    // Bad recover bodies are refused with the field named.
    let recover = format!("/v2/accounts/{acme}/webhooks/{hook}/recover");
    for (body, field) in [
        (json!({"data": {}}), "since"),
        (json!({"data": {"since": "yesterday"}}), "since"),
        (json!({"data": {"since": 20, "until": 10}}), "until"),
    ] {
        let r = api.send("PUT", &recover, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.body["data"].get(field).is_some(), "{body}: {:?}", r.body);
    }
    let r = api
        .send(
            "PUT",
            &recover,
            Some(json!({"data": {"since": "2026-01-01T00:00:00Z"}})),
        )
        .await
        .expect(202);
    assert_eq!(r.data()["events"], 0, "rd-7 was delivered");
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_recover_cut_by_kill_9_goes_on_after_the_restart() {
    const EVENTS: usize = 700;
    let mut d = Daemon::start(FLAGS);
    let receiver = TestReceiver::start().await;
    let api = d.master().await;
    let root = api.own_account().await;
    let hook = api
        .create_webhook(
            &root,
            json!({"name": "bulk", "uri": receiver.url, "hook": "channel_create", "enabled": false}),
        )
        .await;
    let since = unix_now() - 60;
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(100) {
        let events = chunk
            .iter()
            .map(|n| event(&root, *n, &format!("call-{n}"), "channel_create"))
            .collect();
        post_events(&api, events).await;
    }
    assert_eq!(receiver.received().len(), 0, "disabled: nothing sent");
    api.patch(
        &format!("/v2/accounts/{root}/webhooks/{hook}"),
        json!({"enabled": true}),
    )
    .await
    .expect(200);
    receiver.slow_when_contains("rd-", Duration::from_millis(20));
    let r = api
        .send(
            "PUT",
            &format!("/v2/accounts/{root}/webhooks/{hook}/recover"),
            Some(json!({"data": {"since": since}})),
        )
        .await
        .expect(202);
    assert_eq!(r.data()["events"], EVENTS);

    // Killed in the middle of the recover, more than one page in.
    let midway = eventually(Duration::from_secs(60), || async {
        (receiver.received().len() >= 300).then_some(())
    })
    .await;
    assert!(midway.is_some(), "{} delivered", receiver.received().len());
    d.kill9();
    let before = receiver.received().len();
    assert!(before < EVENTS, "the kill came before the end: {before}");

    let d = d.crash_and_restart(FLAGS);
    let all = eventually(Duration::from_secs(90), || async {
        let ids: HashSet<String> = event_ids(&receiver.received()).into_iter().collect();
        (ids.len() == EVENTS).then_some(ids)
    })
    .await;
    let seen: HashSet<String> = event_ids(&receiver.received()).into_iter().collect();
    assert!(all.is_some(), "{} of {EVENTS} events recovered", seen.len());
    // At least once: a page cut by the kill is made again, and only that page.
    let total = receiver.received().len();
    assert!(
        total <= EVENTS + actors::redelivery::PAGE_EVENTS + 8,
        "{total} deliveries for {EVENTS} events"
    );
    let progress = log_records(&d.data_dir, &["redelivery_advanced"], 1);
    assert!(progress.len() >= 3, "paged: {progress:?}");
}
