use serde_json::json;

use super::*;

const PUBLIC: Validator = Validator {
    allow_private_targets: false,
    super_admin: false,
};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn details(result: Result<Map<String, Value>, ApiError>) -> Value {
    match result {
        Err(ApiError::Validation(d)) => Value::Object(d),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_minimal_hook_gets_every_default() {
    let doc = PUBLIC
        .webhook(obj(
            json!({"name": "n", "uri": "http://example.com/h", "hook": "channel_create"}),
        ))
        .unwrap();
    assert_eq!(
        Value::Object(doc),
        json!({"name": "n", "uri": "http://example.com/h", "hook": "channel_create",
               "http_verb": "post", "format": "form-data", "retries": 2, "enabled": true,
               "include_internal_legs": true, "version": "v1"})
    );
}

#[test]
fn missing_required_fields_are_reported_each() {
    let d = details(PUBLIC.webhook(obj(json!({}))));
    for field in ["name", "uri", "hook"] {
        assert_eq!(
            d[field]["required"]["message"], "Field is required but missing",
            "{field}"
        );
    }
}

#[test]
fn enums_types_and_bounds_use_kazoo_messages() {
    let d = details(PUBLIC.webhook(obj(json!({
        "name": 5, "uri": "http://example.com", "hook": "nope", "http_verb": "delete",
        "format": "xml", "retries": 9, "enabled": "maybe", "custom_data": {"a": 1}
    }))));
    assert_eq!(
        d["name"]["type"]["message"],
        "Value did not match type(s): string"
    );
    assert_eq!(
        d["hook"]["enum"]["message"],
        "Value not found in enumerated list of values"
    );
    assert!(d["hook"]["enum"]["target"]
        .as_array()
        .unwrap()
        .contains(&json!("all")));
    assert_eq!(
        d["http_verb"]["enum"]["target"],
        json!(["get", "post", "put"])
    );
    assert_eq!(d["format"]["enum"]["value"], "xml");
    assert_eq!(
        d["retries"],
        json!({"maximum": {"message": "Value must be at most 4", "target": 4, "value": 9}})
    );
    assert_eq!(d["enabled"]["type"]["target"], "boolean");
    assert_eq!(
        d["custom_data.a"]["type"]["message"],
        "Value did not match type(s): string"
    );
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "http://example.com", "hook": "all", "retries": -1}),
    )));
    assert_eq!(
        d["retries"]["minimum"]["message"],
        "Value must be at least 0"
    );
}

#[test]
fn obvious_types_are_coerced() {
    let doc = PUBLIC
        .webhook(obj(
            json!({"name": "n", "uri": "http://example.com", "hook": "all",
                            "retries": "3", "enabled": "false"}),
        ))
        .unwrap();
    assert_eq!(doc["retries"], 3);
    assert_eq!(doc["enabled"], false);
}

#[test]
fn uri_rules_refuse_private_and_malformed_targets() {
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "http://127.0.0.1:9/x", "hook": "all"}),
    )));
    assert_eq!(d["uri"]["error"]["message"], "invalid client URL");
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "ftp://example.com", "hook": "all"}),
    )));
    assert_eq!(d["uri"]["error"]["message"], "invalid client URL");
    let d = details(PUBLIC.webhook(obj(json!({"name": "n", "uri": "nope", "hook": "all"}))));
    assert_eq!(
        d["uri"]["wrong_format"]["message"],
        "Field is not in the correct format"
    );
    let private = Validator {
        allow_private_targets: true,
        ..PUBLIC
    };
    assert!(private
        .webhook(obj(
            json!({"name": "n", "uri": "http://127.0.0.1:9/x", "hook": "all"})
        ))
        .is_ok());
}

#[test]
fn object_and_notification_hooks_need_their_selections() {
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "http://e.com", "hook": "object"}),
    )));
    assert_eq!(
        d["custom_data.type"]["required"]["message"],
        "missing required modifier"
    );
    assert_eq!(
        d["custom_data.action"]["required"]["message"],
        "missing required modifier"
    );
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "http://e.com", "hook": "object",
        "custom_data": {"type": "spaceship", "action": "all"}}),
    )));
    assert_eq!(d["custom_data.type"]["enum"]["cause"], "spaceship");
    assert!(d.get("custom_data.action").is_none());
    assert!(PUBLIC
        .webhook(obj(
            json!({"name": "n", "uri": "http://e.com", "hook": "object",
            "custom_data": {"type": "device", "action": "doc_created"}})
        ))
        .is_ok());
    let d = details(PUBLIC.webhook(obj(
        json!({"name": "n", "uri": "http://e.com", "hook": "notifications",
        "custom_data": {"type": "bogus"}}),
    )));
    let target = d["custom_data.type"]["enum"]["target"]
        .as_array()
        .unwrap()
        .clone();
    assert!(target.contains(&json!("missed_call")));
    assert!(
        !target.contains(&json!("webhook_disabled")),
        "hidden from non-admins"
    );
    // Hidden values are still accepted.
    assert!(PUBLIC
        .webhook(obj(
            json!({"name": "n", "uri": "http://e.com", "hook": "notifications",
            "custom_data": {"type": "webhook_disabled"}})
        ))
        .is_ok());
}

#[test]
fn private_and_computed_fields_are_not_stored() {
    let doc = PUBLIC
        .webhook(obj(
            json!({"name": "n", "uri": "http://e.com", "hook": "all", "id": "x",
            "pvt_account_id": "y", "_rev": "z", "disable_reason": "w", "extra": {"kept": true}}),
        ))
        .unwrap();
    assert!(doc.get("id").is_none() && doc.get("pvt_account_id").is_none());
    assert!(doc.get("_rev").is_none() && doc.get("disable_reason").is_none());
    assert_eq!(doc["extra"], json!({"kept": true}));
}

#[test]
fn merge_patch_merges_recursively_and_null_removes() {
    let mut doc = obj(json!({"a": 1, "b": {"c": 1, "d": 2}, "e": 3}));
    merge_patch(
        &mut doc,
        obj(json!({"a": null, "b": {"c": null, "x": 9}, "f": [1]})),
    );
    assert_eq!(
        Value::Object(doc),
        json!({"b": {"d": 2, "x": 9}, "e": 3, "f": [1]})
    );
}

/// Whole details, written out: the shapes Kazoo's clients parse, pinned.
#[test]
fn details_are_kazoos_shapes_in_full() {
    let long_name = "n".repeat(MAX_NAME_CHARS + 2);
    let long_uri = format!("http://example.com/{}", "u".repeat(MAX_URI_CHARS));
    let d = details(PUBLIC.webhook(obj(json!({
        "name": long_name, "uri": long_uri, "hook": "nope", "http_verb": 1, "retries": -1,
    }))));
    assert_eq!(
        d["name"],
        json!({"maxLength": {"message": "String must not be more than 128 characters", "target": 128, "cause": 130}})
    );
    assert_eq!(
        d["uri"],
        json!({"maxLength": {"message": "String must not be more than 2048 characters", "target": 2048}})
    );
    assert_eq!(
        d["hook"],
        json!({"enum": {"message": "Value not found in enumerated list of values", "target": hook_enum(), "value": "nope"}})
    );
    assert_eq!(
        d["http_verb"],
        json!({"type": {"message": "Value did not match type(s): string", "target": "string", "value": 1}})
    );
    assert_eq!(
        d["retries"],
        json!({"minimum": {"message": "Value must be at least 0", "target": 0, "value": -1}})
    );
    let d = details(PUBLIC.webhook(obj(json!({"name": "a\u{1}b", "hook": "all"}))));
    assert_eq!(
        d["name"],
        json!({"wrong_format": {"message": "Field is not in the correct format", "value": "a\u{1}b", "format": "text without control characters"}})
    );
    assert_eq!(
        d["uri"],
        json!({"required": {"message": "Field is required but missing", "value": {"name": "a\u{1}b", "hook": "all"}}})
    );
    let d = details(PUBLIC.webhook(obj(json!({"name": "n", "uri": "nope", "hook": "all"}))));
    assert_eq!(
        d["uri"],
        json!({"wrong_format": {"message": "Field is not in the correct format", "value": "nope", "format": "uri"}})
    );
    match require_object(json!([1])) {
        Err(ApiError::Validation(d)) => assert_eq!(
            Value::Object(d),
            json!({"data": {"type": {"message": "Value did not match type(s): object", "target": "object", "value": [1]}}})
        ),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn kazoo_5_fields_are_stored_as_given() {
    let doc = PUBLIC
        .webhook(obj(json!({
            "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
            "version": "v2",
            "custom_request_headers": {"Authorization": "Bearer t", "X-Tenant.Id": "7"},
            "security_settings": {"sha256_key": "kazoo-key", "other": 1},
        })))
        .unwrap();
    assert_eq!(doc["version"], "v2");
    assert_eq!(
        doc["custom_request_headers"],
        json!({"Authorization": "Bearer t", "X-Tenant.Id": "7"})
    );
    assert_eq!(
        doc["security_settings"],
        json!({"sha256_key": "kazoo-key", "other": 1})
    );
}

#[test]
fn the_daemons_own_headers_are_refused_by_name() {
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "custom_request_headers": {"Host": "x", "webhook-signature": "v1,x", "X-Event-ID": "e",
                                   "X-Ok": "fine"},
    }))));
    for name in ["Host", "webhook-signature", "X-Event-ID"] {
        let detail = &d[format!("custom_request_headers.{name}")]["disallow"];
        assert_eq!(
            detail["message"], "Header is set by the daemon and cannot be overridden",
            "{name}: {d}"
        );
        assert_eq!(detail["value"], name);
    }
    assert!(d.get("custom_request_headers.X-Ok").is_none(), "{d}");
}

#[test]
fn header_names_values_and_counts_are_checked_with_kazoos_shapes() {
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "custom_request_headers": {"Bad Name": "v", "X-Crlf": "a\r\nX-Injected: 1",
                                   "X-Num": 5, "X.Dotted": "a\nb"},
    }))));
    assert_eq!(
        d["custom_request_headers.Bad Name"]["pattern"]["value"],
        "Bad Name"
    );
    assert_eq!(
        d["custom_request_headers.X-Crlf"]["wrong_format"]["message"],
        "Field is not in the correct format"
    );
    assert_eq!(
        d["custom_request_headers.X-Num"]["type"]["message"],
        "Value did not match type(s): string"
    );
    assert!(
        d["custom_request_headers.X%2EDotted"]["wrong_format"].is_object(),
        "{d}"
    );

    let many: Map<String, Value> = (0..40).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "custom_request_headers": many,
    }))));
    assert_eq!(d["custom_request_headers"]["maxProperties"]["target"], 32);
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "custom_request_headers": ["X-A"],
    }))));
    assert_eq!(
        d["custom_request_headers"]["type"]["message"],
        "Value did not match type(s): object"
    );
}

#[test]
fn version_and_security_settings_are_typed() {
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "version": "v3", "security_settings": {"sha256_key": 42},
    }))));
    assert_eq!(
        d["version"]["enum"],
        json!({"message": "Value not found in enumerated list of values",
               "target": ["v1", "v2"], "value": "v3"})
    );
    assert_eq!(
        d["security_settings.sha256_key"]["type"]["message"],
        "Value did not match type(s): string"
    );
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "security_settings": "key",
    }))));
    assert!(d["security_settings"]["type"].is_object(), "{d}");
    let long = "k".repeat(2000);
    let d = details(PUBLIC.webhook(obj(json!({
        "name": "n", "uri": "http://example.com/h", "hook": "channel_create",
        "security_settings": {"sha256_key": long},
    }))));
    let detail = &d["security_settings.sha256_key"]["maxLength"];
    assert_eq!(detail["cause"], 2000);
    assert!(detail.get("value").is_none(), "a key is not echoed: {d}");
}
