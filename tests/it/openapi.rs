//! `GET /openapi.json` (INTERFACE.md section 10): an OpenAPI 3.1 document that the
//! official OpenAPI 3.1 schema accepts, that documents exactly the routes the daemon
//! serves, and whose schemas the daemon's own answers satisfy.
//!
//! Which routes exist is not listed here: the document is what the route table was
//! built from (`api::openapi_document`), each documented operation is probed on the live
//! daemon, and the source is checked for routes added around the documented table.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, Daemon, MASTER_KEY};

/// The methods the API routes (axum adds `HEAD` to every `GET` by itself).
const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// The OAI's published schema for OpenAPI 3.1 documents (see tests/fixtures/README.md).
const OPENAPI_31_SCHEMA: &str = include_str!("../fixtures/openapi-3.1-schema.json");

/// One request; redirects are answers here, not followed.
async fn fetch(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .request(method, format!("{}{}", d.base, path))
        .timeout(Duration::from_secs(30));
    if let Some(token) = token {
        req = req.header("X-Auth-Token", token);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = req.send().await.expect("request reached the daemon");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

async fn document(d: &Daemon) -> Value {
    let (status, content_type, text) = fetch(d, "get", "/openapi.json", None, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "application/json");
    serde_json::from_str(&text).expect("the document is JSON")
}

/// `(path, method)` of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_the_official_schema_accepts_it() {
    let d = Daemon::start(&[]);
    let doc = document(&d).await;
    // What the daemon serves is what the route table was built from.
    assert_eq!(doc, piston_webhooks::api::openapi_document());
    assert_eq!(doc["openapi"], "3.1.0");

    let schema: Value = serde_json::from_str(OPENAPI_31_SCHEMA).unwrap();
    assert_eq!(
        schema["$id"],
        "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
    );
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.1 document:\n{errors:#?}"
    );

    // That schema leaves Schema Objects open: each must be a valid JSON Schema 2020-12.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("components.schemas.{name} is not a valid JSON Schema: {e}");
        }
    }

    // The validator is not vacuous: a broken document is refused.
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"]["200"] = json!({"content": {}});
    assert!(
        !validator.is_valid(&broken),
        "a response without a description"
    );
    let mut broken = doc.clone();
    broken["components"]["securitySchemes"]["X-Auth-Token"]["in"] = json!("body");
    assert!(!validator.is_valid(&broken), "an API key in the body");
}

#[tokio::test]
async fn the_document_describes_the_security_scheme_and_the_main_schemas() {
    let d = Daemon::start(&[]);
    let doc = document(&d).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["X-Auth-Token"],
        json!({"type": "apiKey", "in": "header", "name": "X-Auth-Token",
               "description": doc["components"]["securitySchemes"]["X-Auth-Token"]["description"]})
    );
    assert_eq!(doc["security"], json!([{"X-Auth-Token": []}]));
    for name in [
        "Account",
        "Webhook",
        "WebhookInput",
        "Attempt",
        "Event",
        "ErrorEnvelope",
        "Health",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "components.schemas.{name}"
        );
    }
    // Public operations need no token; the others answer 401 without one.
    let public = &doc["paths"]["/v2/webhooks"]["get"];
    assert_eq!(public["security"], json!([{}]));
    assert!(public["responses"]["401"].is_null());
    let scoped = &doc["paths"]["/v2/accounts/{account_id}/webhooks"]["put"];
    for status in ["201", "400", "401", "403", "404", "409", "413", "503"] {
        assert!(
            scoped["responses"][status].is_object(),
            "PUT webhooks {status}"
        );
    }
    let params: Vec<&str> = doc["paths"]["/v2/accounts/{account_id}/webhooks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "account_id",
        "page_size",
        "start_key",
        "paginate",
        "filters",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
}

/// A validator for one answer schema of the document (its `$ref`s resolve against the
/// document's components).
fn answer_validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::new(&root).expect("the answer schema compiles")
}

/// The body a probe sends to an operation: a valid one where the test knows it (the
/// rest get `{"data": {}}`, which the document's 400 covers).
fn probe_body(path: &str, method: &str, account: &str) -> Value {
    let hook = json!({"name": "probe", "uri": "http://127.0.0.1:9/probe",
                      "hook": "channel_create", "retries": 0});
    let data = match (method, path) {
        ("put", "/v2/api_auth") => json!({"api_key": MASTER_KEY}),
        ("put" | "post", "/v2/accounts/{account_id}") => json!({"name": "probe"}),
        ("patch", "/v2/accounts/{account_id}") => json!({"name": "patched"}),
        ("put", "/v2/accounts/{account_id}/webhooks") => hook,
        ("post", "/v2/accounts/{account_id}/webhooks/{webhook_id}") => hook,
        ("patch", "/v2/accounts/{account_id}/webhooks/{webhook_id}") => json!({"name": "patched"}),
        ("patch", _) if path.ends_with("/webhooks") => json!({"re-enable": true}),
        ("post", "/v2/events") => json!({"hook_event": "channel_create", "account_id": account,
                                         "call_id": "probe"}),
        ("put", _) if path.ends_with("/recover") => json!({"since": 0}),
        _ => json!({}),
    };
    json!({ "data": data })
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let d = Daemon::start(&["--allow-private-targets", "--retry-base-ms", "50"]);
    let doc = document(&d).await;
    let master = d.master().await;
    let token = master.token.clone().unwrap();
    let root = master.own_account().await;
    let account = master.create_account(&root, "openapi").await;
    let webhook = master
        .create_webhook(
            &account,
            json!({"name": "probed", "uri": "http://127.0.0.1:9/hook", "hook": "channel_create"}),
        )
        .await;
    // One failed attempt, so that the attempt listings have items to check.
    master
        .post(
            "/v2/events",
            json!({"hook_event": "channel_create", "account_id": account}),
        )
        .await
        .expect(202);
    let attempts = format!("/v2/accounts/{account}/webhooks/{webhook}/attempts");
    let attempt = eventually(Duration::from_secs(10), || async {
        let r = master.get(&attempts).await.expect(200);
        r.data().as_array().unwrap().first().cloned()
    })
    .await
    .expect("an attempt was recorded");
    // Routes on one attempt name it by the `id` its listing item carries.
    let attempt_id = attempt["id"].as_str().unwrap_or("").to_owned();

    // Deletions last, the webhook's before its account's.
    let mut ops = operations(&doc);
    ops.sort_by_key(|(path, method)| (method == "delete", std::cmp::Reverse(path.len())));
    assert!(ops.len() >= 20, "{ops:?}");
    for (template, method) in &ops {
        let path = template
            .replace("{account_id}", &account)
            .replace("{webhook_id}", &webhook)
            .replace("{sample_id}", "webhooks_channel_create")
            .replace("{attempt_id}", &attempt_id);
        assert!(
            !path.contains('{'),
            "an unknown path parameter in {template}"
        );
        let operation = &doc["paths"][template][method];
        let body = operation["requestBody"]
            .is_object()
            .then(|| probe_body(template, method, &account));
        let (status, content_type, text) =
            fetch(&d, method, &path, Some(&token), body.as_ref()).await;
        assert!(
            status != 404 && status != 405,
            "{method} {template} is documented but answers {status}: {text}"
        );
        let answer = &operation["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {template} answered {status}, which the document does not list: {text}"
        );
        if let Some(schema) = answer["content"]["application/json"]["schema"].as_object() {
            assert!(
                content_type.starts_with("application/json"),
                "{method} {template}"
            );
            let body: Value = serde_json::from_str(&text).unwrap();
            let validator = answer_validator(&doc, &Value::Object(schema.clone()));
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {template} {status} does not match its schema: {errors:#?}\n{body}"
            );
        }
        // The methods the document does not list for this path are not served.
        for other in METHODS {
            if doc["paths"][template][other].is_null() {
                let (status, _, text) = fetch(&d, other, &path, Some(&token), None).await;
                assert_eq!(
                    status, 405,
                    "{other} {template} is served but not documented: {text}"
                );
            }
        }
    }
}

/// Every route goes through the documented table: `routes!` (which routes and
/// documents from one annotation) or `api/openapi.rs`'s `documented_get`. A plain
/// `.route(...)` elsewhere would serve a path the document does not show.
#[test]
fn no_route_is_added_around_the_documented_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    visit(&src, &mut |file, text| {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || file.ends_with("api/openapi.rs") {
            return;
        }
        for (n, line) in text.lines().enumerate() {
            for call in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".merge(",
            ] {
                if line.contains(call) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    });
    assert!(
        found.is_empty(),
        "routes added outside the documented table (annotate the handler with \
         #[utoipa::path] and add it with `.routes(routes!(...))` in src/api.rs):\n{}",
        found.join("\n")
    );
}

fn visit(dir: &Path, f: &mut impl FnMut(&Path, &str)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(&path, &std::fs::read_to_string(&path).unwrap());
        }
    }
}
