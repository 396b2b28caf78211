use serde_json::{json, Map, Value};

use super::*;

/// Each schema rule's detail, written out: these are Kazoo's shapes, pinned.
#[test]
fn each_rule_has_kazoos_message_and_fields() {
    let doc: Map<String, Value> = json!({"a": 1}).as_object().cloned().unwrap_or_default();
    let cases = [
        (
            Violation::required(),
            "required",
            json!({"message": "Field is required but missing"}),
        ),
        (
            Violation::required_in(&doc),
            "required",
            json!({"message": "Field is required but missing", "value": {"a": 1}}),
        ),
        (
            Violation::wrong_type("string", &json!(5)),
            "type",
            json!({"message": "Value did not match type(s): string", "target": "string", "value": 5}),
        ),
        (
            Violation::not_in_enum(&["get", "post"], &json!("x")),
            "enum",
            json!({"message": "Value not found in enumerated list of values", "target": ["get", "post"], "value": "x"}),
        ),
        (
            Violation::wrong_format("x", "uri"),
            "wrong_format",
            json!({"message": "Field is not in the correct format", "value": "x", "format": "uri"}),
        ),
        (
            Violation::min_length(1, ""),
            "minLength",
            json!({"message": "String must be at least 1 characters", "target": 1, "value": ""}),
        ),
        (
            Violation::max_length(128).with_cause(130),
            "maxLength",
            json!({"message": "String must not be more than 128 characters", "target": 128, "cause": 130}),
        ),
        (
            Violation::minimum(0, -1),
            "minimum",
            json!({"message": "Value must be at least 0", "target": 0, "value": -1}),
        ),
        (
            Violation::maximum(4, 9),
            "maximum",
            json!({"message": "Value must be at most 4", "target": 4, "value": 9}),
        ),
    ];
    for (violation, rule, detail) in cases {
        assert_eq!(violation.rule, rule);
        assert_eq!(violation.detail, detail, "{rule}");
    }
}

#[test]
fn errors_are_keyed_by_path_then_rule() {
    let mut errors = Errors::default();
    assert_eq!(errors.clone().into_result(), Ok(()));
    errors.add("name", Violation::required());
    errors.add("name", Violation::wrong_type("string", &json!(1)));
    errors.add("uri", Violation::max_length(10));
    let map = Value::Object(errors.clone().into_map());
    assert_eq!(
        map["name"]["required"]["message"],
        "Field is required but missing"
    );
    assert_eq!(map["name"]["type"]["target"], "string");
    assert_eq!(map["uri"]["maxLength"]["target"], 10);
    assert_eq!(errors.clone().into_result(), Err(errors));
    assert_eq!(
        Errors::one("data", Violation::wrong_type("object", &json!([]))).into_map()["data"]["type"]
            ["value"],
        json!([])
    );
}
