use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

const CHANNEL_HOOKS: &[&str] = &[
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
    "channel_hold",
    "channel_unhold",
];

fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn str_field<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str)
}

fn samples_of(id: &str) -> &'static [Value] {
    samples(id).unwrap_or_else(|| panic!("sample id {id} must be known"))
}

#[test]
fn embedded_json_files_parse() {
    for (id, text) in SAMPLE_FILES {
        let parsed: Result<Vec<Value>, _> = serde_json::from_str(text);
        assert!(parsed.is_ok(), "{id}: {parsed:?}");
    }
    assert!(!available_hooks().is_empty());
}

#[test]
fn sample_ids_are_sorted_and_match_the_files() {
    let ids = sample_ids();
    assert_eq!(ids.len(), 9);
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    assert_eq!(ids, sorted.as_slice());
    let files: Vec<&str> = SAMPLE_FILES.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, files.as_slice());
    for id in ids {
        assert!(id.starts_with("webhooks_"), "{id}");
    }
}

#[test]
fn every_sample_id_loads_non_empty_objects() {
    for id in sample_ids() {
        let payloads = samples_of(id);
        assert!(!payloads.is_empty(), "{id} has no samples");
        for payload in payloads {
            assert!(payload.is_object(), "{id}: {payload}");
            let account = str_field(payload, "account_id").unwrap_or_default();
            assert!(is_hex_id(account), "{id}: bad account_id in {payload}");
        }
    }
}

#[test]
fn singular_aliases_resolve_to_the_same_samples() {
    for id in sample_ids() {
        let suffix = id.strip_prefix("webhooks_").expect("prefixed");
        let alias = format!("webhook_{suffix}");
        let by_alias = samples(&alias).expect("alias is known");
        assert!(std::ptr::eq(by_alias, samples_of(id)), "{alias}");
    }
    assert!(samples("webhook_notifications").is_some());
    assert!(samples("webhook_object").is_some());
}

#[test]
fn unknown_sample_ids_are_none() {
    for id in [
        "",
        "webhooks_",
        "webhook_",
        "webhooks_sms",
        "webhooks_mms",
        "webhooks_all",
        "channel_create",
        "notifications",
        "webhooks_skel",
        "WEBHOOKS_OBJECT",
        "webhookss_object",
        "webhooks_webhooks_object",
        "xwebhooks_object",
    ] {
        assert!(samples(id).is_none(), "{id:?} must be unknown");
    }
}

#[test]
fn available_hooks_match_hook_ids() {
    let listed: Vec<&str> = available_hooks()
        .iter()
        .map(|item| str_field(item, "id").expect("every item has an id"))
        .collect();
    assert_eq!(listed, hook_ids());
    assert_eq!(hook_ids().len(), 9);
}

#[test]
fn available_hook_items_have_the_kazoo_shape() {
    for item in available_hooks() {
        let obj = item.as_object().expect("item is an object");
        for key in obj.keys() {
            assert!(
                ["id", "name", "description", "modifiers"].contains(&key.as_str()),
                "unexpected key {key} in {item}"
            );
        }
        assert!(!str_field(item, "name").unwrap_or_default().is_empty());
        assert!(!str_field(item, "description")
            .unwrap_or_default()
            .is_empty());
        let id = str_field(item, "id").unwrap_or_default();
        let has_modifiers = item.get("modifiers").is_some();
        assert_eq!(
            has_modifiers,
            id == "object" || id == "notifications",
            "{id}"
        );
    }
    let names: Vec<&str> = available_hooks()
        .iter()
        .filter_map(|item| str_field(item, "name"))
        .collect();
    assert!(names.contains(&"Channel Create"));
    assert!(names.contains(&"Channel Hold"));
    assert!(names.contains(&"Channel Unhold"));
    assert!(names.contains(&"Call Parking"));
}

#[test]
fn known_hooks_are_the_nine_and_all() {
    for hook in hook_ids() {
        assert!(is_known_hook(hook), "{hook}");
    }
    assert!(is_known_hook("all"));
    for hook in [
        "",
        "sms",
        "mms",
        "callflow",
        "conference",
        "Object",
        "channel",
    ] {
        assert!(!is_known_hook(hook), "{hook:?}");
    }
}

#[test]
fn object_modifiers_are_as_kazoo_master() {
    let object = available_hook("object").expect("object hook");
    let type_modifier = &object["modifiers"]["type"];
    assert_eq!(type_modifier["type"], "array");
    assert_eq!(
        type_modifier["description"],
        "A list of object types to handle"
    );
    let action_modifier = &object["modifiers"]["action"];
    assert_eq!(action_modifier["type"], "array");
    assert_eq!(
        action_modifier["description"],
        "A list of object actions to handle"
    );

    assert_eq!(
        object_types(),
        [
            "all",
            "account",
            "callflow",
            "device",
            "faxbox",
            "media",
            "user",
            "vmbox",
            "fax",
            "mailbox_message",
            "call_recording",
        ]
    );
    assert_eq!(
        object_actions(),
        ["all", "doc_created", "doc_edited", "doc_deleted"]
    );
}

#[test]
fn notification_modifier_items_are_complete() {
    let notifications = available_hook("notifications").expect("notifications hook");
    let type_modifier = &notifications["modifiers"]["type"];
    assert_eq!(type_modifier["type"], "object");
    assert!(type_modifier["description"].is_string());
    let items = type_modifier["items"].as_object().expect("items object");
    for (name, item) in items {
        assert!(
            !str_field(item, "friendly_name")
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
        assert!(
            !str_field(item, "description")
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
    assert_eq!(items["all"]["friendly_name"], "All");

    let types = notification_types();
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    assert_eq!(types, sorted.as_slice());
    assert_eq!(types.len(), items.len());
    // Every event name of the behaviour spec (section 2.3), plus "all".
    for name in [
        "account_zone_change",
        "bill_reminder",
        "low_balance",
        "new_account",
        "service_added",
        "topup",
        "transaction",
        "inbound_fax",
        "inbound_fax_error",
        "outbound_fax",
        "outbound_fax_error",
        "outbound_smtp_fax_error",
        "cnam_request",
        "port_request",
        "port_cancel",
        "port_comment",
        "port_pending",
        "port_rejected",
        "port_scheduled",
        "port_unconfirmed",
        "ported",
        "denied_emergency_bridge",
        "emergency_bridge",
        "deregister",
        "first_occurrence",
        "register",
        "missed_call",
        "system_alert",
        "customer_update",
        "new_user",
        "password_recovery",
        "voicemail_full",
        "voicemail_new",
        "voicemail_saved",
        "webhook",
        "webhook_disabled",
        "cf_notification",
        "number_feature_manual_action",
        "all",
    ] {
        assert!(types.contains(&name), "{name} missing");
    }
    assert_eq!(types.len(), 39);
    assert!(!types.contains(&"skel"));
    assert!(!types.contains(&"notify_update"));
}

#[test]
fn every_notification_type_has_exactly_one_sample() {
    let payloads = samples_of("webhooks_notifications");
    for name in notification_types().iter().filter(|n| **n != "all") {
        let count = payloads
            .iter()
            .filter(|p| str_field(p, "event_name") == Some(*name))
            .count();
        assert_eq!(count, 1, "{name}");
    }
    assert_eq!(payloads.len(), notification_types().len() - 1);
}

#[test]
fn notification_samples_carry_the_common_fields() {
    for payload in samples_of("webhooks_notifications") {
        for key in [
            "app_name",
            "app_version",
            "event_name",
            "msg_id",
            "node",
            "server_id",
            "system_log_id",
            "account_id",
        ] {
            assert!(payload[key].is_string(), "{key} in {payload}");
        }
        assert_eq!(payload["event_category"], "notification");
    }
}

#[test]
fn notification_samples_use_the_spec_types() {
    let payloads = samples_of("webhooks_notifications");
    let by_name = |name: &str| {
        payloads
            .iter()
            .find(|p| str_field(p, "event_name") == Some(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    let missed = by_name("missed_call");
    assert!(missed["call_bridged"].is_boolean());
    assert!(missed["message_left"].is_boolean());
    assert!(missed["notify"].is_object());
    assert!(missed["timestamp"].is_u64());
    assert!(missed["to"].is_array());

    let vm = by_name("voicemail_new");
    assert!(vm["voicemail_length"].is_u64());
    assert!(vm["voicemail_timestamp"].is_u64());
    assert!(vm["voicemail_transcription"].is_string());
    assert!(by_name("voicemail_saved")
        .get("voicemail_transcription")
        .is_none());

    assert!(by_name("low_balance")["current_balance"].is_number());
    assert!(is_hex_id(
        str_field(by_name("webhook_disabled"), "hook_id").unwrap_or_default()
    ));
    for name in ["register", "deregister"] {
        let reg = by_name(name);
        assert!(reg["expires"].is_u64(), "{name}");
        assert!(reg["event_timestamp"].is_u64(), "{name}");
        assert!(reg["suppress_unregister_notify"].is_boolean(), "{name}");
    }
    let new_account = by_name("new_account");
    for key in [
        "account_api_key",
        "account_db",
        "account_name",
        "account_realm",
    ] {
        assert!(new_account[key].is_string(), "{key}");
    }
    let fax = by_name("inbound_fax");
    assert!(fax["fax_info"].is_object());
    assert!(fax["fax_timestamp"].is_u64());
    assert!(by_name("inbound_fax_error")["fax_error"].is_string());
    let port = by_name("port_request");
    assert!(port["number"].is_array());
    assert!(port["port"].is_object());
    assert!(port["local_number"].is_boolean());
    assert!(by_name("port_rejected")["reason"].is_object());
    assert!(by_name("port_comment")["comment"].is_object());
    let alert = by_name("system_alert");
    assert!(alert["details"].is_object());
    assert!(alert["message"].is_string());
    assert!(by_name("topup")["success"].is_boolean());
    assert!(by_name("transaction")["service_plan"].is_object());
    assert!(by_name("voicemail_full")["max_message_count"].is_u64());
    assert!(by_name("webhook")["hook"].is_object());
}

#[test]
fn channel_samples_name_their_hook_and_carry_the_base_fields() {
    for hook in CHANNEL_HOOKS {
        let payloads = samples_of(&format!("webhooks_{hook}"));
        assert!((1..=3).contains(&payloads.len()), "{hook}");
        for payload in payloads {
            assert_eq!(str_field(payload, "hook_event"), Some(*hook));
            for key in [
                "call_id",
                "caller_id_name",
                "caller_id_number",
                "callee_id_number",
                "from",
                "to",
                "request",
                "reseller_id",
            ] {
                assert!(payload[key].is_string(), "{hook}: {key}");
            }
            for key in [
                "is_internal_leg",
                "local_resource_used",
                "emergency_resource_used",
                "call_forwarded",
            ] {
                assert!(payload[key].is_boolean(), "{hook}: {key}");
            }
            for key in ["from", "to", "request"] {
                assert!(str_field(payload, key).unwrap_or_default().contains('@'));
            }
            let direction = str_field(payload, "call_direction").unwrap_or_default();
            assert!(direction == "inbound" || direction == "outbound", "{hook}");
            let ts = str_field(payload, "timestamp").unwrap_or_default();
            assert!(
                ts.len() == 11 && ts.bytes().all(|b| b.is_ascii_digit()),
                "{ts}"
            );

            let bridge_only = payload.get("original_number").is_some()
                || payload.get("other_leg_destination_number").is_some();
            assert_eq!(bridge_only, *hook == "channel_bridge", "{hook}");
            let destroy_only = payload.get("hangup_cause").is_some();
            assert_eq!(destroy_only, *hook == "channel_destroy", "{hook}");
        }
    }
}

#[test]
fn channel_bridge_and_destroy_have_their_extra_fields() {
    for payload in samples_of("webhooks_channel_bridge") {
        assert!(payload["original_number"].is_string());
        assert!(payload["other_leg_destination_number"].is_string());
        assert!(payload["other_leg_call_id"].is_string());
    }
    for payload in samples_of("webhooks_channel_destroy") {
        assert!(payload["hangup_cause"].is_string());
        assert!(str_field(payload, "hangup_code")
            .unwrap_or_default()
            .starts_with("sip:"));
        for key in ["duration_seconds", "ringing_seconds", "billing_seconds"] {
            assert!(payload[key].is_u64(), "{key}");
        }
    }
}

#[test]
fn channel_create_samples_vary_direction_and_leg() {
    let payloads = samples_of("webhooks_channel_create");
    let inbound = payloads
        .iter()
        .filter(|p| str_field(p, "call_direction") == Some("inbound"))
        .count();
    assert!(inbound > 0 && inbound < payloads.len());
    assert!(payloads
        .iter()
        .any(|p| p["is_internal_leg"] == Value::Bool(true)));
    assert!(payloads
        .iter()
        .any(|p| p["is_internal_leg"] == Value::Bool(false)));
}

#[test]
fn object_samples_cover_every_action_and_filtering_narrows() {
    let payloads = samples_of("webhooks_object");
    for payload in payloads {
        let obj = payload.as_object().expect("object payload");
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["id", "account_id", "action", "type"]));
        assert!(is_hex_id(str_field(payload, "id").unwrap_or_default()));
        let ty = str_field(payload, "type").unwrap_or_default();
        assert!(ty != "all" && object_types().contains(&ty), "{ty}");
        let action = str_field(payload, "action").unwrap_or_default();
        assert!(
            action != "all" && object_actions().contains(&action),
            "{action}"
        );
    }
    for action in object_actions().iter().filter(|a| **a != "all") {
        let count = payloads
            .iter()
            .filter(|p| str_field(p, "action") == Some(*action))
            .count();
        assert!(count > 0 && count < payloads.len(), "{action}");
    }
}

#[test]
fn parking_samples_keep_kazoos_capital_n() {
    let payloads = samples_of("webhooks_parking");
    let events: Vec<&str> = payloads
        .iter()
        .filter_map(|p| str_field(p, "event_name"))
        .collect();
    assert_eq!(events, ["PARK_PARKED", "PARK_RETRIEVED", "PARK_ABANDONED"]);
    for payload in payloads {
        for key in [
            "call_id",
            "callee_id_name",
            "callee_id_number",
            "caller_id_name",
            "caller_id_Number",
        ] {
            assert!(payload[key].is_string(), "{key}");
        }
        assert!(payload["parking_slot"].is_u64());
    }
}

#[test]
fn ids_in_samples_are_lowercase_hex() {
    let id_keys = [
        "account_id",
        "reseller_id",
        "owner_id",
        "authorizing_id",
        "local_resource_id",
        "msg_id",
        "user_id",
        "faxbox_id",
        "hook_id",
    ];
    for id in sample_ids() {
        for payload in samples_of(id) {
            for key in id_keys {
                if let Some(value) = payload.get(key) {
                    let s = value.as_str().unwrap_or_default();
                    assert!(is_hex_id(s), "{id}: {key}={value}");
                }
            }
        }
    }
}

#[test]
fn hold_and_unhold_are_channel_hooks_with_kazoo_5s_wording() {
    for (id, name, verb) in [
        ("channel_hold", "Channel Hold", "put on hold"),
        ("channel_unhold", "Channel Unhold", "taken off hold"),
    ] {
        let item = available_hook(id).unwrap_or_else(|| panic!("{id} is listed"));
        assert_eq!(item["name"], name);
        assert!(
            str_field(item, "description")
                .unwrap_or_default()
                .contains(verb),
            "{item}"
        );
        assert!(item.get("modifiers").is_none());
        let payloads = samples_of(&format!("webhooks_{id}"));
        // One call's two legs, each held by the same call id as its other leg's partner.
        assert_eq!(payloads.len(), 2, "{id}");
        assert!(payloads.iter().all(|p| p["other_leg_call_id"].is_string()));
    }
    // A hold sample comes before the unhold of the same call.
    let hold = str_field(&samples_of("webhooks_channel_hold")[0], "timestamp").unwrap_or_default();
    let unhold =
        str_field(&samples_of("webhooks_channel_unhold")[0], "timestamp").unwrap_or_default();
    assert!(hold < unhold, "{hold} {unhold}");
}
