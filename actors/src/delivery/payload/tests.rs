use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use super::*;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

#[test]
fn payload_gets_hook_event() {
    let event = obj(json!({"call_id": "c1", "account_id": "a1"}));
    let payload = build_payload(&event, "channel_create", None, "channel_create");
    assert_eq!(
        Value::Object(payload.to_map()),
        json!({"call_id": "c1", "account_id": "a1", "hook_event": "channel_create"})
    );
}

#[test]
fn custom_data_merges_shallowly_and_overwrites() {
    let event = obj(json!({"call_id": "c1", "vars": {"a": 1, "b": 2}, "keep": true}));
    let custom = obj(json!({"vars": {"c": 3}, "extra": "x", "call_id": "mine"}));
    let payload = build_payload(&event, "channel_answer", Some(&custom), "channel_answer");
    assert_eq!(
        Value::Object(payload.to_map()),
        json!({
            "call_id": "mine",
            "vars": {"c": 3},
            "keep": true,
            "extra": "x",
            "hook_event": "channel_answer"
        })
    );
}

#[test]
fn custom_data_may_overwrite_hook_event_as_in_kazoo() {
    let event = obj(json!({}));
    let custom = obj(json!({"hook_event": "other"}));
    let payload = build_payload(&event, "parking", Some(&custom), "parking");
    assert_eq!(payload.get("hook_event"), Some(&json!("other")));
}

#[test]
fn object_and_notifications_hooks_do_not_merge_selection_keys() {
    let event = obj(json!({"type": "user", "action": "doc_edited", "id": "u1"}));
    let custom = obj(json!({"type": "all", "action": "all", "team": "blue"}));
    for kind in ["object", "notifications"] {
        let payload = build_payload(&event, "object", Some(&custom), kind);
        assert_eq!(payload.get("type"), Some(&json!("user")), "{kind}");
        assert_eq!(payload.get("action"), Some(&json!("doc_edited")), "{kind}");
        assert_eq!(payload.get("team"), Some(&json!("blue")), "{kind}");
    }
    // Other kinds (here `all`) merge every key.
    let payload = build_payload(&event, "object", Some(&custom), "all");
    assert_eq!(payload.get("type"), Some(&json!("all")));
    assert_eq!(payload.get("action"), Some(&json!("all")));
}

#[test]
fn selection_keys_absent_from_event_are_not_added() {
    let event = obj(json!({"event_name": "voicemail_new"}));
    let custom = obj(json!({"type": "voicemail_new"}));
    let payload = build_payload(&event, "notifications", Some(&custom), "notifications");
    assert!(payload.get("type").is_none());
}

/// The borrowed payload is exactly the copy-and-merge the payload rule describes, field
/// order included (JSON and form bodies follow it), over random events and custom data.
#[test]
fn borrowed_payload_matches_copy_and_merge() {
    use rand::Rng;
    fn reference(
        event: &Map<String, Value>,
        hook_event: &str,
        custom: Option<&Map<String, Value>>,
        kind: &str,
    ) -> Map<String, Value> {
        let mut out = event.clone();
        out.insert("hook_event".into(), json!(hook_event));
        for (k, v) in custom.into_iter().flatten() {
            if ["object", "notifications"].contains(&kind)
                && ["type", "action"].contains(&k.as_str())
            {
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
        out
    }
    const KEYS: &[&str] = &[
        "a",
        "action",
        "call_id",
        "hook_event",
        "type",
        "z",
        "",
        "Zed",
    ];
    let mut rng = StdRng::seed_from_u64(11);
    let random_map = |rng: &mut StdRng| -> Map<String, Value> {
        (0..rng.random_range(0..6))
            .map(|_| {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                (key.to_owned(), json!(rng.random_range(0..3)))
            })
            .collect()
    };
    for _ in 0..2_000 {
        let hook_event = ["channel_create", "parking"][rng.random_range(0..2)];
        let mut event = random_map(&mut rng);
        if rng.random_bool(0.5) {
            // As ingested events carry it: then nothing needs to be set over it.
            event.insert("hook_event".into(), json!(hook_event));
        }
        let custom = random_map(&mut rng);
        let custom = rng.random_bool(0.7).then_some(&custom);
        let kind = ["object", "notifications", "all", "parking"][rng.random_range(0..4)];
        let view = build_payload(&event, hook_event, custom, kind);
        let expected = reference(&event, hook_event, custom, kind);
        assert_eq!(view.to_map(), expected);
        assert_eq!(
            serde_json::to_string(&view).expect("json"),
            serde_json::to_string(&expected).expect("json")
        );
        assert_eq!(
            crate::form::form_encode_fields(view.fields()),
            crate::form::form_encode(&expected)
        );
        for key in KEYS {
            assert_eq!(view.get(key), expected.get(*key), "{key}");
        }
    }
}
