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
