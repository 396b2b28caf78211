use std::collections::VecDeque;

use serde_json::json;

use super::*;

fn webhook(doc: Value) -> Webhook {
    Webhook {
        id: WebhookId::parse(&format!("{:032x}", 7)).unwrap(),
        account_id: AccountId::parse(&format!("{:032x}", 1)).unwrap(),
        doc: doc.as_object().cloned().unwrap(),
        disable_reason: None,
        recent_failures: VecDeque::new(),
        created_ms: 0,
        modified_ms: 0,
        doc_seq: 0,
        secrets: Default::default(),
    }
}

#[test]
fn a_stored_document_reads_into_typed_fields() {
    let hook = HookConfig::new(
        &webhook(json!({
            "name": "h",
            "uri": "https://example.com/hook#frag",
            "hook": "object",
            "http_verb": "put",
            "format": "json",
            "retries": 4,
            "custom_data": {"type": "user", "team": "blue"},
        })),
        false,
    );
    assert_eq!(hook.name.as_deref(), Some("h"));
    assert_eq!(hook.uri(), "https://example.com/hook#frag");
    assert_eq!(
        hook.target.as_ref().map(Url::as_str),
        Ok("https://example.com/hook")
    );
    assert_eq!((hook.verb, hook.format), (HttpVerb::Put, BodyFormat::Json));
    assert_eq!((hook.http_verb.as_str(), hook.kind()), ("put", "object"));
    assert_eq!(hook.retries, 4);
    assert_eq!(
        hook.custom_data,
        json!({"type": "user", "team": "blue"}).as_object().cloned()
    );
}

#[test]
fn missing_or_unreadable_fields_fall_back_to_kazoos_defaults() {
    let hook = HookConfig::new(
        &webhook(json!({"http_verb": "delete", "format": 3, "retries": "x", "custom_data": []})),
        false,
    );
    assert_eq!(
        (hook.verb, hook.format),
        (HttpVerb::Post, BodyFormat::FormData)
    );
    assert_eq!(hook.retries, RetryPolicy::DEFAULT_RETRIES);
    assert_eq!(hook.custom_data, None);
    assert_eq!(
        (hook.name.as_ref(), hook.uri(), hook.kind()),
        (None, "", "")
    );
    assert_eq!(hook.http_verb, "delete");
}

#[test]
fn a_uri_no_try_can_go_to_says_why() {
    let target = |uri: &str, allow_private: bool| {
        HookConfig::new(&webhook(json!({"uri": uri})), allow_private)
            .target
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        target("ftp://example.com/", false),
        Err("malformed url: unsupported uri scheme \"ftp\"".to_owned())
    );
    assert!(target("not a url", true)
        .unwrap_err()
        .starts_with("malformed url: invalid uri"));
    assert_eq!(
        target("http://127.0.0.1:9/", false),
        Err("refused: private or local address".to_owned())
    );
    assert!(target("http://127.0.0.1:9/", true).is_ok());
    // A name is the resolver's to check, at connect time.
    assert!(target("http://localhost:9/", false).is_ok());
}

#[test]
fn kazoo_5_fields_and_the_signing_keys_are_read_once() {
    let mut stored = webhook(json!({
        "uri": "http://example.com/h",
        "version": "v2",
        "custom_request_headers": {"X-Tenant": "7", "Host": "refused.example"},
        "security_settings": {"sha256_key": "kazoo-key"},
    }));
    stored.secrets.set(
        eventlog::Secret::new("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        0,
    );
    let hook = HookConfig::new(&stored, false);
    assert_eq!(hook.version, crate::delivery::PayloadVersion::V2);
    let names: Vec<&str> = hook
        .custom_headers
        .as_slice()
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["x-tenant"]);
    assert_eq!(
        hook.sha256_key,
        Some(crate::signing::HmacKey::new(b"kazoo-key"))
    );
    assert!(hook.signing.is_some());
    let shown = format!("{hook:?}");
    assert!(
        !shown.contains("kazoo-key") && !shown.contains("whsec_"),
        "{shown}"
    );
}

#[test]
fn without_kazoo_5_fields_a_hook_is_v1_unsigned_until_it_has_a_secret() {
    let hook = HookConfig::new(
        &webhook(json!({"version": "v3", "security_settings": {"sha256_key": ""}})),
        false,
    );
    assert_eq!(hook.version, crate::delivery::PayloadVersion::V1);
    assert!(hook.custom_headers.as_slice().is_empty());
    assert_eq!(hook.sha256_key, None);
    assert_eq!(hook.signing, None);
}
