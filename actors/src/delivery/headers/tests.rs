//! The header-name and header-value rules of `custom_request_headers`.

use serde_json::json;

use super::*;

#[test]
fn the_daemons_own_headers_are_reserved_in_any_case() {
    for name in [
        "Host",
        "content-length",
        "Content-Type",
        "TRANSFER-ENCODING",
        "Connection",
        "User-Agent",
        "X-Hook-ID",
        "x-account-id",
        "X-Event-Id",
        "webhook-id",
        "Webhook-Signature",
        "WEBHOOK-TIMESTAMP",
        "webhook-anything",
        "Keep-Alive",
        "Upgrade",
        "TE",
        "Trailer",
        "Expect",
        "Proxy-Connection",
    ] {
        assert!(is_reserved_header(name), "{name}");
        assert_eq!(
            check_header_name(name),
            Err(HeaderRuleError::Reserved),
            "{name}"
        );
    }
}

#[test]
fn ordinary_names_are_accepted() {
    for name in [
        "Authorization",
        "X-Api-Key",
        "x-tenant",
        "X-Webhook-Source",
        "webhook",
        "Webhooks-Id",
        "a!#$%&'*+-.^_`|~1",
    ] {
        assert!(check_header_name(name).is_ok(), "{name}");
    }
}

#[test]
fn names_must_be_http_tokens_of_bounded_length() {
    for name in [
        "",
        "Bad Name",
        "bad:name",
        "bad\nname",
        "naïve",
        "a(b)",
        "x\"y",
    ] {
        assert_eq!(
            check_header_name(name),
            Err(HeaderRuleError::InvalidName),
            "{name:?}"
        );
    }
    let long = "x".repeat(MAX_HEADER_NAME_BYTES + 1);
    assert_eq!(check_header_name(&long), Err(HeaderRuleError::NameTooLong));
    assert!(check_header_name(&"x".repeat(MAX_HEADER_NAME_BYTES)).is_ok());
}

#[test]
fn values_may_not_hold_line_breaks_or_other_controls() {
    for value in [
        "a\r\nX-Injected: 1",
        "line\nbreak",
        "cr\r",
        "nul\0",
        "del\u{7f}",
        "c1\u{85}",
    ] {
        assert_eq!(
            check_header_value(value),
            Err(HeaderRuleError::ControlCharacter),
            "{value:?}"
        );
    }
    for value in ["", "Bearer abc.def", "tab\there", "ünïcode", "a=b; c=d"] {
        assert!(check_header_value(value).is_ok(), "{value:?}");
    }
    let long = "v".repeat(MAX_HEADER_VALUE_BYTES + 1);
    assert_eq!(
        check_header_value(&long),
        Err(HeaderRuleError::ValueTooLong)
    );
}

#[test]
fn values_are_kept_out_of_debug_output() {
    let headers = CustomHeaders::from_doc(Some(&json!({"Authorization": "Bearer s3cr3t"})));
    let shown = format!("{headers:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert_eq!(headers.as_slice().len(), 1);
}

#[test]
fn a_stored_document_is_read_leniently() {
    let headers = CustomHeaders::from_doc(Some(&json!({
        "X-Good": "yes",
        "Host": "evil.example",
        "X-Number": 5,
        "X-Broken": "a\nb",
        "Bad Name": "v",
    })));
    let names: Vec<&str> = headers.as_slice().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-good"]);
    assert_eq!(
        CustomHeaders::from_doc(Some(&json!(["x"]))),
        CustomHeaders::default()
    );
    assert_eq!(CustomHeaders::from_doc(None), CustomHeaders::default());
    let many: serde_json::Map<String, Value> = (0..MAX_CUSTOM_HEADERS + 5)
        .map(|i| (format!("X-H{i:03}"), json!("v")))
        .collect();
    let kept = CustomHeaders::from_doc(Some(&Value::Object(many)));
    assert_eq!(kept.as_slice().len(), MAX_CUSTOM_HEADERS);
}
