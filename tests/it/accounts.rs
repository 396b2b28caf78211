//! Accounts: the tree, scoping of tokens, listings and deletion rules.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn child_accounts_are_created_read_updated_patched_and_deleted() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"name": "Reseller", "realm": "r.example.com"}),
        )
        .await
        .expect(201);
    let child = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(child.len(), 32);
    assert_eq!(r.data()["parent_id"], root.as_str());
    assert_eq!(r.data()["realm"], "r.example.com");
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/v2/accounts/{child}")
    );

    let r = master
        .get(&format!("/v2/accounts/{child}"))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "Reseller");

    let r = master
        .post(&format!("/v2/accounts/{child}"), json!({"name": "Renamed"}))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "Renamed");
    assert!(
        r.data().get("realm").is_none(),
        "POST replaces the document"
    );

    let r = master
        .patch(
            &format!("/v2/accounts/{child}"),
            json!({"realm": "x.example.com"}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "Renamed");
    assert_eq!(r.data()["realm"], "x.example.com");
    let r = master
        .patch(&format!("/v2/accounts/{child}"), json!({"realm": null}))
        .await
        .expect(200);
    assert!(r.data().get("realm").is_none());

    let r = master
        .put(&format!("/v2/accounts/{root}"), json!({}))
        .await
        .expect(400);
    assert_eq!(
        r.data()["name"]["required"]["message"],
        "Field is required but missing"
    );
    let r = master
        .post(&format!("/v2/accounts/{child}"), json!({"name": 7}))
        .await
        .expect(400);
    assert!(r.data()["name"]["type"].is_object());

    let r = master
        .delete(&format!("/v2/accounts/{child}"))
        .await
        .expect(200);
    assert_eq!(r.data()["_read_only"]["deleted"], true);
    master
        .get(&format!("/v2/accounts/{child}"))
        .await
        .expect(404);
}

#[tokio::test]
async fn children_and_descendants_are_listed_and_paged() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let mut children = Vec::new();
    for i in 0..3 {
        children.push(master.create_account(&root, &format!("child {i}")).await);
    }
    let grandchild = master.create_account(&children[0], "grandchild").await;

    let r = master
        .get(&format!("/v2/accounts/{root}/children"))
        .await
        .expect(200);
    let mut ids: Vec<String> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = children.clone();
    want.sort();
    assert_eq!(ids, want);

    let r = master
        .get(&format!("/v2/accounts/{root}/descendants"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 4);
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/descendants?filter_name=grandchild"
        ))
        .await
        .expect(200);
    assert_eq!(r.data(), &json!([{"id": grandchild, "name": "grandchild"}]));

    let r = master
        .get(&format!("/v2/accounts/{root}/descendants?page_size=3"))
        .await
        .expect(200);
    assert_eq!(r.body["page_size"], 3);
    let next = r.body["next_start_key"].as_str().unwrap().to_owned();
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/descendants?page_size=3&start_key={next}"
        ))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    assert!(r.body.get("next_start_key").is_none());
}

#[tokio::test]
async fn a_token_acts_on_its_subtree_only() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let a = master.create_account(&root, "a").await;
    let a_child = master.create_account(&a, "a child").await;
    let b = master.create_account(&root, "b").await;
    let as_a = master.as_account(&a).await;

    as_a.get(&format!("/v2/accounts/{a}")).await.expect(200);
    as_a.get(&format!("/v2/accounts/{a_child}"))
        .await
        .expect(200);
    as_a.get(&format!("/v2/accounts/{a_child}/webhooks"))
        .await
        .expect(200);
    let r = as_a.get(&format!("/v2/accounts/{b}")).await.expect(403);
    assert_eq!(r.body["message"], "forbidden");
    as_a.get(&format!("/v2/accounts/{root}")).await.expect(403);
    as_a.get(&format!("/v2/accounts/{b}/webhooks"))
        .await
        .expect(403);
    as_a.put(&format!("/v2/accounts/{b}/webhooks"), hook_doc("x"))
        .await
        .expect(403);
    as_a.put(&format!("/v2/accounts/{b}"), json!({"name": "sneaky"}))
        .await
        .expect(403);
    as_a.get(&format!("/v2/accounts/{b}/api_key"))
        .await
        .expect(403);
    // Unknown or malformed account ids are 404.
    as_a.get("/v2/accounts/0123456789abcdef0123456789abcdef")
        .await
        .expect(404);
    as_a.get("/v2/accounts/not-an-id").await.expect(404);

    // A child's own key logs into the child.
    let r = as_a
        .get(&format!("/v2/accounts/{a}/api_key"))
        .await
        .expect(200);
    let key = r.data()["api_key"].as_str().unwrap().to_owned();
    let again = d.client().login(&key).await;
    again.get(&format!("/v2/accounts/{a}")).await.expect(200);
}

#[tokio::test]
async fn deletion_rules_protect_the_tree_and_remove_webhooks() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let parent = master.create_account(&root, "parent").await;
    let child = master.create_account(&parent, "child").await;
    let hook = master.create_webhook(&child, hook_doc("h")).await;

    let r = master
        .delete(&format!("/v2/accounts/{parent}"))
        .await
        .expect(400);
    assert_eq!(r.body["status"], "error");
    master
        .get(&format!("/v2/accounts/{parent}"))
        .await
        .expect(200);
    master
        .delete(&format!("/v2/accounts/{root}"))
        .await
        .expect(403);

    let as_child = master.as_account(&child).await;
    master
        .delete(&format!("/v2/accounts/{child}"))
        .await
        .expect(200);
    master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook}"))
        .await
        .expect(404);
    // The deleted account's tokens die with it.
    as_child
        .get(&format!("/v2/accounts/{child}"))
        .await
        .expect(401);
    master
        .delete(&format!("/v2/accounts/{parent}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn an_account_holds_at_most_its_token_limit_and_loses_its_oldest_first() {
    let d = Daemon::start(&["--max-tokens-per-account", "2"]);
    // (`own_account` logs in too: its tokens are the oldest, revoked below.)
    let root = d.master().await.own_account().await;
    let first = d.master().await;
    let second = d.master().await;
    first.get(&format!("/v2/accounts/{root}")).await.expect(200);
    let third = d.master().await;
    // The third token revoked the first; the two newest work.
    first.get(&format!("/v2/accounts/{root}")).await.expect(401);
    second
        .get(&format!("/v2/accounts/{root}"))
        .await
        .expect(200);
    third.get(&format!("/v2/accounts/{root}")).await.expect(200);
    // And so it stays across a restart (the revocation is in the log).
    let d = d.restart(&["--max-tokens-per-account", "2"]);
    let mut again = d.client();
    again.token = first.token.clone();
    again.get(&format!("/v2/accounts/{root}")).await.expect(401);
    again.token = third.token.clone();
    again.get(&format!("/v2/accounts/{root}")).await.expect(200);
}
