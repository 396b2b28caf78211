//! Hostile input at every route: malformed and random JSON, wrong types, huge strings,
//! deep nesting, invalid UTF-8, odd ids and query strings. Nothing may answer 5xx, the
//! daemon must stay up, and refused input must change nothing (not one log record).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::support::*;

/// Every route with a method, the ids filled in.
fn routes(account: &str, hook: &str) -> Vec<(&'static str, String)> {
    let a = account;
    let w = hook;
    vec![
        ("PUT", "/v2/api_auth".into()),
        ("PUT", format!("/v2/accounts/{a}")),
        ("GET", format!("/v2/accounts/{a}")),
        ("POST", format!("/v2/accounts/{a}")),
        ("PATCH", format!("/v2/accounts/{a}")),
        ("GET", format!("/v2/accounts/{a}/children")),
        ("GET", format!("/v2/accounts/{a}/descendants")),
        ("GET", format!("/v2/accounts/{a}/api_key")),
        ("GET", "/v2/webhooks".into()),
        ("GET", "/v2/webhooks/samples".into()),
        ("GET", "/v2/webhooks/samples/webhooks_object".into()),
        ("GET", format!("/v2/accounts/{a}/webhooks")),
        ("PUT", format!("/v2/accounts/{a}/webhooks")),
        ("PATCH", format!("/v2/accounts/{a}/webhooks")),
        ("GET", format!("/v2/accounts/{a}/webhooks/{w}")),
        ("POST", format!("/v2/accounts/{a}/webhooks/{w}")),
        ("PATCH", format!("/v2/accounts/{a}/webhooks/{w}")),
        ("GET", format!("/v2/accounts/{a}/webhooks/attempts")),
        ("GET", format!("/v2/accounts/{a}/webhooks/{w}/attempts")),
        ("PATCH", format!("/v2/accounts/{a}/descendants/webhooks")),
        ("POST", "/v2/events".into()),
    ]
}

/// Bodies that no route may accept.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"{\"data\": {\"name\": \"x\",}}".to_vec(),
        b"{\"data\": [1, 2,]}".to_vec(),
        b"nul".to_vec(),
        b"\"just a string\"".to_vec(),
        b"[{\"data\": {}}]".to_vec(),
        b"{\"data\": 5}".to_vec(),
        b"{\"data\": \"text\"}".to_vec(),
        b"{\"data\": null}".to_vec(),
        b"{\"data\": true}".to_vec(),
        vec![0xff, 0xfe, b'{', 0x80, b'}'],
        b"{\"data\": {\"name\": \"\xff\xfe\"}}".to_vec(),
        b"{\"data\": {\"name\": \"\\ud800\"}}".to_vec(),
        b"{\"data\": {\"retries\": 1e400}}".to_vec(),
        b"{\"data\": {\"name\": 1, \"uri\": [], \"hook\": {}, \"retries\": \"x\", \"custom_data\": 3, \"modifiers\": \"m\", \"re-enable\": 7, \"api_key\": false}}".to_vec(),
        b"{\"data\": {\"name\": null, \"uri\": null, \"hook\": null, \"api_key\": null, \"re-enable\": null}}".to_vec(),
        format!("{{\"data\": {{\"uri\": \"http://{}/\"}}}}", "a".repeat(200_000)).into_bytes(),
        format!("{{\"data\": {{\"name\": \"{}\"}}}}", "\\u0000".repeat(10_000)).into_bytes(),
    ];
    // Deep nesting, inside and outside `data`.
    bodies.push(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    bodies.push(
        format!(
            "{{\"data\": {}1{}}}",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        )
        .into_bytes(),
    );
    bodies.push(format!("{{\"data\": {}{}}}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes());
    bodies
}

/// A random JSON value: any shape, keys often the API's own field names.
fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "data",
        "name",
        "uri",
        "hook",
        "http_verb",
        "format",
        "retries",
        "enabled",
        "custom_data",
        "modifiers",
        "include_subaccounts",
        "api_key",
        "re-enable",
        "hook_event",
        "account_id",
        "event_id",
        "id",
        "pvt_x",
        "",
        "\u{0}",
        "a.b",
        "%2E",
    ];
    let pick = if depth == 0 {
        rng.random_range(0..5)
    } else {
        rng.random_range(0..7)
    };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e10),
        4 => {
            let len = rng.random_range(0..40);
            Value::String(
                (0..len)
                    .map(|_| char::from_u32(rng.random_range(0..0x3000)).unwrap_or('x'))
                    .collect(),
            )
        }
        5 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..6) {
                let key = KEYS[rng.random_range(0..KEYS.len())].to_owned();
                map.insert(key, random_json(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_ids_and_queries_get_4xx_and_change_nothing() {
    let d = Daemon::start(&["--max-body-bytes", "65536"]);
    let master = d.master().await;
    let account = master.own_account().await;
    let child = master.create_account(&account, "child").await;
    let hook = master.create_webhook(&child, hook_doc("target")).await;
    let last_seq =
        |c: Client| async move { c.get("/healthz").await.expect(200).data()["last_seq"].clone() };
    let before = last_seq(master.clone()).await;
    let mut tried = 0;

    for (method, path) in routes(&child, &hook) {
        for body in hostile_bodies() {
            for content_type in [
                Some("application/json"),
                Some("application/x-www-form-urlencoded"),
                None,
            ] {
                let oversized = body.len() > 65536;
                let Some(r) = master
                    .try_send_raw(method, &path, body.clone(), content_type)
                    .await
                else {
                    assert!(
                        oversized,
                        "{method} {path}: connection dropped for a small body"
                    );
                    tried += 1;
                    continue;
                };
                tried += 1;
                if oversized && method != "GET" {
                    assert_eq!(r.status, 413, "{method} {path}: {}", r.body);
                }
                assert!(
                    r.status < 500,
                    "{method} {path} answered {}: {}",
                    r.status,
                    r.body
                );
                if method != "GET" {
                    assert!(
                        r.status >= 400,
                        "{method} {path} accepted a hostile body: {}",
                        r.body
                    );
                }
                assert!(
                    r.body.get("status").is_some(),
                    "not an envelope: {}",
                    r.body
                );
            }
        }
    }
    // Odd ids and query strings.
    let odd_ids = [
        "..",
        "%2e%2e",
        "%00",
        "x%20y",
        "%E2%80%AE",
        &"f".repeat(5_000),
        "0123456789ABCDEF0123456789ABCDEF",
        "null",
    ];
    for id in odd_ids {
        for (method, path) in [
            ("GET", format!("/v2/accounts/{id}")),
            ("DELETE", format!("/v2/accounts/{id}")),
            ("GET", format!("/v2/accounts/{child}/webhooks/{id}")),
            ("DELETE", format!("/v2/accounts/{child}/webhooks/{id}")),
            ("GET", format!("/v2/webhooks/samples/{id}")),
            ("GET", format!("/v2/accounts/{id}/webhooks/{id}/attempts")),
        ] {
            let r = master.send_raw(method, &path, None, None).await;
            tried += 1;
            assert!(
                (400..500).contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    for query in [
        "page_size=-1",
        "page_size=99999999999999999999",
        "start_key=%FF%FE",
        "ascending=maybe",
        "filter_=x",
        "filter_a.b.c.d.e=1",
        "has_key=",
        "paginate=false&page_size=0",
        &format!("filter_x={}", "y".repeat(20_000)),
    ] {
        for path in [
            format!("/v2/accounts/{child}/webhooks"),
            format!("/v2/accounts/{account}/descendants"),
            format!("/v2/accounts/{child}/webhooks/attempts"),
            "/v2/webhooks/samples/webhooks_object".to_owned(),
        ] {
            let r = master.get(&format!("{path}?{query}")).await;
            tried += 1;
            assert!(r.status < 500, "{path}?{query}: {} {}", r.status, r.body);
        }
    }
    // Oversized and odd headers.
    let big = reqwest::Client::new()
        .get(format!("{}/v2/accounts/{child}", d.base))
        .header("X-Auth-Token", "t".repeat(200_000))
        .send()
        .await;
    if let Ok(r) = big {
        assert!(
            r.status().as_u16() < 500,
            "huge header answered {}",
            r.status()
        );
    }
    let mut bogus = d.client();
    bogus.token = Some("é-not-ascii-but-valid-bytes".into());
    assert_eq!(
        bogus.get(&format!("/v2/accounts/{child}")).await.status,
        401
    );

    assert!(tried > 1000, "{tried}");
    d.client().get("/healthz").await.expect(200);
    assert_eq!(
        last_seq(master.clone()).await,
        before,
        "a refused request changed the log"
    );
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_json_at_every_route_never_gets_a_5xx() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let account = master.own_account().await;
    let child = master.create_account(&account, "child").await;
    let hook = master.create_webhook(&child, hook_doc("target")).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut sent = 0;
    for round in 0..40 {
        for (method, path) in routes(&child, &hook) {
            let value = if round % 2 == 0 {
                json!({"data": random_json(&mut rng, 4)})
            } else {
                random_json(&mut rng, 4)
            };
            let r = master
                .send_raw(method, &path, Some(value.to_string().into_bytes()), None)
                .await;
            sent += 1;
            assert!(
                r.status < 500,
                "{method} {path} with {value}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(sent, 40 * routes(&child, &hook).len());
    d.client().get("/healthz").await.expect(200);
}
