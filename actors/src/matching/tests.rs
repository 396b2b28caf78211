use serde_json::json;

use super::*;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn the_hook_name_or_all_selects_the_event_type() {
    let p = map(json!({"call_id": "c"}));
    assert!(hook_accepts(
        &map(json!({"hook": "channel_create"})),
        "channel_create",
        &p
    ));
    assert!(hook_accepts(
        &map(json!({"hook": "all"})),
        "channel_destroy",
        &p
    ));
    assert!(!hook_accepts(
        &map(json!({"hook": "channel_answer"})),
        "channel_create",
        &p
    ));
}

#[test]
fn modifiers_are_anded_lists_are_ored_and_missing_keys_fail() {
    let doc = map(json!({"hook": "channel_create",
        "modifiers": {"call_direction": "inbound", "caller_id_number": ["1001", "1002"]}}));
    let ok = map(json!({"call_direction": "inbound", "caller_id_number": "1002"}));
    let wrong_dir = map(json!({"call_direction": "outbound", "caller_id_number": "1001"}));
    let not_listed = map(json!({"call_direction": "inbound", "caller_id_number": "2000"}));
    let missing = map(json!({"call_direction": "inbound"}));
    assert!(hook_accepts(&doc, "channel_create", &ok));
    assert!(!hook_accepts(&doc, "channel_create", &wrong_dir));
    assert!(!hook_accepts(&doc, "channel_create", &not_listed));
    assert!(!hook_accepts(&doc, "channel_create", &missing));
    // Scalars match by text, and an empty list accepts any present value.
    assert!(modifiers_match(
        &map(json!({"n": "1001"})),
        &map(json!({"n": 1001}))
    ));
    assert!(modifiers_match(
        &map(json!({"n": []})),
        &map(json!({"n": 5}))
    ));
    assert!(!modifiers_match(&map(json!({"n": []})), &map(json!({}))));
}

#[test]
fn internal_legs_are_dropped_only_when_asked() {
    let leg = map(json!({"is_internal_leg": true}));
    assert!(hook_accepts(
        &map(json!({"hook": "all"})),
        "channel_create",
        &leg
    ));
    assert!(hook_accepts(
        &map(json!({"hook": "all", "include_internal_legs": true})),
        "channel_create",
        &leg
    ));
    assert!(!hook_accepts(
        &map(json!({"hook": "all", "include_internal_legs": false})),
        "channel_create",
        &leg
    ));
    let external = map(json!({"is_internal_leg": false}));
    assert!(hook_accepts(
        &map(json!({"hook": "all", "include_internal_legs": false})),
        "channel_create",
        &external
    ));
}

#[test]
fn object_hooks_select_by_type_and_action_with_all() {
    let event = map(json!({"type": "device", "action": "doc_created"}));
    let hook =
        |t: &str, a: &str| map(json!({"hook": "object", "custom_data": {"type": t, "action": a}}));
    assert!(hook_accepts(
        &hook("device", "doc_created"),
        "object",
        &event
    ));
    assert!(hook_accepts(&hook("all", "all"), "object", &event));
    assert!(hook_accepts(&hook("all", "doc_created"), "object", &event));
    assert!(hook_accepts(&hook("device", "all"), "object", &event));
    assert!(!hook_accepts(&hook("user", "all"), "object", &event));
    assert!(!hook_accepts(&hook("all", "doc_deleted"), "object", &event));
    assert!(!hook_accepts(
        &map(json!({"hook": "object", "custom_data": {"x": "y"}})),
        "object",
        &event
    ));
    assert!(hook_accepts(
        &map(json!({"hook": "object"})),
        "object",
        &event
    ));
    assert!(hook_accepts(
        &map(json!({"hook": "all", "custom_data": {"type": "user"}})),
        "object",
        &event
    ));
}

#[test]
fn notification_hooks_select_by_event_name() {
    let event = map(json!({"event_name": "missed_call"}));
    let hook = |t: &str| map(json!({"hook": "notifications", "custom_data": {"type": t}}));
    assert!(hook_accepts(&hook("missed_call"), "notifications", &event));
    assert!(hook_accepts(&hook("all"), "notifications", &event));
    assert!(!hook_accepts(
        &hook("voicemail_new"),
        "notifications",
        &event
    ));
}
