//! The delivery engine end to end: events in, matching, requests out, retries,
//! attempts, auto-disable and re-enable, per-call order.

use std::time::Duration;

use serde_json::{json, Value};

use crate::receiver::{Received, TestReceiver};
use crate::support::*;

const FAST: &[&str] = &["--allow-private-targets", "--retry-base-ms", "50"];

fn event(account: &str, hook_event: &str, extra: Value) -> Value {
    let mut e = json!({"hook_event": hook_event, "account_id": account, "call_id": "call-1",
                       "call_direction": "inbound", "caller_id_number": "1001"});
    if let (Value::Object(map), Value::Object(more)) = (&mut e, extra) {
        map.extend(more);
    }
    e
}

async fn post_events(master: &Client, data: Value) -> Resp {
    master
        .send("POST", "/v2/events", Some(json!({ "data": data })))
        .await
}

/// What `rx` got before a marker: posts `marker` (an event of the same call as the events
/// under test, going to the same hook) and waits for it. Per-call order puts the marker
/// behind every earlier delivery of that call to that hook, retries included, so what
/// arrived before it is all that hook will get of them.
async fn received_before_marker(
    master: &Client,
    rx: &TestReceiver,
    marker: Value,
) -> Vec<Received> {
    let marker_id = marker["event_id"]
        .as_str()
        .expect("a marker event_id")
        .to_owned();
    post_events(master, marker).await.expect(202);
    let got = eventually(Duration::from_secs(30), || async {
        let got = rx.received();
        got.iter()
            .position(|r| r.header("x-event-id") == Some(marker_id.as_str()))
            .map(|at| got[..at].to_vec())
    })
    .await;
    got.unwrap_or_else(|| panic!("the marker {marker_id} never arrived"))
}

fn event_ids(received: &[Received]) -> Vec<&str> {
    received
        .iter()
        .map(|r| r.header("x-event-id").unwrap_or("(none)"))
        .collect()
}

fn hook(uri: &str, hook_event: &str, extra: Value) -> Value {
    let mut h = json!({"name": format!("{hook_event} hook"), "uri": uri, "hook": hook_event});
    if let (Value::Object(map), Value::Object(more)) = (&mut h, extra) {
        map.extend(more);
    }
    h
}

#[tokio::test]
async fn only_the_master_may_post_events_and_bad_batches_are_refused_whole() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let root = master.own_account().await;
    let child = master.create_account(&root, "c").await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &root,
            hook(&rx.url, "channel_create", json!({"format": "json"})),
        )
        .await;

    d.client()
        .send(
            "POST",
            "/v2/events",
            Some(json!({"data": event(&root, "channel_create", json!({}))})),
        )
        .await
        .expect(401);
    let as_child = master.as_account(&child).await;
    post_events(&as_child, event(&root, "channel_create", json!({})))
        .await
        .expect(403);

    let r = post_events(
        &master,
        json!([
            event(&root, "channel_create", json!({"event_id": "ok-1"})),
            event(&root, "channel_exploded", json!({})),
            {"hook_event": "channel_create", "account_id": "nope"},
            "not an object",
        ]),
    )
    .await
    .expect(400);
    assert!(r.data()["1.hook_event"]["enum"].is_object(), "{}", r.body);
    assert!(
        r.data()["2.account_id"]["wrong_format"].is_object(),
        "{}",
        r.body
    );
    assert!(r.data()["3"]["type"].is_object(), "{}", r.body);
    let r = post_events(&master, json!({"account_id": root}))
        .await
        .expect(400);
    assert!(r.data()["hook_event"]["required"].is_object());
    post_events(&master, json!([])).await.expect(400);
    post_events(&master, json!(5)).await.expect(400);

    // A later good event is the only one delivered: the refused batch left nothing.
    let r = post_events(
        &master,
        event(&root, "channel_create", json!({"event_id": "ok-2"})),
    )
    .await
    .expect(202);
    assert_eq!(r.data(), &json!({"accepted": 1}));
    let got = received_before_marker(
        &master,
        &rx,
        event(&root, "channel_create", json!({"event_id": "marker"})),
    )
    .await;
    assert_eq!(event_ids(&got), ["ok-2"]);
}

#[tokio::test]
async fn json_deliveries_carry_the_payload_custom_data_and_headers() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    let hook_id = master
        .create_webhook(&account, hook(&format!("{}/calls", rx.url), "channel_create",
            json!({"format": "json", "custom_data": {"caller_id_number": "overridden", "tenant": "t1"}})))
        .await;
    let r = post_events(
        &master,
        event(
            &account,
            "channel_create",
            json!({"event_id": "evt-json-1", "custom_channel_vars": {"k": "v"}}),
        ),
    )
    .await
    .expect(202);
    assert_eq!(r.data()["accepted"], 1);
    let got = rx.wait_for(1).await;
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri, "/calls");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-hook-id"), Some(hook_id.as_str()));
    assert_eq!(req.header("x-account-id"), Some(account.as_str()));
    assert_eq!(req.header("x-event-id"), Some("evt-json-1"));
    assert!(req
        .header("user-agent")
        .unwrap()
        .starts_with("piston-webhooks/"));
    let body = req.json();
    assert_eq!(body["hook_event"], "channel_create");
    assert_eq!(body["call_id"], "call-1");
    assert_eq!(body["caller_id_number"], "overridden");
    assert_eq!(body["tenant"], "t1");
    assert_eq!(body["custom_channel_vars"], json!({"k": "v"}));
}

#[tokio::test]
async fn form_data_and_get_requests_are_encoded_as_kazoo_does() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            hook(&format!("{}/form", rx.url), "channel_answer", json!({})),
        )
        .await;
    master
        .create_webhook(
            &account,
            hook(
                &format!("{}/get?token=abc", rx.url),
                "channel_answer",
                json!({"http_verb": "get"}),
            ),
        )
        .await;
    master
        .create_webhook(
            &account,
            hook(
                &format!("{}/put", rx.url),
                "channel_answer",
                json!({"http_verb": "put", "format": "json"}),
            ),
        )
        .await;
    post_events(&master, event(&account, "channel_answer", json!({"caller_id_name": "Jane Doe & Co", "custom_channel_vars": {"a": "b"}, "tags": ["x", "y"]}))).await.expect(202);
    let got = rx.wait_for(3).await;
    let form = got.iter().find(|r| r.uri == "/form").expect("form request");
    assert_eq!(form.method, "POST");
    assert_eq!(
        form.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let text = form.text();
    assert!(text.contains("caller_id_name=Jane+Doe+%26+Co"), "{text}");
    assert!(text.contains("custom_channel_vars[a]=b"), "{text}");
    assert!(text.contains("tags[]=x&tags[]=y"), "{text}");
    assert!(text.contains("hook_event=channel_answer"), "{text}");
    let get = got
        .iter()
        .find(|r| r.uri.starts_with("/get"))
        .expect("get request");
    assert_eq!(get.method, "GET");
    assert!(get.body.is_empty());
    assert!(get.query().starts_with("token=abc&"), "{}", get.uri);
    assert!(get.query().contains("hook_event=channel_answer"));
    let put = got.iter().find(|r| r.uri == "/put").expect("put request");
    assert_eq!(put.method, "PUT");
    assert_eq!(put.json()["caller_id_name"], "Jane Doe & Co");
}

#[tokio::test]
async fn matching_follows_accounts_modifiers_legs_and_selections() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let root = master.own_account().await;
    let child = master.create_account(&root, "child").await;
    let rx = TestReceiver::start().await;
    let u = |p: &str| format!("{}/{p}", rx.url);
    master
        .create_webhook(
            &root,
            hook(
                &u("parent-sub"),
                "channel_create",
                json!({"include_subaccounts": true}),
            ),
        )
        .await;
    master
        .create_webhook(&root, hook(&u("parent-own"), "channel_create", json!({})))
        .await;
    master
        .create_webhook(&child, hook(&u("child-all"), "all", json!({})))
        .await;
    master.create_webhook(&child, hook(&u("child-mod"), "channel_create", json!({"modifiers": {"call_direction": "inbound", "caller_id_number": ["1001", "1002"]}}))).await;
    master
        .create_webhook(
            &child,
            hook(
                &u("child-mod-miss"),
                "channel_create",
                json!({"modifiers": {"no_such_key": "x"}}),
            ),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(
                &u("child-nolegs"),
                "channel_create",
                json!({"include_internal_legs": false}),
            ),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(&u("child-destroy"), "channel_destroy", json!({})),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(
                &u("obj-device"),
                "object",
                json!({"custom_data": {"type": "device", "action": "all"}}),
            ),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(
                &u("obj-user"),
                "object",
                json!({"custom_data": {"type": "user", "action": "all"}}),
            ),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(
                &u("notif-missed"),
                "notifications",
                json!({"custom_data": {"type": "missed_call"}}),
            ),
        )
        .await;
    let mut disabled = hook(&u("disabled"), "all", json!({}));
    disabled["enabled"] = json!(false);
    master.create_webhook(&child, disabled).await;

    post_events(&master, json!([
        event(&child, "channel_create", json!({"event_id": "e1"})),
        event(&child, "channel_create", json!({"event_id": "e2", "is_internal_leg": true, "caller_id_number": "2000"})),
        {"hook_event": "object", "account_id": child, "event_id": "e3", "type": "device", "action": "doc_created", "id": "d1"},
        {"hook_event": "notifications", "account_id": child, "event_id": "e4", "event_name": "missed_call"},
        {"hook_event": "notifications", "account_id": child, "event_id": "e5", "event_name": "voicemail_new"},
        {"hook_event": "channel_create", "account_id": "0123456789abcdef0123456789abcdef", "event_id": "e6"},
    ])).await.expect(202);
    // Expected: e1 -> parent-sub, child-all, child-mod, child-nolegs; e2 -> parent-sub,
    // child-all; e3 -> child-all, obj-device; e4 -> child-all, notif-missed; e5 -> child-all.
    rx.wait_for(11).await;
    d.wait_until_nothing_is_owed().await;
    assert_eq!(rx.received().len(), 11, "no extra deliveries");
    let mut pairs: Vec<String> = rx
        .received()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.header("x-event-id").unwrap(),
                r.uri.trim_start_matches('/')
            )
        })
        .collect();
    pairs.sort();
    let mut want = vec![
        "e1:parent-sub",
        "e1:child-all",
        "e1:child-mod",
        "e1:child-nolegs",
        "e2:parent-sub",
        "e2:child-all",
        "e3:child-all",
        "e3:obj-device",
        "e4:child-all",
        "e4:notif-missed",
        "e5:child-all",
    ];
    want.sort();
    assert_eq!(pairs, want);
    let parent = rx
        .received()
        .into_iter()
        .find(|r| r.uri == "/parent-sub")
        .unwrap();
    assert_eq!(
        parent.header("x-account-id"),
        Some(root.as_str()),
        "X-Account-ID is the hook owner"
    );
}

#[tokio::test]
async fn retryable_failures_are_retried_with_the_same_event_id_and_listed_as_attempts() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.script(&[500, 503], 200);
    let hook_id = master
        .create_webhook(
            &account,
            hook(&rx.url, "channel_create", json!({"retries": 3})),
        )
        .await;
    post_events(
        &master,
        event(&account, "channel_create", json!({"event_id": "retry-me"})),
    )
    .await
    .expect(202);
    let got = rx.wait_for(3).await;
    assert!(got
        .iter()
        .all(|r| r.header("x-event-id") == Some("retry-me")));
    let attempts = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/{hook_id}/attempts"
            ))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        (items.len() == 3).then_some(items)
    })
    .await
    .expect("three attempts listed");
    // Newest first.
    assert_eq!(attempts[0]["result"], "success");
    assert_eq!(attempts[0]["response_code"], 200);
    assert_eq!(attempts[1]["result"], "failure");
    assert_eq!(attempts[1]["response_code"], 503);
    assert_eq!(attempts[1]["reason"], "bad response code");
    assert_eq!(attempts[2]["response_code"], 500);
    assert_eq!(attempts[2]["retries_left"], 3);
    assert_eq!(attempts[1]["retries_left"], 2);
    for a in &attempts {
        assert_eq!(a["hook_id"], hook_id.as_str());
        assert_eq!(a["event_id"], "retry-me");
        assert_eq!(a["hook_event"], "channel_create");
        assert_eq!(a["method"], "post");
        assert!(a["timestamp"].as_u64().unwrap() > 63_000_000_000);
    }
    // The account listing shows them too, and pages.
    let r = master
        .get(&format!(
            "/v2/accounts/{account}/webhooks/attempts?page_size=2"
        ))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    let next = r.body["next_start_key"].as_str().unwrap().to_owned();
    let r = master
        .get(&format!(
            "/v2/accounts/{account}/webhooks/attempts?page_size=2&start_key={next}"
        ))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    assert_eq!(r.data()[0]["response_code"], 500);
}

#[tokio::test]
async fn final_statuses_are_not_retried_and_transport_errors_are_reported() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.script(&[404], 200);
    let hook_id = master
        .create_webhook(
            &account,
            hook(&rx.url, "channel_create", json!({"retries": 4})),
        )
        .await;
    // A closed port: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dead = master
        .create_webhook(
            &account,
            hook(&dead_url, "channel_create", json!({"retries": 1})),
        )
        .await;
    post_events(
        &master,
        event(&account, "channel_create", json!({"event_id": "final-1"})),
    )
    .await
    .expect(202);
    rx.wait_for(1).await;
    let dead_attempts = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{dead}/attempts"))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        (items.len() == 2).then_some(items)
    })
    .await
    .expect("two tries to the dead hook");
    assert_eq!(dead_attempts[0]["client_error"], "connection refused");
    assert_eq!(dead_attempts[0]["reason"], "http client error");
    assert_eq!(dead_attempts[0]["retries_left"], 0);
    d.wait_until_nothing_is_owed().await;
    assert_eq!(rx.received().len(), 1, "a 404 is final");
    let r = master
        .get(&format!(
            "/v2/accounts/{account}/webhooks/{hook_id}/attempts"
        ))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    assert_eq!(r.data()[0]["response_code"], 404);
}

#[tokio::test]
async fn failing_hooks_are_auto_disabled_notified_and_re_enabled_in_bulk() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "20",
        "--failure-threshold",
        "3",
    ]);
    let master = d.master().await;
    let root = master.own_account().await;
    let child = master.create_account(&root, "child").await;
    let bad = TestReceiver::start().await;
    bad.script(&[], 500);
    let watcher = TestReceiver::start().await;
    let hook_id = master
        .create_webhook(
            &child,
            hook(&bad.url, "channel_create", json!({"retries": 4})),
        )
        .await;
    master
        .create_webhook(
            &child,
            hook(
                &watcher.url,
                "notifications",
                json!({"format": "json", "custom_data": {"type": "webhook_disabled"}}),
            ),
        )
        .await;
    post_events(
        &master,
        event(&child, "channel_create", json!({"event_id": "doomed"})),
    )
    .await
    .expect(202);

    let note = watcher.wait_for(1).await;
    let body = note[0].json();
    assert_eq!(body["event_name"], "webhook_disabled");
    assert_eq!(body["hook_id"], hook_id.as_str());
    assert_eq!(body["hook_event"], "notifications");
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook_id}"))
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(r.data()["disable_reason"], "too many failed attempts");
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks"))
        .await
        .expect(200);
    let summary = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hook_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(summary["disable_reason"], "too many failed attempts");
    assert_eq!(summary["enabled"], false);
    d.wait_until_nothing_is_owed().await;
    assert_eq!(bad.received().len(), 3, "no try after the disable");

    // Disabled hooks get nothing; re-enabled through the descendants route, they do.
    bad.script(&[], 200);
    post_events(
        &master,
        event(&child, "channel_create", json!({"event_id": "while-off"})),
    )
    .await
    .expect(202);
    d.wait_until_nothing_is_owed().await;
    assert_eq!(bad.received().len(), 3);
    master
        .patch(
            &format!("/v2/accounts/{root}/descendants/webhooks"),
            json!({"re-enable": true}),
        )
        .await
        .expect(200);
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook_id}"))
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], true);
    assert!(r.data().get("disable_reason").is_none());
    post_events(
        &master,
        event(&child, "channel_create", json!({"event_id": "back-on"})),
    )
    .await
    .expect(202);
    let got = bad.wait_for(4).await;
    assert_eq!(got[3].header("x-event-id"), Some("back-on"));
    d.wait_until_nothing_is_owed().await;
    assert_eq!(bad.received().len(), 4);
}

#[tokio::test]
async fn a_single_patch_re_enables_and_clears_the_reason() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "20",
        "--failure-threshold",
        "2",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    let bad = TestReceiver::start().await;
    bad.script(&[], 500);
    let hook_id = master
        .create_webhook(&account, hook(&bad.url, "channel_create", json!({})))
        .await;
    post_events(&master, event(&account, "channel_create", json!({})))
        .await
        .expect(202);
    let off = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{hook_id}"))
            .await
            .expect(200);
        (r.data()["enabled"] == false).then_some(r)
    })
    .await
    .expect("auto-disabled");
    assert_eq!(off.data()["disable_reason"], "too many failed attempts");
    let r = master
        .patch(
            &format!("/v2/accounts/{account}/webhooks/{hook_id}"),
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], true);
    assert!(r.data().get("disable_reason").is_none());
}

#[tokio::test]
async fn events_of_one_call_keep_their_order_while_other_calls_go_ahead() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    // The first event of call A is slow, and fails once before it succeeds.
    rx.slow_when_contains("step-1", Duration::from_millis(300));
    rx.fail_once_when_contains("step-1");
    master
        .create_webhook(
            &account,
            hook(&rx.url, "all", json!({"format": "json", "retries": 2})),
        )
        .await;
    post_events(&master, json!([
        {"hook_event": "channel_create", "account_id": account, "call_id": "A", "step": "step-1", "event_id": "A1"},
        {"hook_event": "channel_answer", "account_id": account, "call_id": "A", "step": "step-2", "event_id": "A2"},
        {"hook_event": "channel_destroy", "account_id": account, "call_id": "A", "step": "step-3", "event_id": "A3"},
        {"hook_event": "channel_create", "account_id": account, "call_id": "B", "step": "b", "event_id": "B1"},
    ])).await.expect(202);
    let got = rx.wait_for(5).await;
    let order: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-event-id").unwrap())
        .collect();
    let pos = |id: &str| order.iter().rposition(|x| *x == id).unwrap();
    assert_eq!(
        order.iter().filter(|x| **x == "A1").count(),
        2,
        "A1 failed once: {order:?}"
    );
    assert!(pos("A1") < pos("A2") && pos("A2") < pos("A3"), "{order:?}");
    assert!(
        pos("B1") < pos("A2"),
        "call B did not wait for call A: {order:?}"
    );
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_a_healthy_one() {
    let d = Daemon::start(&["--allow-private-targets", "--request-timeout-ms", "60000"]);
    let master = d.master().await;
    let account = master.own_account().await;
    let slow = TestReceiver::start().await;
    slow.slow_when_contains("call", Duration::from_secs(60));
    let fast = TestReceiver::start().await;
    master
        .create_webhook(
            &account,
            hook(&slow.url, "channel_create", json!({"retries": 0})),
        )
        .await;
    master
        .create_webhook(&account, hook(&fast.url, "channel_create", json!({})))
        .await;
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(event(
            &account,
            "channel_create",
            json!({"call_id": format!("call-{i}")}),
        ));
    }
    post_events(&master, Value::Array(events)).await.expect(202);
    // The slow hook's tries hang (a minute each) ...
    let hanging = eventually(Duration::from_secs(30), || async {
        (slow.arrived() > 0).then_some(())
    })
    .await;
    assert!(hanging.is_some(), "the slow hook was tried");
    // ... and the healthy hook gets everything while not one of them has been answered.
    fast.wait_for(20).await;
    assert!(
        slow.received().is_empty(),
        "the slow receiver answered before the healthy hook was done"
    );
}

/// A dead receiver (nothing listens on its port, so every try is refused at once) does not
/// delay a healthy hook either: the healthy hook delivers everything while the dead one
/// still owes all its deliveries.
#[tokio::test]
async fn a_dead_receiver_does_not_delay_a_healthy_one() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "60000",
        "--failure-threshold",
        "1000",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    // A closed port: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dead = master
        .create_webhook(
            &account,
            hook(&dead_url, "channel_create", json!({"retries": 2})),
        )
        .await;
    let fast = TestReceiver::start().await;
    master
        .create_webhook(&account, hook(&fast.url, "channel_create", json!({})))
        .await;
    let events: Vec<Value> = (0..20)
        .map(|i| {
            event(
                &account,
                "channel_create",
                json!({"call_id": format!("call-{i}")}),
            )
        })
        .collect();
    post_events(&master, Value::Array(events)).await.expect(202);
    fast.wait_for(20).await;
    // The dead hook was tried and refused ...
    let refused = eventually(Duration::from_secs(30), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{dead}/attempts"))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        (!items.is_empty()).then_some(items)
    })
    .await
    .expect("the dead hook was tried");
    for a in &refused {
        assert_eq!(a["client_error"], "connection refused", "{a}");
        assert_eq!(a["retries_left"], 2, "a first try: {a}");
    }
    // ... and once the healthy hook's deliveries are all logged, the dead hook's 20 are
    // what is still owed (their retries wait a minute): the healthy one did not wait.
    let owed = eventually(Duration::from_secs(30), || async {
        (d.health().await["pending_deliveries"] == 20).then_some(())
    })
    .await;
    assert!(
        owed.is_some(),
        "not exactly the dead hook's 20 deliveries owed: {}",
        d.health().await
    );
}

#[tokio::test]
async fn account_changes_fire_object_events_to_subaccount_hooks() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let root = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(
            &root,
            hook(
                &rx.url,
                "object",
                json!({"format": "json", "include_subaccounts": true,
        "custom_data": {"type": "account", "action": "all"}}),
            ),
        )
        .await;
    let child = master.create_account(&root, "watched").await;
    master
        .patch(&format!("/v2/accounts/{child}"), json!({"name": "renamed"}))
        .await
        .expect(200);
    master
        .delete(&format!("/v2/accounts/{child}"))
        .await
        .expect(200);
    let got = rx.wait_for(3).await;
    let actions: Vec<String> = got
        .iter()
        .map(|r| r.json()["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["doc_created", "doc_edited", "doc_deleted"]);
    for r in &got {
        let b = r.json();
        assert_eq!(b["type"], "account");
        assert_eq!(b["id"], child.as_str());
        assert_eq!(b["hook_event"], "object");
    }
}

#[tokio::test]
async fn duplicate_event_ids_are_acknowledged_but_delivered_once() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    master
        .create_webhook(&account, hook(&rx.url, "channel_create", json!({})))
        .await;
    let e = event(&account, "channel_create", json!({"event_id": "same"}));
    let r = post_events(&master, json!([e.clone(), e.clone()]))
        .await
        .expect(202);
    assert_eq!(r.data()["accepted"], 2);
    post_events(&master, e).await.expect(202);
    let got = received_before_marker(
        &master,
        &rx,
        event(&account, "channel_create", json!({"event_id": "marker"})),
    )
    .await;
    assert_eq!(event_ids(&got), ["same"]);
}

#[tokio::test]
async fn attempts_are_scoped_to_the_account() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let root = master.own_account().await;
    let a = master.create_account(&root, "a").await;
    let b = master.create_account(&root, "b").await;
    let rx = TestReceiver::start().await;
    let hook_a = master
        .create_webhook(&a, hook(&rx.url, "channel_create", json!({})))
        .await;
    post_events(&master, event(&a, "channel_create", json!({})))
        .await
        .expect(202);
    eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{a}/webhooks/attempts"))
            .await
            .expect(200);
        (r.data().as_array().unwrap().len() == 1).then_some(())
    })
    .await
    .expect("attempt listed");
    let r = master
        .get(&format!("/v2/accounts/{b}/webhooks/attempts"))
        .await
        .expect(200);
    assert_eq!(r.data(), &json!([]));
    master
        .get(&format!("/v2/accounts/{b}/webhooks/{hook_a}/attempts"))
        .await
        .expect(404);
    let as_b = master.as_account(&b).await;
    as_b.get(&format!("/v2/accounts/{a}/webhooks/attempts"))
        .await
        .expect(403);
}

#[tokio::test]
async fn pending_retries_resume_after_a_restart() {
    let d = Daemon::start(&["--allow-private-targets", "--retry-base-ms", "1500"]);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.script(&[500], 200);
    master
        .create_webhook(
            &account,
            hook(&rx.url, "channel_create", json!({"retries": 2})),
        )
        .await;
    let token = master.token.clone();
    post_events(
        &master,
        event(&account, "channel_create", json!({"event_id": "survivor"})),
    )
    .await
    .expect(202);
    rx.wait_for(1).await;
    // Restart once the failed try is logged, before its retry is due.
    let logged = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/attempts"))
            .await
            .expect(200);
        (r.data().as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(logged.is_some(), "the failed try was logged");
    let d = d.restart(&["--allow-private-targets", "--retry-base-ms", "1500"]);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].header("x-event-id"), Some("survivor"));
    let mut master = d.client();
    master.token = token;
    let attempts = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/attempts"))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        (items.len() == 2).then_some(items)
    })
    .await
    .expect("the failed try and the retry after the restart are both listed");
    assert_eq!(attempts[0]["result"], "success");
    assert_eq!(attempts[1]["result"], "failure");
}

#[tokio::test]
async fn the_users_document_scenario_delivers_exactly_the_matching_events() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    // The create example of the user's document, with its modifiers.
    master
        .put(
            &format!("/v2/accounts/{account}/webhooks"),
            json!({"name": "New inbound call leg for caller id number 1001",
                   "uri": format!("{}/calls/new.php", rx.url), "http_verb": "post",
                   "hook": "channel_create",
                   "modifiers": {"call_direction": "inbound", "caller_id_number": "1001"}}),
        )
        .await
        .expect(201);
    let events = json!([
        {"hook_event": "channel_create", "account_id": account, "event_id": "match", "call_id": "c1", "call_direction": "inbound", "caller_id_number": "1001"},
        {"hook_event": "channel_create", "account_id": account, "event_id": "outbound", "call_id": "c2", "call_direction": "outbound", "caller_id_number": "1001"},
        {"hook_event": "channel_create", "account_id": account, "event_id": "other-number", "call_id": "c3", "call_direction": "inbound", "caller_id_number": "1002"},
        {"hook_event": "channel_create", "account_id": account, "event_id": "no-direction", "call_id": "c4", "caller_id_number": "1001"},
        {"hook_event": "channel_answer", "account_id": account, "event_id": "wrong-hook", "call_id": "c1", "call_direction": "inbound", "caller_id_number": "1001"},
        {"hook_event": "channel_create", "account_id": account, "event_id": "match-2", "call_id": "c5", "call_direction": "inbound", "caller_id_number": "1001"},
    ]);
    post_events(&master, events).await.expect(202);
    rx.wait_for(2).await;
    // Every wrongly matched delivery would have been made by now.
    d.wait_until_nothing_is_owed().await;
    assert_eq!(
        rx.received().len(),
        2,
        "unexpected deliveries: {:?}",
        event_ids(&rx.received())
    );
    let mut ids: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.header("x-event-id").unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["match", "match-2"]);
    let req = rx
        .received()
        .into_iter()
        .find(|r| r.header("x-event-id") == Some("match"))
        .unwrap();
    assert_eq!(req.uri, "/calls/new.php");
    assert_eq!(
        req.text(),
        "account_id=".to_owned() + &account + "&call_direction=inbound&call_id=c1&caller_id_number=1001&event_id=match&hook_event=channel_create"
    );
}

#[tokio::test]
async fn each_verb_and_format_sends_the_exact_body() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    for (path, verb, format) in [
        ("post-form", "post", "form-data"),
        ("post-json", "post", "json"),
        ("put-form", "put", "form-data"),
        ("put-json", "put", "json"),
        ("get", "get", "json"),
    ] {
        master
            .create_webhook(
                &account,
                hook(
                    &format!("{}/{path}", rx.url),
                    "channel_destroy",
                    json!({"http_verb": verb, "format": format}),
                ),
            )
            .await;
    }
    let e = json!({"hook_event": "channel_destroy", "account_id": account, "event_id": "exact",
                   "call_id": "c 1", "hangup_cause": "NORMAL_CLEARING", "duration_seconds": 42,
                   "is_internal_leg": false, "ccv": {"owner": "o/1"}});
    post_events(&master, e).await.expect(202);
    let got = rx.wait_for(5).await;
    let by = |p: &str| {
        got.iter()
            .find(|r| r.uri.trim_start_matches('/').starts_with(p))
            .unwrap()
            .clone()
    };
    let form = format!(
        "account_id={account}&call_id=c+1&ccv[owner]=o%2F1&duration_seconds=42&event_id=exact&hangup_cause=NORMAL_CLEARING&hook_event=channel_destroy&is_internal_leg=false"
    );
    let json_body = json!({"account_id": account, "call_id": "c 1", "ccv": {"owner": "o/1"}, "duration_seconds": 42,
                           "event_id": "exact", "hangup_cause": "NORMAL_CLEARING", "hook_event": "channel_destroy",
                           "is_internal_leg": false});
    for (p, method) in [("post-form", "POST"), ("put-form", "PUT")] {
        let r = by(p);
        assert_eq!(r.method, method);
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.text(), form, "{p}");
    }
    for (p, method) in [("post-json", "POST"), ("put-json", "PUT")] {
        let r = by(p);
        assert_eq!(r.method, method);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), json_body, "{p}");
    }
    let g = by("get");
    assert_eq!(g.method, "GET");
    assert!(g.body.is_empty() && g.header("content-type").is_none());
    assert_eq!(g.query(), form);
}

#[tokio::test]
async fn a_receiver_that_answers_too_late_is_a_timeout_and_is_retried() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "20",
        "--request-timeout-ms",
        "300",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    let rx = TestReceiver::start().await;
    rx.slow_when_contains("slow", Duration::from_millis(1500));
    let hook_id = master
        .create_webhook(
            &account,
            hook(&rx.url, "channel_create", json!({"retries": 1})),
        )
        .await;
    post_events(
        &master,
        event(
            &account,
            "channel_create",
            json!({"event_id": "slow-one", "note": "slow"}),
        ),
    )
    .await
    .expect(202);
    let attempts = eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/{hook_id}/attempts"
            ))
            .await
            .expect(200);
        let items = r.data().as_array().unwrap().clone();
        (items.len() == 2).then_some(items)
    })
    .await
    .expect("a try and its retry");
    for a in &attempts {
        assert_eq!(a["client_error"], "timeout", "{a}");
        assert_eq!(a["result"], "failure");
        assert!(a.get("response_code").is_none());
    }
    assert_eq!(attempts[0]["retries_left"], 0);
    assert_eq!(attempts[1]["retries_left"], 1);
}

#[tokio::test]
async fn the_account_bulk_re_enable_brings_back_only_auto_disabled_hooks() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "20",
        "--failure-threshold",
        "2",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    let bad = TestReceiver::start().await;
    bad.script(&[], 500);
    let auto = master
        .create_webhook(&account, hook(&bad.url, "channel_create", json!({})))
        .await;
    let mut off = hook(&bad.url, "channel_create", json!({}));
    off["enabled"] = json!(false);
    let by_hand = master.create_webhook(&account, off).await;
    post_events(&master, event(&account, "channel_create", json!({})))
        .await
        .expect(202);
    eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{auto}"))
            .await
            .expect(200);
        (r.data()["disable_reason"] == "too many failed attempts").then_some(())
    })
    .await
    .expect("auto-disabled");
    let r = master
        .patch(
            &format!("/v2/accounts/{account}/webhooks"),
            json!({"re-enable": true}),
        )
        .await
        .expect(200);
    assert_eq!(r.data(), &json!("hooks updated"));
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{auto}"))
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], true);
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{by_hand}"))
        .await
        .expect(200);
    assert_eq!(
        r.data()["enabled"],
        false,
        "a hook disabled by hand stays off"
    );
    // Delivery restarts for the re-enabled hook.
    post_events(
        &master,
        event(&account, "channel_create", json!({"event_id": "after"})),
    )
    .await
    .expect(202);
    eventually(Duration::from_secs(10), || async {
        let r = master
            .get(&format!("/v2/accounts/{account}/webhooks/{auto}/attempts"))
            .await
            .expect(200);
        (r.data()
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["event_id"] == "after"))
        .then_some(())
    })
    .await
    .expect("the re-enabled hook was tried again");
}

/// A hook whose receiver keeps failing pauses after 3 failed tries in a row (the
/// breaker) instead of trying every pending delivery at once; a healthy hook of the same
/// account is not held back.
#[tokio::test]
async fn a_failing_hook_pauses_after_three_failures_in_a_row() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "60000",
        "--max-in-flight-per-hook",
        "2",
    ]);
    let master = d.master().await;
    let account = master.own_account().await;
    let bad = TestReceiver::start().await;
    bad.script(&[], 500);
    let good = TestReceiver::start().await;
    for rx in [&bad, &good] {
        master
            .create_webhook(&account, hook(&rx.url, "channel_create", json!({})))
            .await;
    }
    let events: Vec<Value> = (0..20)
        .map(|i| {
            event(
                &account,
                "channel_create",
                json!({"call_id": format!("call-{i}")}),
            )
        })
        .collect();
    post_events(&master, Value::Array(events)).await.expect(202);
    good.wait_for(20).await;
    bad.wait_for(3).await;
    // Settled first: every try that reached the bad receiver has its attempt logged, so
    // none is in flight and the breaker has seen 3 failures or more.
    let logged = eventually(Duration::from_secs(30), || async {
        let r = master
            .get(&format!(
                "/v2/accounts/{account}/webhooks/attempts?paginate=false"
            ))
            .await
            .expect(200);
        let failures = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["result"] == "failure")
            .count();
        (failures >= 3 && failures == bad.arrived()).then_some(failures)
    })
    .await;
    assert!(logged.is_some(), "the bad hook's tries were logged");
    // Two tries in flight when the third failure came back: at most 3 + 2 - 1 = 4
    // reach the receiver, then nothing for the 60 s pause (a quiet window of 1 s).
    let more = eventually(Duration::from_secs(1), || async {
        (bad.arrived() > 4).then_some(bad.arrived())
    })
    .await;
    assert_eq!(more, None, "a paused hook kept trying");
    assert!(bad.arrived() >= 3);
}

#[tokio::test]
async fn hold_and_unhold_are_delivered_to_their_hooks_in_call_order() {
    let d = Daemon::start(FAST);
    let master = d.master().await;
    let account = master.own_account().await;
    let all_rx = TestReceiver::start().await;
    let hold_rx = TestReceiver::start().await;
    let unhold_rx = TestReceiver::start().await;
    // The hold is slow and fails once: the unhold of the same call waits for it.
    all_rx.slow_when_contains("held", Duration::from_millis(300));
    all_rx.fail_once_when_contains("held");
    master
        .create_webhook(
            &account,
            hook(&all_rx.url, "all", json!({"format": "json", "retries": 2})),
        )
        .await;
    master
        .create_webhook(
            &account,
            hook(&hold_rx.url, "channel_hold", json!({"format": "json"})),
        )
        .await;
    master
        .create_webhook(
            &account,
            hook(&unhold_rx.url, "channel_unhold", json!({"format": "json"})),
        )
        .await;
    post_events(
        &master,
        json!([
            event(
                &account,
                "channel_answer",
                json!({"call_id": "H", "event_id": "H1"})
            ),
            event(
                &account,
                "channel_hold",
                json!({"call_id": "H", "event_id": "H2", "note": "held"})
            ),
            event(
                &account,
                "channel_unhold",
                json!({"call_id": "H", "event_id": "H3"})
            ),
            event(
                &account,
                "channel_destroy",
                json!({"call_id": "H", "event_id": "H4"})
            ),
        ]),
    )
    .await
    .expect(202);
    let got = all_rx.wait_for(5).await;
    let order = event_ids(&got);
    let pos = |id: &str| order.iter().rposition(|x| *x == id).unwrap();
    assert_eq!(order.iter().filter(|x| **x == "H2").count(), 2, "{order:?}");
    assert!(
        pos("H1") < pos("H2") && pos("H2") < pos("H3") && pos("H3") < pos("H4"),
        "{order:?}"
    );
    let hold = hold_rx.wait_for(1).await;
    let unhold = unhold_rx.wait_for(1).await;
    d.wait_until_nothing_is_owed().await;
    assert_eq!(event_ids(&hold_rx.received()), ["H2"]);
    assert_eq!(event_ids(&unhold_rx.received()), ["H3"]);
    assert_eq!(hold[0].json()["hook_event"], "channel_hold");
    assert_eq!(hold[0].json()["call_id"], "H");
    assert_eq!(unhold[0].json()["hook_event"], "channel_unhold");
}
