//! Signed deliveries and Kazoo 5's webhook fields (INTERFACE.md section 9), end to end: a
//! real daemon, a real receiver, and the receiver's side done with the Standard Webhooks
//! reference crate (`standardwebhooks::Webhook::verify`) and, for Kazoo 5's v2 `hmac`, an
//! HMAC computed here.
//!
//! It runs past 500 lines because it is section 9's whole end-to-end check in one place:
//! each test is one clause of the contract (every verb and format, the secret routes,
//! rotation across restarts, custom headers, v2 bodies, the audit CLI, old webhooks).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::Mac;
use serde_json::{json, Value};
use standardwebhooks::Webhook;

use crate::receiver::{Received, TestReceiver};
use crate::support::*;

/// The bytes a delivery is signed over: the body, or for a GET the query string as sent.
fn signed_content(r: &Received) -> Vec<u8> {
    if r.method == "GET" {
        r.query().as_bytes().to_vec()
    } else {
        r.body.clone()
    }
}

/// Verifies `r` with `secret` the way a receiver using the reference crate does.
fn verify(secret: &str, r: &Received) -> Result<(), standardwebhooks::WebhookError> {
    Webhook::new(secret)?.verify(&signed_content(r), &r.headers)
}

/// Verifies `content` with `headers` (for tampered copies of a delivery).
fn verify_content(
    secret: &str,
    content: &[u8],
    headers: &HeaderMap,
) -> Result<(), standardwebhooks::WebhookError> {
    Webhook::new(secret)?.verify(content, headers)
}

async fn post_event(master: &Client, event: Value) {
    master
        .send("POST", "/v2/events", Some(json!({ "data": event })))
        .await
        .expect(202);
}

async fn secret_of(client: &Client, account: &str, hook: &str) -> String {
    let r = client
        .get(&format!("/v2/accounts/{account}/webhooks/{hook}/secret"))
        .await
        .expect(200);
    r.data()["key"].as_str().expect("key").to_owned()
}

async fn rotate(client: &Client, account: &str, hook: &str, data: Value) -> Resp {
    client
        .put(
            &format!("/v2/accounts/{account}/webhooks/{hook}/secret"),
            data,
        )
        .await
}

/// A daemon whose receivers may be on loopback, retrying fast, and its master's account.
async fn daemon(extra: &[&str]) -> (Daemon, Client, String) {
    let mut flags = vec!["--allow-private-targets", "--retry-base-ms", "50"];
    flags.extend_from_slice(extra);
    let d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    (d, master, account)
}

fn channel_event(account: &str, hook_event: &str, call_id: &str) -> Value {
    json!({"hook_event": hook_event, "account_id": account, "call_id": call_id,
           "caller_id_number": "+1 415 555 0123", "custom_channel_vars": {"z": "1", "a": "é"}})
}

#[tokio::test]
async fn every_format_and_verb_is_signed_and_verifies_with_the_reference_crate() {
    let (_d, master, account) = daemon(&[]).await;
    let rx = TestReceiver::start().await;
    let mut hooks = Vec::new();
    for (verb, format) in [
        ("post", "form-data"),
        ("post", "json"),
        ("put", "form-data"),
        ("put", "json"),
        ("get", "form-data"),
    ] {
        for version in ["v1", "v2"] {
            let path = format!("/{verb}-{format}-{version}");
            let id = master
                .create_webhook(
                    &account,
                    json!({"name": path, "uri": format!("{}{path}?from=piston", rx.url),
                           "hook": "channel_create", "http_verb": verb, "format": format,
                           "version": version}),
                )
                .await;
            hooks.push((path, id));
        }
    }
    post_event(
        &master,
        channel_event(&account, "channel_create", "call-signed"),
    )
    .await;
    let received = rx.wait_for(hooks.len()).await;
    let other_secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (path, id) in &hooks {
        let secret = secret_of(&master, &account, id).await;
        let r = received
            .iter()
            .find(|r| r.uri.starts_with(&format!("{path}?")))
            .unwrap_or_else(|| panic!("nothing arrived at {path}"));
        verify(&secret, r).unwrap_or_else(|e| panic!("{path} does not verify: {e}"));
        assert_eq!(r.header("webhook-id"), r.header("x-event-id"), "{path}");
        let signatures = r.header("webhook-signature").unwrap();
        assert!(
            signatures.starts_with("v1,") && !signatures.contains(' '),
            "{signatures}"
        );
        // Another secret, or one byte changed, does not verify.
        assert!(verify(other_secret, r).is_err(), "{path}");
        let mut tampered = signed_content(r);
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        assert!(
            verify_content(&secret, &tampered, &r.headers).is_err(),
            "{path}: a tampered delivery verifies"
        );
        // A GET signs the whole query as sent, the hook's own part included.
        if path.starts_with("/get") {
            assert!(r.query().starts_with("from=piston&"), "{}", r.uri);
            assert!(r.body.is_empty());
        }
    }
}

#[tokio::test]
async fn the_secret_is_only_shown_by_its_route_and_a_given_one_is_validated() {
    let (_d, master, account) = daemon(&[]).await;
    let id = master.create_webhook(&account, hook_doc("quiet")).await;
    let base = format!("/v2/accounts/{account}/webhooks");
    let secret = secret_of(&master, &account, &id).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let key = base64::engine::general_purpose::STANDARD
        .decode(&secret["whsec_".len()..])
        .unwrap();
    assert_eq!(key.len(), 32);
    for path in [format!("{base}/{id}"), base.clone()] {
        let r = master.get(&path).await.expect(200);
        assert!(
            !r.body.to_string().contains(&secret[6..]),
            "{path}: {}",
            r.body
        );
    }

    // Rotating gives a fresh one; setting a given one takes it as is.
    let rotated = rotate(&master, &account, &id, json!({})).await.expect(200);
    let fresh = rotated.data()["key"].as_str().unwrap().to_owned();
    assert_ne!(fresh, secret);
    assert_eq!(secret_of(&master, &account, &id).await, fresh);
    let chosen = "whsec_q6urq6urq6urq6urq6urq6urq6urq6ur";
    rotate(&master, &account, &id, json!({"key": chosen}))
        .await
        .expect(200);
    assert_eq!(secret_of(&master, &account, &id).await, chosen);

    // Refused keys: Kazoo's validation shape, and the key is not repeated back.
    for bad in [
        "q6urq6urq6urq6urq6urq6urq6urq6ur",
        "whsec_not base64!",
        "whsec_q6urq6urq6ur",
    ] {
        let r = rotate(&master, &account, &id, json!({"key": bad}))
            .await
            .expect(400);
        assert_eq!(r.body["message"], "validation error");
        let detail = &r.data()["key"]["wrong_format"];
        assert_eq!(
            detail["message"], "Field is not in the correct format",
            "{bad}"
        );
        assert!(
            !r.body.to_string().contains(bad),
            "{bad} echoed: {}",
            r.body
        );
    }
    let r = rotate(&master, &account, &id, json!({"key": 5}))
        .await
        .expect(400);
    assert!(r.data()["key"]["type"].is_object(), "{}", r.body);
    assert_eq!(
        secret_of(&master, &account, &id).await,
        chosen,
        "nothing changed"
    );

    // Scoped like the webhook: another account's token cannot read it.
    let other = master.create_account(&account, "Other").await;
    let other_client = master.as_account(&other).await;
    other_client
        .get(&format!("{base}/{id}/secret"))
        .await
        .expect(403);
    master
        .get(&format!("/v2/accounts/{other}/webhooks/{id}/secret"))
        .await
        .expect(404);
}

#[tokio::test]
async fn during_the_overlap_both_secrets_sign_and_a_restart_keeps_the_window() {
    let (d, master, account) = daemon(&["--secret-rotation-overlap-secs", "3600"]).await;
    let rx = TestReceiver::start().await;
    let id = master
        .create_webhook(
            &account,
            json!({"name": "rotating", "uri": format!("{}/hook", rx.url),
                   "hook": "channel_create", "format": "json"}),
        )
        .await;
    let old = secret_of(&master, &account, &id).await;
    let new = rotate(&master, &account, &id, json!({}))
        .await
        .expect(200)
        .data()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    post_event(&master, channel_event(&account, "channel_create", "c1")).await;
    let during = rx.wait_for(1).await.remove(0);
    verify(&new, &during).expect("the new secret verifies");
    verify(&old, &during).expect("the old secret verifies during the overlap");
    let signatures: Vec<&str> = during
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    // The new secret's signature comes first.
    let timestamp: i64 = during.header("webhook-timestamp").unwrap().parse().unwrap();
    let expected_first = Webhook::new(&new)
        .unwrap()
        .sign(
            during.header("webhook-id").unwrap(),
            timestamp,
            &during.body,
        )
        .unwrap();
    assert_eq!(signatures[0], expected_first);

    // A restart keeps both secrets and the window (it is counted from the rotation's
    // record, not from the start).
    let d = d.restart(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "50",
        "--secret-rotation-overlap-secs",
        "3600",
    ]);
    let master = d.master().await;
    assert_eq!(secret_of(&master, &account, &id).await, new);
    post_event(&master, channel_event(&account, "channel_create", "c2")).await;
    let after_restart = rx.wait_for(2).await.remove(1);
    verify(&new, &after_restart).expect("new after restart");
    verify(&old, &after_restart).expect("old still within the window after restart");

    // Past the window (here: a 1 s overlap, long over since the rotation), only the new
    // secret signs.
    let d = d.restart(&[
        "--allow-private-targets",
        "--retry-base-ms",
        "50",
        "--secret-rotation-overlap-secs",
        "1",
    ]);
    let master = d.master().await;
    let single = eventually(Duration::from_secs(30), || async {
        let n = rx.received().len();
        post_event(
            &master,
            channel_event(&account, "channel_create", &format!("c{n}")),
        )
        .await;
        let r = rx.wait_for(n + 1).await.remove(n);
        (!r.header("webhook-signature").unwrap().contains(' ')).then_some(r)
    })
    .await
    .expect("the overlap ends");
    verify(&new, &single).expect("the new secret verifies after the overlap");
    assert!(
        verify(&old, &single).is_err(),
        "the old secret no longer verifies"
    );
}

#[tokio::test]
async fn custom_request_headers_arrive_and_the_daemons_own_are_refused() {
    let (_d, master, account) = daemon(&[]).await;
    let rx = TestReceiver::start().await;
    let id = master
        .create_webhook(
            &account,
            json!({"name": "headers", "uri": format!("{}/h", rx.url), "hook": "channel_create",
                   "custom_request_headers": {"Authorization": "Bearer abc.def", "X-Tenant": "t-1"}}),
        )
        .await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{id}"))
        .await
        .expect(200);
    assert_eq!(
        r.data()["custom_request_headers"],
        json!({"Authorization": "Bearer abc.def", "X-Tenant": "t-1"})
    );
    assert_eq!(r.data()["version"], "v1");
    post_event(&master, channel_event(&account, "channel_create", "h1")).await;
    let got = rx.wait_for(1).await.remove(0);
    assert_eq!(got.header("authorization"), Some("Bearer abc.def"));
    assert_eq!(got.header("x-tenant"), Some("t-1"));
    assert_eq!(got.header("x-hook-id"), Some(id.as_str()));
    verify(&secret_of(&master, &account, &id).await, &got).expect("signed too");

    // A PATCH that names a header the daemon sets, or breaks a value, is refused.
    let r = master
        .patch(
            &format!("/v2/accounts/{account}/webhooks/{id}"),
            json!({"custom_request_headers": {"Content-Type": "text/plain", "webhook-id": "x",
                                              "X-Bad": "a\r\nX-Injected: 1"}}),
        )
        .await
        .expect(400);
    assert_eq!(r.body["message"], "validation error");
    for name in ["Content-Type", "webhook-id"] {
        let detail = &r.data()[format!("custom_request_headers.{name}")]["disallow"];
        assert_eq!(detail["value"], name, "{}", r.body);
    }
    assert!(r.data()["custom_request_headers.X-Bad"]["wrong_format"].is_object());
    // A PATCH with null removes one.
    let r = master
        .patch(
            &format!("/v2/accounts/{account}/webhooks/{id}"),
            json!({"custom_request_headers": {"X-Tenant": null}}),
        )
        .await
        .expect(200);
    assert_eq!(
        r.data()["custom_request_headers"],
        json!({"Authorization": "Bearer abc.def"})
    );
}

/// Kazoo 5's `hmac`, computed here from the parsed body: HMAC-SHA256 with the key's bytes
/// of the decimal timestamp then the compact JSON of `data` with sorted keys.
fn kazoo_v2_hmac(key: &str, body: &Value) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body["timestamp"].to_string().as_bytes());
    // `serde_json::Value` keeps object keys sorted (no `preserve_order` in this build).
    mac.update(serde_json::to_string(&body["data"]).unwrap().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn v2_bodies_carry_kazoos_envelope_and_an_hmac_a_receiver_recomputes() {
    let (_d, master, account) = daemon(&[]).await;
    let rx = TestReceiver::start().await;
    let key = "kazoo-shared-key";
    let json_hook = master
        .create_webhook(
            &account,
            json!({"name": "v2 json", "uri": format!("{}/json", rx.url), "hook": "channel_answer",
                   "format": "json", "version": "v2", "custom_data": {"team": "blue"},
                   "security_settings": {"sha256_key": key}}),
        )
        .await;
    let form_hook = master
        .create_webhook(
            &account,
            json!({"name": "v2 form", "uri": format!("{}/form", rx.url), "hook": "channel_answer",
                   "version": "v2", "security_settings": {"sha256_key": key}}),
        )
        .await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{json_hook}"))
        .await
        .expect(200);
    assert_eq!(r.data()["version"], "v2");
    assert_eq!(r.data()["security_settings"], json!({"sha256_key": key}));

    post_event(
        &master,
        channel_event(&account, "channel_answer", "v2-call"),
    )
    .await;
    let received = rx.wait_for(2).await;
    let json_delivery = received.iter().find(|r| r.uri == "/json").unwrap();
    let body = json_delivery.json();
    assert_eq!(body["action"], "event");
    assert_eq!(body["name"], "channel_answer");
    assert_eq!(body["data"]["call_id"], "v2-call");
    assert_eq!(body["data"]["hook_event"], "channel_answer");
    assert_eq!(body["data"]["team"], "blue", "custom_data goes into data");
    assert_eq!(
        body["timestamp"].to_string(),
        json_delivery.header("webhook-timestamp").unwrap(),
        "one time for the body and the signature"
    );
    assert_eq!(body["hmac"], kazoo_v2_hmac(key, &body));
    let secret = secret_of(&master, &account, &json_hook).await;
    verify(&secret, json_delivery).expect("a v2 body is signed like any");

    let form_delivery = received.iter().find(|r| r.uri == "/form").unwrap();
    let text = form_delivery.text();
    assert!(
        text.starts_with("action=event&name=channel_answer&data[account_id]="),
        "{text}"
    );
    assert!(text.contains("&data[call_id]=v2-call&"), "{text}");
    assert!(
        text.contains("&timestamp=") && text.contains("&hmac="),
        "{text}"
    );
    verify(
        &secret_of(&master, &account, &form_hook).await,
        form_delivery,
    )
    .expect("a v2 form body verifies");

    // A v1 hook gets no envelope, whatever key it holds.
    let plain = master
        .create_webhook(
            &account,
            json!({"name": "v1", "uri": format!("{}/v1", rx.url), "hook": "channel_answer",
                   "format": "json", "security_settings": {"sha256_key": key}}),
        )
        .await;
    post_event(
        &master,
        channel_event(&account, "channel_answer", "v1-call"),
    )
    .await;
    let v1 = eventually(Duration::from_secs(30), || async {
        rx.received().into_iter().find(|r| r.uri == "/v1")
    })
    .await
    .expect("the v1 delivery");
    let body = v1.json();
    assert_eq!(body["call_id"], "v1-call");
    assert!(
        body.get("hmac").is_none() && body.get("action").is_none(),
        "{body}"
    );
    verify(&secret_of(&master, &account, &plain).await, &v1).expect("signed");
}

/// Runs `piston-webhooks log <args...>` on `data_dir`; its standard output.
fn log_cli(data_dir: &Path, args: &[&str]) -> String {
    let (sub, rest) = args.split_first().expect("a subcommand");
    let out = Command::new(env!("CARGO_BIN_EXE_piston-webhooks"))
        .arg("log")
        .arg(sub)
        .arg("--data-dir")
        .arg(data_dir)
        .args(rest)
        .env("RUST_LOG", "warn")
        .env_remove("PISTON_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run piston-webhooks log");
    assert!(out.status.success(), "log {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8") + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test]
async fn the_audit_cli_never_prints_a_secret() {
    let (d, master, account) = daemon(&[]).await;
    let id = master
        .create_webhook(
            &account,
            json!({"name": "audited", "uri": "http://example.com/h", "hook": "all",
                   "version": "v2", "security_settings": {"sha256_key": "the-v2-key"},
                   "custom_request_headers": {"Authorization": "Bearer the-header-token"}}),
        )
        .await;
    let first = secret_of(&master, &account, &id).await;
    rotate(&master, &account, &id, json!({})).await.expect(200);
    let second = secret_of(&master, &account, &id).await;
    let outputs = [
        log_cli(&d.data_dir, &["replay", "--json"]),
        log_cli(&d.data_dir, &["replay"]),
        log_cli(&d.data_dir, &["state", "--at", "4000000000", "--json"]),
        log_cli(&d.data_dir, &["state", "--at", "4000000000"]),
    ];
    for output in &outputs {
        for secret in [
            &first[6..],
            &second[6..],
            "the-v2-key",
            "the-header-token",
            MASTER_KEY,
        ] {
            assert!(!output.contains(secret), "{secret} printed:\n{output}");
        }
    }
    let sets = outputs[0]
        .lines()
        .filter(|l| l.contains("\"kind\":\"webhook_secret_set\""))
        .count();
    assert_eq!(sets, 2, "the creation's and the rotation's: {}", outputs[0]);
    assert!(
        outputs[2].contains("\"secret\": \"[redacted]\""),
        "{}",
        outputs[2]
    );
}

#[tokio::test]
async fn a_webhook_created_before_secrets_existed_gets_one_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let rx = TestReceiver::start().await;
    let master_id = eventlog::AccountId::generate();
    let hook = eventlog::WebhookId::generate();
    {
        // A log as a build before signing wrote it: no secret record.
        let log = eventlog::EventLog::open(&dir.path().join("eventlog"), None).unwrap();
        log.append_blocking(vec![
            eventlog::Event::AccountCreated {
                account_id: master_id.clone(),
                parent_id: None,
                api_key: MASTER_KEY.into(),
                doc: json!({"name": "Master Account"}),
            },
            eventlog::Event::WebhookCreated {
                account_id: master_id.clone(),
                webhook_id: hook.clone(),
                doc: json!({"name": "old", "uri": format!("{}/old", rx.url),
                            "hook": "channel_create", "http_verb": "post",
                            "format": "json", "retries": 2, "enabled": true}),
            },
        ])
        .unwrap();
        log.close().unwrap();
    }
    let d = Daemon::start_in(dir.path(), &["--allow-private-targets"]);
    let master = d.master().await;
    let account = master_id.to_string();
    let secret = secret_of(&master, &account, hook.as_str()).await;
    post_event(
        &master,
        channel_event(&account, "channel_create", "old-call"),
    )
    .await;
    let got = rx.wait_for(1).await.remove(0);
    verify(&secret, &got).expect("an old webhook's deliveries are signed");
    // Given once: the next start keeps it.
    let d = d.restart(&["--allow-private-targets"]);
    let master = d.master().await;
    assert_eq!(secret_of(&master, &account, hook.as_str()).await, secret);
}
