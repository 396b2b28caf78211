//! One tenant against another (INTERFACE.md section 8): ids that are never reused, the
//! limits and their error shapes, memory that a tenant cannot grow without bound.

use std::time::Duration;

use serde_json::{json, Value};

use crate::receiver::TestReceiver;
use crate::support::*;

fn delivered_hook(uri: &str, id: &str) -> Value {
    json!({"id": id, "name": "a's hook", "uri": format!("{uri}/a?token=secret-of-a"),
           "hook": "channel_create", "format": "json"})
}

#[tokio::test]
async fn a_deleted_webhook_id_is_never_reused_and_the_conflict_names_no_owner() {
    let d = Daemon::start(&["--allow-private-targets"]);
    let master = d.master().await;
    let root = master.own_account().await;
    let a = master.create_account(&root, "tenant a").await;
    let b = master.create_account(&root, "tenant b").await;
    let (as_a, as_b) = (master.as_account(&a).await, master.as_account(&b).await);
    let rx = TestReceiver::start().await;

    // A's hook gets an event, so it has an attempt naming A's URI and token.
    let id = "0123456789abcdef0123456789abcdef";
    as_a.create_webhook(&a, delivered_hook(&rx.url, id)).await;
    master
        .send(
            "POST",
            "/v2/events",
            Some(
                json!({"data": {"hook_event": "channel_create", "account_id": a, "call_id": "c1"}}),
            ),
        )
        .await
        .expect(202);
    rx.wait_for(1).await;
    let listed = eventually(Duration::from_secs(10), || async {
        let r = as_a
            .get(&format!("/v2/accounts/{a}/webhooks/{id}/attempts"))
            .await
            .expect(200);
        (r.data().as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
    assert!(listed.is_some(), "A's attempt is listed");

    // While A's hook lives, and after A deletes it, B cannot take its id; the answer is
    // the same as for an id B itself holds, so it tells B nothing about A.
    let taken_by_a = as_b
        .put(
            &format!("/v2/accounts/{b}/webhooks"),
            delivered_hook(&rx.url, id),
        )
        .await
        .expect(409);
    as_a.delete(&format!("/v2/accounts/{a}/webhooks/{id}"))
        .await
        .expect(200);
    let deleted_by_a = as_b
        .put(
            &format!("/v2/accounts/{b}/webhooks"),
            delivered_hook(&rx.url, id),
        )
        .await
        .expect(409);
    let own = "fedcba9876543210fedcba9876543210";
    as_b.create_webhook(&b, delivered_hook(&rx.url, own)).await;
    let taken_by_b = as_b
        .put(
            &format!("/v2/accounts/{b}/webhooks"),
            delivered_hook(&rx.url, own),
        )
        .await
        .expect(409);
    let shape = |r: &Resp| (r.body["message"].clone(), r.data()["message"].clone());
    assert_eq!(shape(&taken_by_a), shape(&deleted_by_a));
    assert_eq!(shape(&taken_by_a), shape(&taken_by_b));
    for r in [&taken_by_a, &deleted_by_a] {
        let text = r.body.to_string();
        assert!(!text.contains(&a), "no trace of the owner: {text}");
        assert!(!text.contains("secret-of-a"), "{text}");
    }

    // A's own id cannot be taken back either, not even by A, and B sees no attempt of A.
    as_a.put(
        &format!("/v2/accounts/{a}/webhooks"),
        delivered_hook(&rx.url, id),
    )
    .await
    .expect(409);
    as_b.get(&format!("/v2/accounts/{b}/webhooks/{id}/attempts"))
        .await
        .expect(404);

    // A restart keeps the id taken (the log holds it, not memory).
    let d = d.restart(&["--allow-private-targets"]);
    let as_b = d.master().await.as_account(&b).await;
    as_b.put(
        &format!("/v2/accounts/{b}/webhooks"),
        delivered_hook(&rx.url, id),
    )
    .await
    .expect(409);
}

/// Creates a chain of accounts below `top`, as deep as the daemon allows and at most
/// `tries` levels; returns the accounts created and the refusal that ended it.
async fn chain(master: &Client, top: &str, tries: usize) -> (Vec<String>, Option<Resp>) {
    let mut created = Vec::new();
    let mut parent = top.to_owned();
    for level in 0..tries {
        let r = master
            .put(
                &format!("/v2/accounts/{parent}"),
                json!({"name": format!("level {level}")}),
            )
            .await;
        if r.status != 201 {
            return (created, Some(r));
        }
        parent = r.data()["id"].as_str().expect("id").to_owned();
        created.push(parent.clone());
    }
    (created, None)
}

#[tokio::test]
async fn a_two_thousand_deep_chain_stops_at_the_depth_limit() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let (created, refused) = chain(&master, &root, 2000).await;
    assert_eq!(created.len(), 16, "the default --max-account-depth is 16");
    let refused = refused.expect("a refusal ended the chain");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["message"], "limit reached");
    let message = refused.data()["message"].as_str().unwrap_or("");
    assert!(
        message.contains("--max-account-depth") && message.contains("16"),
        "the refusal names the limit and its value: {message}"
    );
    // Nothing was stored for the refused level.
    let deepest = created.last().expect("levels");
    let children = master
        .get(&format!("/v2/accounts/{deepest}/children"))
        .await
        .expect(200);
    assert_eq!(children.data(), &json!([]));
}

#[tokio::test]
async fn children_webhooks_and_documents_are_bounded_with_clear_errors() {
    let d = Daemon::start(&[
        "--max-children",
        "3",
        "--max-webhooks-per-account",
        "2",
        "--max-document-bytes",
        "2000",
    ]);
    let master = d.master().await;
    let root = master.own_account().await;
    let parent = master.create_account(&root, "parent").await;
    master.create_account(&parent, "one").await;
    master.create_account(&parent, "two").await;
    master.create_account(&parent, "three").await;
    let r = master
        .put(&format!("/v2/accounts/{parent}"), json!({"name": "four"}))
        .await
        .expect(400);
    assert!(
        r.data()["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-children") && m.contains('3')),
        "{}",
        r.body
    );

    let account = master.create_account(&root, "hooks").await;
    let first = master.create_webhook(&account, hook_doc("one")).await;
    master.create_webhook(&account, hook_doc("two")).await;
    let r = master
        .put(
            &format!("/v2/accounts/{account}/webhooks"),
            hook_doc("three"),
        )
        .await
        .expect(400);
    assert!(
        r.data()["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-webhooks-per-account")),
        "{}",
        r.body
    );
    // Deleting one frees its place.
    master
        .delete(&format!("/v2/accounts/{account}/webhooks/{first}"))
        .await
        .expect(200);
    master.create_webhook(&account, hook_doc("three")).await;

    // A document over the limit is refused whole (413) on create, replace and merge.
    let mut big = hook_doc("big");
    big["custom_data"] = json!({"blob": "x".repeat(3000)});
    let other = master.create_account(&root, "docs").await;
    let r = master
        .put(&format!("/v2/accounts/{other}/webhooks"), big.clone())
        .await
        .expect(413);
    assert!(
        r.body.to_string().contains("--max-document-bytes"),
        "{}",
        r.body
    );
    let hook = master.create_webhook(&other, hook_doc("small")).await;
    master
        .post(&format!("/v2/accounts/{other}/webhooks/{hook}"), big)
        .await
        .expect(413);
    master
        .patch(
            &format!("/v2/accounts/{other}/webhooks/{hook}"),
            json!({"custom_data": {"blob": "y".repeat(3000)}}),
        )
        .await
        .expect(413);
    master
        .patch(
            &format!("/v2/accounts/{other}"),
            json!({"notes": "z".repeat(3000)}),
        )
        .await
        .expect(413);
    let stored = master
        .get(&format!("/v2/accounts/{other}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(stored.data()["name"], "small");
    assert!(stored
        .data()
        .get("custom_data")
        .is_none_or(|c| c.get("blob").is_none()));
}

/// The resident set of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn a_deep_account_chain_costs_little_memory_and_replays_flat() {
    // Above the default depth, to show what a deep tree costs: storing each account's
    // whole ancestor list made this O(depth^2) (a 4,000-deep chain took 709 MiB).
    let depth = 2000;
    let flags = ["--max-account-depth", "2000"];
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let root = master.own_account().await;
    let (created, refused) = chain(&master, &root, depth).await;
    assert!(refused.is_none(), "{:?}", refused.map(|r| r.body));
    assert_eq!(created.len(), depth);
    let deepest = created.last().expect("levels").clone();
    let before = rss_kib(d.pid());

    let d = d.restart(&flags);
    let master = d.master().await;
    master
        .get(&format!("/v2/accounts/{deepest}"))
        .await
        .expect(200);
    let after = rss_kib(d.pid());
    // Generous bounds: what matters is that it is far from O(depth^2) (~180 MiB here).
    assert!(
        before < 96 * 1024,
        "RSS after creating the chain: {before} KiB"
    );
    assert!(after < 96 * 1024, "RSS after replaying it: {after} KiB");
}

fn post_event(account: &str, call: &str, extra: Value) -> Value {
    let mut e = json!({"hook_event": "channel_create", "account_id": account, "call_id": call});
    if let (Value::Object(map), Value::Object(more)) = (&mut e, extra) {
        map.extend(more);
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_cannot_starve_another_of_the_global_capacity() {
    // Four tries at once in all; tenant A's receivers answer after 3 s.
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--max-in-flight",
        "4",
        "--request-timeout-ms",
        "20000",
    ]);
    let master = d.master().await;
    let root = master.own_account().await;
    let a = master.create_account(&root, "slow tenant").await;
    let b = master.create_account(&root, "other tenant").await;
    let rx = TestReceiver::start().await;
    rx.slow_when_contains("slow-tenant", Duration::from_secs(2));
    for i in 0..10 {
        let mut doc = json!({"name": format!("a{i}"), "uri": format!("{}/a{i}", rx.url),
                             "hook": "channel_create", "format": "json"});
        doc["custom_data"] = json!({"marker": "slow-tenant"});
        master.create_webhook(&a, doc).await;
    }
    master
        .create_webhook(
            &b,
            json!({"name": "b", "uri": format!("{}/b", rx.url), "hook": "channel_create", "format": "json"}),
        )
        .await;
    // 30 deliveries for A (3 events x 10 hooks), all at once, then one for B.
    let a_events: Vec<Value> = (0..3)
        .map(|i| post_event(&a, &format!("a-call-{i}"), json!({})))
        .collect();
    master
        .send("POST", "/v2/events", Some(json!({ "data": a_events })))
        .await
        .expect(202);
    // B's event comes once A's tries hold every permit and the rest of A's wait.
    let busy = eventually(Duration::from_secs(20), || async {
        (rx.arrived() >= 4).then_some(())
    })
    .await;
    assert!(busy.is_some(), "A's first tries arrived");
    master
        .send(
            "POST",
            "/v2/events",
            Some(json!({"data": post_event(&b, "b-call", json!({}))})),
        )
        .await
        .expect(202);
    let received = eventually(Duration::from_secs(60), || async {
        let r = rx.received();
        r.iter().any(|x| x.uri.starts_with("/b")).then_some(r)
    })
    .await
    .expect("B's delivery arrived");
    let b_position = received
        .iter()
        .position(|r| r.uri.starts_with("/b"))
        .expect("B's delivery");
    // First come, first served, B's one try would wait behind A's 26 queued ones (about
    // 13 s); shared fairly, it takes one of the first permits that come free.
    assert!(
        b_position < 10,
        "B's delivery finished after {b_position} of A's: it waited behind A's backlog"
    );
}

#[tokio::test]
async fn a_delivery_that_would_encode_too_large_is_a_final_failure_naming_the_limit() {
    let d = Daemon::start(&[
        "--allow-private-targets",
        "--max-delivery-bytes",
        "10000",
        "--failure-threshold",
        "1",
    ]);
    let master = d.master().await;
    let root = master.own_account().await;
    let rx = TestReceiver::start().await;
    let hook = master
        .create_webhook(
            &root,
            json!({"name": "form", "uri": rx.url, "hook": "channel_create", "format": "form-data"}),
        )
        .await;
    // One 2,000-character key over a 2,000-member list: a 20 KB event whose form
    // encoding repeats the key per member (about 4 MB).
    let long_key = "k".repeat(2000);
    let members: Vec<u32> = (0..2000).collect();
    let mut big = post_event(&root, "big-call", json!({}));
    big[&long_key] = json!(members);
    master
        .send("POST", "/v2/events", Some(json!({ "data": big })))
        .await
        .expect(202);
    let attempt = eventually(Duration::from_secs(20), || async {
        let r = master
            .get(&format!("/v2/accounts/{root}/webhooks/{hook}/attempts"))
            .await
            .expect(200);
        r.data().as_array().and_then(|a| a.first().cloned())
    })
    .await
    .expect("an attempt is listed");
    assert_eq!(attempt["result"], "failure", "{attempt}");
    assert_eq!(
        attempt["retries_left"], 2,
        "final at the first try: {attempt}"
    );
    let reason = attempt["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("--max-delivery-bytes") && reason.contains("10000"),
        "{attempt}"
    );
    // Nothing was sent, nothing is owed, and it is not the receiver's failure: with a
    // failure threshold of 1 the hook stays enabled, and a small event still goes.
    assert_eq!(d.health().await["pending_deliveries"], 0);
    master
        .send(
            "POST",
            "/v2/events",
            Some(json!({"data": post_event(&root, "small-call", json!({}))})),
        )
        .await
        .expect(202);
    let got = rx.wait_for(1).await;
    assert!(got[0].text().contains("small-call"));
    let stored = master
        .get(&format!("/v2/accounts/{root}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(stored.data()["enabled"], true);
}

/// This machine's host name, if it resolves to a loopback or private address only (the
/// usual /etc/hosts entry), so that a daemon without `--allow-private-targets` refuses it
/// when connecting.
async fn a_name_that_resolves_to_a_private_address() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_owned();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .ok()?
        .collect();
    let private = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback(),
    };
    (!addrs.is_empty() && addrs.iter().all(|a| private(a.ip()))).then_some(name)
}

#[tokio::test]
async fn faults_on_our_side_are_retried_but_never_disable_a_hook() {
    let Some(name) = a_name_that_resolves_to_a_private_address().await else {
        skip_or_fail_without(
            "a host name that resolves to a private address",
            "this machine's host name does not resolve to loopback or a private address",
        );
        return;
    };
    // Private targets refused: every try is refused by the resolver guard, before any
    // connection. Two failures would disable the hook if they counted.
    let d = Daemon::start(&["--failure-threshold", "2", "--retry-base-ms", "50"]);
    let master = d.master().await;
    let root = master.own_account().await;
    let hook = master
        .create_webhook(
            &root,
            json!({"name": "private", "uri": format!("http://{name}:9/"), "hook": "channel_create",
                   "retries": 1}),
        )
        .await;
    let events: Vec<Value> = (0..3)
        .map(|i| post_event(&root, &format!("local-{i}"), json!({})))
        .collect();
    master
        .send("POST", "/v2/events", Some(json!({ "data": events })))
        .await
        .expect(202);
    // Three deliveries, two tries each: six refused tries, all logged.
    let attempts = eventually(Duration::from_secs(30), || async {
        let r = master
            .get(&format!("/v2/accounts/{root}/webhooks/{hook}/attempts"))
            .await
            .expect(200);
        let items = r.data().as_array().cloned().unwrap_or_default();
        (items.len() == 6).then_some(items)
    })
    .await
    .expect("six attempts");
    for a in &attempts {
        assert_eq!(a["result"], "failure", "{a}");
        assert!(
            a["client_error"]
                .as_str()
                .is_some_and(|e| e.contains("private")),
            "{a}"
        );
    }
    let stored = master
        .get(&format!("/v2/accounts/{root}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(stored.data()["enabled"], true, "{}", stored.body);
    assert!(stored.data().get("disable_reason").is_none());
}

#[tokio::test]
async fn the_data_dir_and_the_log_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start(&[]);
    d.master().await;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    // The test's temp dir itself is made by the test; what the daemon creates is private.
    let log_dir = d.data_dir.join("eventlog");
    assert_eq!(mode(&log_dir), 0o700, "{}", log_dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(&log_dir).expect("read the log dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            files += 1;
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is readable by others",
                path.display()
            );
        }
    }
    assert!(files > 0);
    assert_eq!(mode(&d.data_dir.join("master-api-key")), 0o600);
}
