use serde_json::json;

use super::*;

#[test]
fn a_good_event_keeps_its_whole_object_as_payload() {
    let e = validate_event(
        json!({"hook_event": "channel_create", "account_id": "0123456789abcdef0123456789abcdef",
        "event_id": "p-1", "call_id": "c"}),
    )
    .unwrap();
    assert_eq!(e.event_id.unwrap().as_str(), "p-1");
    assert_eq!(e.payload["call_id"], "c");
}

#[test]
fn every_problem_is_named() {
    let problems =
        validate_event(json!({"hook_event": "all", "account_id": 5, "event_id": "bad id"}))
            .unwrap_err();
    let named: Vec<(&str, &str)> = problems.iter().map(|p| (p.field, p.rule)).collect();
    assert_eq!(
        named,
        vec![
            ("hook_event", "enum"),
            ("account_id", "type"),
            ("event_id", "wrong_format")
        ]
    );
    let problems = validate_event(json!([1])).unwrap_err();
    assert_eq!(problems[0].rule, "type");
    let problems = validate_event(json!({})).unwrap_err();
    assert_eq!(problems.len(), 2);
}

/// The details are Kazoo's validation shapes, written out; the API shows them as they are.
#[test]
fn each_problem_carries_kazoos_detail() {
    let detail = |value: Value| -> Vec<(&'static str, &'static str, Value)> {
        validate_event(value)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.field, p.rule, p.detail))
            .collect()
    };
    assert_eq!(
        detail(json!("x")),
        vec![(
            "",
            "type",
            json!({"message": "Value did not match type(s): object", "target": "object", "value": "x"})
        )]
    );
    assert_eq!(
        detail(json!({"hook_event": "nope", "event_id": null})),
        vec![
            (
                "hook_event",
                "enum",
                json!({"message": "Value not found in enumerated list of values", "target": catalog::hook_ids(), "value": "nope"})
            ),
            (
                "account_id",
                "required",
                json!({"message": "Field is required but missing"})
            ),
        ]
    );
    assert_eq!(
        detail(json!({"hook_event": null, "account_id": "x", "event_id": "bad id"})),
        vec![
            (
                "hook_event",
                "required",
                json!({"message": "Field is required but missing"})
            ),
            (
                "account_id",
                "wrong_format",
                json!({"message": "Field is not in the correct format", "value": "x", "format": "32 lowercase hex characters"})
            ),
            (
                "event_id",
                "wrong_format",
                json!({"message": "Field is not in the correct format", "value": "bad id", "format": "1 to 64 of [A-Za-z0-9_-]"})
            ),
        ]
    );
    assert_eq!(
        detail(json!({"hook_event": 1, "account_id": [], "event_id": {}})),
        vec![
            (
                "hook_event",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": 1})
            ),
            (
                "account_id",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": []})
            ),
            (
                "event_id",
                "type",
                json!({"message": "Value did not match type(s): string", "target": "string", "value": {}})
            ),
        ]
    );
}

/// Property test of the validator (the `fuzz/` crate drives it with libFuzzer): any
/// JSON either passes with a known hook and well-formed ids, or names its problems.
#[test]
fn random_events_are_validated_without_panics() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        const KEYS: &[&str] = &["hook_event", "account_id", "event_id", "call_id", "", "x"];
        const STRINGS: &[&str] = &[
            "channel_create",
            "object",
            "all",
            "0123456789abcdef0123456789abcdef",
            "0123456789ABCDEF0123456789abcdef",
            "ev-1",
            "bad id",
            "",
        ];
        match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => json!(rng.random::<i64>()),
            3 | 4 if depth == 0 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
            3 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
            4 => json!(rng.random::<f64>()),
            5 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| {
                        (
                            KEYS[rng.random_range(0..KEYS.len())].to_owned(),
                            random_value(rng, depth - 1),
                        )
                    })
                    .collect(),
            ),
        }
    }
    let mut rng = StdRng::seed_from_u64(3);
    let mut accepted = 0;
    for i in 0..20_000 {
        let mut value = random_value(&mut rng, 3);
        if i % 2 == 0 {
            // Half start from the event's own fields, each drawn from plausible and
            // broken values, so valid events are common too.
            let mut map = Map::new();
            for key in ["hook_event", "account_id", "event_id"] {
                if rng.random_bool(0.9) {
                    map.insert(key.to_owned(), random_value(&mut rng, 0));
                }
            }
            map.insert("extra".to_owned(), value);
            value = Value::Object(map);
        }
        match validate_event(value) {
            Ok(event) => {
                accepted += 1;
                assert!(catalog::hook_ids().contains(&event.hook_event.as_str()));
                assert_eq!(event.payload["account_id"], event.account_id.as_str());
            }
            Err(problems) => assert!(!problems.is_empty()),
        }
    }
    assert!(accepted > 0, "the generator never made a valid event");
}
