//! Crossbar envelope, auth and error shapes on every kind of answer.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn healthz_answers_without_auth() {
    let d = Daemon::start(&[]);
    let r = d.client().get("/healthz").await.expect(200);
    assert_eq!(r.body["status"], "success");
}

#[tokio::test]
async fn success_and_error_envelopes_carry_every_field() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let token = master.token.clone().unwrap();
    let r = master.get("/v2/webhooks").await.expect(200);
    for key in [
        "data",
        "status",
        "request_id",
        "revision",
        "timestamp",
        "node",
        "version",
    ] {
        assert!(r.body.get(key).is_some(), "{key} missing in {}", r.body);
    }
    assert_eq!(r.body["auth_token"], token.as_str());
    assert_eq!(r.body["request_id"].as_str().unwrap().len(), 32);

    let r = master
        .get("/v2/accounts/ffffffffffffffffffffffffffffffff")
        .await
        .expect(404);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["error"], "404");
    assert_eq!(r.body["message"], "bad_identifier");
    assert_eq!(r.body["data"]["cause"], "ffffffffffffffffffffffffffffffff");
    assert_eq!(r.body["auth_token"], token.as_str());
}

#[tokio::test]
async fn api_auth_gives_a_token_and_refuses_wrong_keys() {
    let d = Daemon::start(&[]);
    let r = d
        .client()
        .put("/v2/api_auth", json!({"api_key": MASTER_KEY}))
        .await
        .expect(201);
    assert_eq!(r.body["auth_token"].as_str().unwrap().len(), 64);
    assert_eq!(r.data()["account_name"], "Master Account");
    assert_eq!(r.data()["account_id"].as_str().unwrap().len(), 32);
    let r = d
        .client()
        .put("/v2/api_auth", json!({"api_key": "wrong"}))
        .await
        .expect(401);
    assert_eq!(r.body["error"], "401");
    let r = d.client().put("/v2/api_auth", json!({})).await.expect(400);
    assert_eq!(
        r.data()["api_key"]["required"]["message"],
        "Field is required but missing"
    );
}

#[tokio::test]
async fn protected_routes_need_a_valid_token() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let anonymous = d.client();
    let mut bogus = d.client();
    bogus.token = Some("not-a-token".into());
    for path in [
        format!("/v2/accounts/{account}"),
        format!("/v2/accounts/{account}/webhooks"),
        format!("/v2/accounts/{account}/children"),
        format!("/v2/accounts/{account}/api_key"),
    ] {
        anonymous.get(&path).await.expect(401);
        let r = bogus.get(&path).await.expect(401);
        assert_eq!(r.body["message"], "invalid_credentials");
    }
    // The catalog routes need none.
    anonymous.get("/v2/webhooks").await.expect(200);
    anonymous.get("/v2/webhooks/samples").await.expect(200);
    anonymous
        .get("/v2/webhooks/samples/webhooks_parking")
        .await
        .expect(200);
}

#[tokio::test]
async fn tokens_expire() {
    let d = Daemon::start(&["--token-ttl-secs", "1"]);
    let master = d.master().await;
    let account = master.own_account().await;
    master
        .get(&format!("/v2/accounts/{account}"))
        .await
        .expect(200);
    let expired = eventually(std::time::Duration::from_secs(5), || async {
        (master.get(&format!("/v2/accounts/{account}")).await.status == 401).then_some(())
    })
    .await;
    assert!(
        expired.is_some(),
        "token still valid after its one-second lifetime"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_envelope() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let r = master.get("/v2/nothing/here").await.expect(404);
    assert_eq!(r.body["status"], "error");
    let r = master.delete("/v2/webhooks").await.expect(405);
    assert_eq!(r.body["error"], "405");
    master
        .post("/v2/webhooks/samples", json!({}))
        .await
        .expect(405);
    let account = master.own_account().await;
    master
        .send("POST", &format!("/v2/accounts/{account}/webhooks"), None)
        .await
        .expect(405);
}

#[tokio::test]
async fn malformed_json_says_where_it_breaks() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    // The create example of the user's document, trailing comma included.
    let body = b"{\"data\": {\n    \"name\": \"New Calls\",\n    \"uri\": \"http://my.example.com/calls/new.php\",\n    \"http_verb\": \"post\",\n    \"hook\": \"channel_create\",\n}}".to_vec();
    let r = master
        .send_raw(
            "PUT",
            &format!("/v2/accounts/{account}/webhooks"),
            Some(body),
            Some("application/json"),
        )
        .await
        .expect(400);
    assert_eq!(r.body["message"], "invalid request body");
    let why = r.data()["message"].as_str().unwrap();
    assert!(why.contains("line 6"), "{why}");
    let r = master
        .send_raw(
            "PUT",
            &format!("/v2/accounts/{account}/webhooks"),
            Some(b"[1]".to_vec()),
            None,
        )
        .await
        .expect(400);
    assert_eq!(r.body["status"], "error");
    // Nothing was created by either.
    let list = master
        .get(&format!("/v2/accounts/{account}/webhooks"))
        .await
        .expect(200);
    assert_eq!(list.data(), &json!([]));
}

#[tokio::test]
async fn bodies_without_a_json_content_type_are_parsed_as_json() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    // What `curl -d` sends: application/x-www-form-urlencoded.
    let body = json!({"data": hook_doc("curl")}).to_string().into_bytes();
    let r = master
        .send_raw(
            "PUT",
            &format!("/v2/accounts/{account}/webhooks"),
            Some(body),
            Some("application/x-www-form-urlencoded"),
        )
        .await
        .expect(201);
    assert_eq!(r.data()["name"], "curl");
    let r = master
        .send_raw(
            "PATCH",
            &format!("/v2/accounts/{account}/webhooks"),
            Some(br#"{"data":{"re-enable":true}}"#.to_vec()),
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.data(), &json!("hooks updated"));
}

#[tokio::test]
async fn oversized_bodies_get_413_and_change_nothing() {
    let d = Daemon::start(&["--max-body-bytes", "4096"]);
    let master = d.master().await;
    let account = master.own_account().await;
    let mut doc = hook_doc("big");
    doc["custom_data"] = json!({"blob": "x".repeat(10_000)});
    let r = master
        .put(&format!("/v2/accounts/{account}/webhooks"), doc)
        .await
        .expect(413);
    assert_eq!(r.body["error"], "413");
    let list = master
        .get(&format!("/v2/accounts/{account}/webhooks"))
        .await
        .expect(200);
    assert_eq!(list.data(), &json!([]));
}
