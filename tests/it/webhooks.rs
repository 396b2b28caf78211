//! Webhooks API: catalog, samples, CRUD, validation, scoping, paging, bulk re-enable.

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn available_hooks_list_names_descriptions_and_modifiers() {
    let d = Daemon::start(&[]);
    let r = d.client().get("/v2/webhooks").await.expect(200);
    let items = r.data().as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "parking",
            "object",
            "notifications",
            "channel_unhold",
            "channel_hold",
            "channel_destroy",
            "channel_create",
            "channel_bridge",
            "channel_answer"
        ]
    );
    for item in items {
        assert!(
            item["name"].is_string() && item["description"].is_string(),
            "{item}"
        );
    }
    let object = items.iter().find(|h| h["id"] == "object").unwrap();
    assert!(object["modifiers"]["type"]["items"]
        .as_array()
        .unwrap()
        .contains(&json!("device")));
    assert!(object["modifiers"]["action"]["items"]
        .as_array()
        .unwrap()
        .contains(&json!("doc_created")));
    let notifications = items.iter().find(|h| h["id"] == "notifications").unwrap();
    let types = notifications["modifiers"]["type"]["items"]
        .as_object()
        .unwrap();
    assert!(types.contains_key("missed_call") && types.contains_key("all"));
    assert!(
        !types.contains_key("webhook_disabled"),
        "admin-only types are hidden"
    );
    let r = d
        .client()
        .get("/v2/webhooks?ascending=true&page_size=2")
        .await
        .expect(200);
    assert_eq!(r.data()[0]["id"], "channel_answer");
    assert_eq!(r.body["next_start_key"], "channel_create");
}

#[tokio::test]
async fn samples_list_filter_and_accept_the_documents_aliases() {
    let d = Daemon::start(&[]);
    let c = d.client();
    let r = c.get("/v2/webhooks/samples").await.expect(200);
    assert_eq!(
        r.data(),
        &json!([
            "webhooks_channel_answer",
            "webhooks_channel_bridge",
            "webhooks_channel_create",
            "webhooks_channel_destroy",
            "webhooks_channel_hold",
            "webhooks_channel_unhold",
            "webhooks_notifications",
            "webhooks_object",
            "webhooks_parking"
        ])
    );
    for id in r.data().as_array().unwrap() {
        let s = c
            .get(&format!("/v2/webhooks/samples/{}", id.as_str().unwrap()))
            .await
            .expect(200);
        assert!(!s.data().as_array().unwrap().is_empty(), "{id}");
    }
    let r = c
        .get("/v2/webhooks/samples/webhook_notifications?filter_event_name=missed_call")
        .await
        .expect(200);
    let items = r.data().as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|s| s["event_name"] == "missed_call"));
    let all = c
        .get("/v2/webhooks/samples/webhook_object")
        .await
        .expect(200);
    let created = c
        .get("/v2/webhooks/samples/webhook_object?filter_action=doc_created")
        .await
        .expect(200);
    let created = created.data().as_array().unwrap();
    assert!(!created.is_empty() && created.len() < all.data().as_array().unwrap().len());
    assert!(created.iter().all(|s| s["action"] == "doc_created"));
    let r = c.get("/v2/webhooks/samples/webhooks_sms").await.expect(404);
    assert_eq!(r.body["message"], "bad_identifier");
}

#[tokio::test]
async fn create_get_update_patch_and_delete_a_webhook() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let base = format!("/v2/accounts/{account}/webhooks");

    let r = master
        .put(
            &base,
            json!({"name": "New Calls", "uri": "http://my.example.com/calls/new.php",
                           "http_verb": "post", "hook": "channel_create", "extra": "kept"}),
        )
        .await
        .expect(201);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("{base}/{id}")
    );
    for (k, v) in [
        ("enabled", json!(true)),
        ("format", json!("form-data")),
        ("retries", json!(2)),
        ("include_internal_legs", json!(true)),
        ("http_verb", json!("post")),
        ("extra", json!("kept")),
    ] {
        assert_eq!(r.data()[k], v, "{k}");
    }

    let r = master.get(&format!("{base}/{id}")).await.expect(200);
    assert_eq!(r.data()["name"], "New Calls");
    assert!(r.data().get("disable_reason").is_none());

    let r = master.get(&base).await.expect(200);
    assert_eq!(
        r.data(),
        &json!([{"id": id, "hook": "channel_create", "name": "New Calls",
                 "uri": "http://my.example.com/calls/new.php", "enabled": true}])
    );

    let r = master
        .post(&format!("{base}/{id}"), json!({"name": "New Calls", "uri": "http://my.example.com/calls/new_calls.php",
                                              "http_verb": "post", "hook": "channel_create", "retries": 3}))
        .await
        .expect(200);
    assert_eq!(r.data()["retries"], 3);
    assert_eq!(r.data()["uri"], "http://my.example.com/calls/new_calls.php");
    assert!(r.data().get("extra").is_none(), "POST replaces");

    let r = master
        .patch(
            &format!("{base}/{id}"),
            json!({"enabled": false, "custom_data": {"k": "v"}}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(r.data()["retries"], 3);
    assert_eq!(r.data()["custom_data"], json!({"k": "v"}));
    let r = master
        .patch(&format!("{base}/{id}"), json!({"custom_data": null}))
        .await
        .expect(200);
    assert!(r.data().get("custom_data").is_none());

    // POST without `enabled` keeps the stored value (a deliberate difference from Kazoo).
    let r = master
        .post(
            &format!("{base}/{id}"),
            json!({"name": "n", "uri": "http://example.com/", "hook": "all"}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["enabled"], false);
    let r = master.get(&base).await.expect(200);
    assert_eq!(r.data()[0]["enabled"], false);

    let r = master.delete(&format!("{base}/{id}")).await.expect(200);
    assert_eq!(r.data()["_read_only"]["deleted"], true);
    assert_eq!(r.data()["id"], id.as_str());
    master.get(&format!("{base}/{id}")).await.expect(404);
    master.delete(&format!("{base}/{id}")).await.expect(404);
    master
        .patch(&format!("{base}/{id}"), json!({"name": "x"}))
        .await
        .expect(404);
}

#[tokio::test]
async fn a_client_chosen_id_is_used_once() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let base = format!("/v2/accounts/{account}/webhooks");
    let mut doc = hook_doc("mine");
    doc["id"] = json!("0123456789abcdef0123456789abcdef");
    let r = master.put(&base, doc.clone()).await.expect(201);
    assert_eq!(r.data()["id"], "0123456789abcdef0123456789abcdef");
    master.put(&base, doc).await.expect(409);
    let mut bad = hook_doc("bad");
    bad["id"] = json!("XYZ");
    let r = master.put(&base, bad).await.expect(400);
    assert!(r.data()["id"]["wrong_format"].is_object());
}

async fn validation_of(master: &Client, base: &str, doc: Value) -> Value {
    let r = master.put(base, doc).await.expect(400);
    assert_eq!(r.body["message"], "validation error");
    assert_eq!(r.body["error"], "400");
    r.data().clone()
}

#[tokio::test]
async fn every_validation_rule_answers_in_kazoos_shape() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let base = format!("/v2/accounts/{account}/webhooks");

    let e = validation_of(&master, &base, json!({})).await;
    for f in ["name", "uri", "hook"] {
        assert_eq!(e[f]["required"]["message"], "Field is required but missing");
    }
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "bogus"}),
    )
    .await;
    assert_eq!(
        e["hook"]["enum"]["message"],
        "Value not found in enumerated list of values"
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "http_verb": "patch"}),
    )
    .await;
    assert_eq!(
        e["http_verb"]["enum"]["target"],
        json!(["get", "post", "put"])
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "format": "xml"}),
    )
    .await;
    assert!(e["format"]["enum"].is_object());
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "retries": 9}),
    )
    .await;
    assert_eq!(
        e,
        json!({"retries": {"maximum": {"message": "Value must be at most 4", "target": 4, "value": 9}}})
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "retries": -1}),
    )
    .await;
    assert_eq!(
        e["retries"]["minimum"]["message"],
        "Value must be at least 0"
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "retries": "many"}),
    )
    .await;
    assert!(e["retries"]["type"].is_object());
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "custom_data": {"a": 1}}),
    )
    .await;
    assert_eq!(
        e["custom_data.a"]["type"]["message"],
        "Value did not match type(s): string"
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "enabled": "sometimes"}),
    )
    .await;
    assert!(e["enabled"]["type"].is_object());
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "object"}),
    )
    .await;
    assert_eq!(
        e["custom_data.type"]["required"]["message"],
        "missing required modifier"
    );
    assert_eq!(
        e["custom_data.action"]["required"]["message"],
        "missing required modifier"
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "object",
        "custom_data": {"type": "device", "action": "doc_exploded"}}),
    )
    .await;
    assert_eq!(
        e["custom_data.action"]["enum"]["message"],
        "value not found in enumerated list of values"
    );
    let e = validation_of(
        &master,
        &base,
        json!({"name": "n", "uri": "http://example.com", "hook": "notifications"}),
    )
    .await;
    assert!(e["custom_data.type"]["required"].is_object());
    for uri in [
        "http://localhost/x",
        "http://127.0.0.1:8080/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "ftp://example.com/",
    ] {
        let e = validation_of(
            &master,
            &base,
            json!({"name": "n", "uri": uri, "hook": "all"}),
        )
        .await;
        assert_eq!(e["uri"]["error"]["message"], "invalid client URL", "{uri}");
    }
    // Valid selections pass.
    master
        .put(
            &base,
            json!({"name": "n", "uri": "http://example.com", "hook": "object",
        "custom_data": {"type": "all", "action": "doc_created"}}),
        )
        .await
        .expect(201);
    master
        .put(
            &base,
            json!({"name": "n", "uri": "http://example.com", "hook": "notifications",
        "custom_data": {"type": "missed_call"}}),
        )
        .await
        .expect(201);
    // Every failed create above left nothing behind.
    let r = master.get(&base).await.expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn updates_are_validated_too_and_change_nothing_when_refused() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let base = format!("/v2/accounts/{account}/webhooks");
    let id = master.create_webhook(&account, hook_doc("v")).await;
    master
        .patch(&format!("{base}/{id}"), json!({"retries": 5}))
        .await
        .expect(400);
    master
        .patch(&format!("{base}/{id}"), json!({"uri": "http://localhost/"}))
        .await
        .expect(400);
    master
        .post(&format!("{base}/{id}"), json!({"name": "only"}))
        .await
        .expect(400);
    let r = master.get(&format!("{base}/{id}")).await.expect(200);
    assert_eq!(r.data()["retries"], 2);
    assert_eq!(r.data()["uri"], "http://example.com/hook");
}

#[tokio::test]
async fn private_targets_are_allowed_with_the_flag() {
    let d = Daemon::start(&["--allow-private-targets"]);
    let master = d.master().await;
    let account = master.own_account().await;
    master
        .put(
            &format!("/v2/accounts/{account}/webhooks"),
            json!({"name": "local", "uri": "http://127.0.0.1:9/x", "hook": "all"}),
        )
        .await
        .expect(201);
}

#[tokio::test]
async fn webhook_ids_are_scoped_by_the_urls_account() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let a = master.create_account(&root, "a").await;
    let b = master.create_account(&root, "b").await;
    let hook_a = master.create_webhook(&a, hook_doc("a's")).await;
    // Through b's URL, a's hook does not exist, for reads and writes alike.
    master
        .get(&format!("/v2/accounts/{b}/webhooks/{hook_a}"))
        .await
        .expect(404);
    master
        .post(
            &format!("/v2/accounts/{b}/webhooks/{hook_a}"),
            hook_doc("x"),
        )
        .await
        .expect(404);
    master
        .patch(
            &format!("/v2/accounts/{b}/webhooks/{hook_a}"),
            json!({"name": "x"}),
        )
        .await
        .expect(404);
    master
        .delete(&format!("/v2/accounts/{b}/webhooks/{hook_a}"))
        .await
        .expect(404);
    master
        .get(&format!("/v2/accounts/{a}/webhooks/not-an-id"))
        .await
        .expect(404);
    let as_b = master.as_account(&b).await;
    as_b.get(&format!("/v2/accounts/{a}/webhooks/{hook_a}"))
        .await
        .expect(403);
    let r = master
        .get(&format!("/v2/accounts/{a}/webhooks/{hook_a}"))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "a's");
}

#[tokio::test]
async fn the_webhook_list_pages_by_id_and_filters_on_the_stored_document() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let base = format!("/v2/accounts/{account}/webhooks");
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut doc = hook_doc(&format!("h{i}"));
        if i % 2 == 0 {
            doc["http_verb"] = json!("get");
        }
        ids.push(master.create_webhook(&account, doc).await);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut path = format!("{base}?page_size=3");
    for _ in 0..5 {
        let r = master.get(&path).await.expect(200);
        seen.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_owned()),
        );
        match r.body.get("next_start_key").and_then(Value::as_str) {
            Some(next) => path = format!("{base}?page_size=3&start_key={next}"),
            None => break,
        }
    }
    let mut descending = ids.clone();
    descending.reverse();
    assert_eq!(seen, descending);
    let r = master
        .get(&format!("{base}?ascending=true&page_size=50"))
        .await
        .expect(200);
    let asc: Vec<String> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(asc, ids);
    // `http_verb` is not in the summary, but filters see the stored document.
    let r = master
        .get(&format!("{base}?filter_http_verb=get"))
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn bulk_reenable_validates_its_body_and_leaves_hand_disabled_hooks_alone() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let child = master.create_account(&root, "child").await;
    let mut doc = hook_doc("off by hand");
    doc["enabled"] = json!(false);
    let hook = master.create_webhook(&child, doc).await;
    for path in [
        format!("/v2/accounts/{root}/webhooks"),
        format!("/v2/accounts/{root}/descendants/webhooks"),
    ] {
        let r = master.patch(&path, json!({})).await.expect(400);
        assert_eq!(
            r.data()["re-enable"]["required"]["message"],
            "re-enable is required to patch collections"
        );
        let r = master
            .patch(&path, json!({"re-enable": false}))
            .await
            .expect(400);
        assert_eq!(r.data()["re-enable"]["enum"]["target"], json!([true]));
        let r = master
            .patch(&path, json!({"re-enable": "true"}))
            .await
            .expect(200);
        assert_eq!(r.data(), &json!("hooks updated"));
    }
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(
        r.data()["enabled"],
        false,
        "a hook disabled by hand stays disabled"
    );
}
