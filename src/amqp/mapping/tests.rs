use serde_json::json;

use super::*;

const ACCOUNT: &str = "f27c0e6918274fe3ccea613196de677b";

/// A CHANNEL_DESTROY as ecallmgr publishes it (the keys `kapi_call` allows).
fn destroy() -> Value {
    json!({
        "Event-Category": "call_event",
        "Event-Name": "CHANNEL_DESTROY",
        "App-Name": "ecallmgr",
        "App-Version": "4.3.0",
        "Node": "ecallmgr@fs1.example.net",
        "Msg-ID": "5b4c0b6bd7a95f3ee4b8a2f7f6a1c0de",
        "Call-ID": "7c1d5e0a-3b92-4f6e-9a1d-2e8b5c4f9a11",
        "Call-Direction": "inbound",
        "Caller-ID-Name": "ACME WIDGETS",
        "Caller-ID-Number": "+14155550123",
        "Callee-ID-Name": "Acme Main Line",
        "Callee-ID-Number": "+14155550100",
        "From": "+14155550123@203.0.113.10",
        "To": "+14155550100@acme.sip.example.net",
        "Request": "+14155550100@acme.sip.example.net",
        "Inception": "+14155550100@acme.sip.example.net",
        "Other-Leg-Call-ID": "e3a4b5c6-d7e8-4f90-a1b2-c3d4e5f60718",
        "Channel-Name": "sofia/sipinterface_1/+14155550100@acme.sip.example.net",
        "Timestamp": 63931219252u64,
        "Hangup-Cause": "NORMAL_CLEARING",
        "Hangup-Code": "sip:200",
        "Duration-Seconds": "51",
        "Ringing-Seconds": 6,
        "Billing-Seconds": 45,
        "Custom-Channel-Vars": {
            "Account-ID": ACCOUNT,
            "Authorizing-ID": "c9b37fb174eed0b2d30a4b6572d6ca63",
            "Authorizing-Type": "device",
            "Owner-ID": "afaebf94e9d73d04e0e661e9148e7d89",
            "Reseller-ID": "3982b8524a6e08830aaee43d22dc1590",
            "Global-Resource": "false",
            "Resource-ID": "carrier-1",
            "Call-Forward": "false",
            "Some-Custom-Var": "kept out",
        },
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn event(v: &Value) -> IncomingEvent {
    match map_message(&bytes(v)).unwrap() {
        Mapped::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn routing_keys_are_kapi_calls_call_name_star() {
    let keys = routing_keys();
    assert_eq!(keys.len(), 10);
    assert!(keys.contains(&"call.CHANNEL_HOLD.*".to_owned()));
    assert!(keys.contains(&"call.CHANNEL_UNHOLD.*".to_owned()));
    assert!(keys.contains(&"call.CHANNEL_CREATE.*".to_owned()));
    assert!(keys.contains(&"call.CHANNEL_DISCONNECTED.*".to_owned()));
    assert!(keys.contains(&"call.PARK_ABANDONED.*".to_owned()));
    for name in EVENT_NAMES {
        assert!(hook_event_for(name).is_some(), "{name}");
    }
}

#[test]
fn event_names_map_to_hooks_as_kazoo_does() {
    assert_eq!(hook_event_for("CHANNEL_CREATE"), Some("channel_create"));
    assert_eq!(hook_event_for("CHANNEL_ANSWER"), Some("channel_answer"));
    assert_eq!(hook_event_for("CHANNEL_BRIDGE"), Some("channel_bridge"));
    assert_eq!(hook_event_for("CHANNEL_DESTROY"), Some("channel_destroy"));
    assert_eq!(
        hook_event_for("CHANNEL_DISCONNECTED"),
        Some("channel_destroy")
    );
    assert_eq!(hook_event_for("PARK_RETRIEVED"), Some("parking"));
    assert_eq!(hook_event_for("CHANNEL_HOLD"), Some("channel_hold"));
    assert_eq!(hook_event_for("CHANNEL_UNHOLD"), Some("channel_unhold"));
    assert_eq!(hook_event_for("CHANNEL_EXECUTE"), None);
    assert_eq!(hook_event_for("channel_create"), None);
}

#[test]
fn a_channel_destroy_gets_the_base_fields_and_the_hangup_fields() {
    let e = event(&destroy());
    assert_eq!(e.hook_event, "channel_destroy");
    assert_eq!(e.account_id.to_string(), ACCOUNT);
    assert_eq!(
        Value::Object(e.payload),
        json!({
            "hook_event": "channel_destroy",
            "account_id": ACCOUNT,
            "authorizing_id": "c9b37fb174eed0b2d30a4b6572d6ca63",
            "authorizing_type": "device",
            "call_direction": "inbound",
            "call_forwarded": false,
            "call_id": "7c1d5e0a-3b92-4f6e-9a1d-2e8b5c4f9a11",
            "callee_id_name": "Acme Main Line",
            "callee_id_number": "+14155550100",
            "caller_id_name": "ACME WIDGETS",
            "caller_id_number": "+14155550123",
            "emergency_resource_used": false,
            "from": "+14155550123@203.0.113.10",
            "inception": "+14155550100@acme.sip.example.net",
            "local_resource_id": "carrier-1",
            "local_resource_used": true,
            "is_internal_leg": false,
            "other_leg_call_id": "e3a4b5c6-d7e8-4f90-a1b2-c3d4e5f60718",
            "owner_id": "afaebf94e9d73d04e0e661e9148e7d89",
            "request": "+14155550100@acme.sip.example.net",
            "reseller_id": "3982b8524a6e08830aaee43d22dc1590",
            "timestamp": 63931219252u64,
            "to": "+14155550100@acme.sip.example.net",
            "hangup_cause": "NORMAL_CLEARING",
            "hangup_code": "sip:200",
            "duration_seconds": 51,
            "ringing_seconds": 6,
            "billing_seconds": 45,
        })
    );
}

#[test]
fn channel_disconnected_is_a_channel_destroy() {
    let mut m = destroy();
    m["Event-Name"] = json!("CHANNEL_DISCONNECTED");
    let e = event(&m);
    assert_eq!(e.hook_event, "channel_destroy");
    assert_eq!(e.payload["hangup_cause"], "NORMAL_CLEARING");
}

#[test]
fn undefined_values_are_omitted_and_flags_default_as_kazoo_does() {
    let e = event(&json!({
        "Event-Name": "CHANNEL_CREATE",
        "Call-ID": "c-1",
        "Caller-ID-Name": "",
        "From": null,
        "Hangup-Cause": "ignored on create",
        "Custom-Channel-Vars": {"Account-ID": ACCOUNT, "Global-Resource": true},
    }));
    assert_eq!(
        Value::Object(e.payload),
        json!({
            "hook_event": "channel_create",
            "account_id": ACCOUNT,
            "call_id": "c-1",
            "emergency_resource_used": false,
            "local_resource_used": false,
            "is_internal_leg": false,
        })
    );
}

#[test]
fn a_bridge_carries_the_original_and_destination_numbers() {
    let e = event(&json!({
        "Event-Name": "CHANNEL_BRIDGE",
        "Call-ID": "c-2",
        "Other-Leg-Destination-Number": "1001",
        "Custom-Channel-Vars": {"Account-ID": ACCOUNT, "Original-Number": "+14155550100",
                                "Emergency-Resource": "true", "Call-Forward": "true"},
    }));
    assert_eq!(e.payload["original_number"], "+14155550100");
    assert_eq!(e.payload["other_leg_destination_number"], "1001");
    assert_eq!(e.payload["emergency_resource_used"], true);
    assert_eq!(e.payload["call_forwarded"], true);
    assert!(e.payload.get("hangup_cause").is_none());
}

#[test]
fn loopback_channels_are_internal_legs() {
    let mut m = destroy();
    m["Channel-Is-Loopback"] = json!(true);
    assert_eq!(event(&m).payload["is_internal_leg"], true);
    let mut m = destroy();
    m["Channel-Is-Loopback"] = json!("true");
    assert_eq!(event(&m).payload["is_internal_leg"], true);
    let mut m = destroy();
    m["Channel-Name"] = json!("loopback/2600-a");
    assert_eq!(event(&m).payload["is_internal_leg"], true);
    let mut m = destroy();
    m["Channel-Is-Loopback"] = json!(false);
    assert_eq!(event(&m).payload["is_internal_leg"], false);
}

#[test]
fn park_events_are_the_normalized_message_with_the_account_id() {
    let e = event(&json!({
        "Event-Category": "call_event",
        "Event-Name": "PARK_PARKED",
        "App-Name": "callflow",
        "App-Version": "4.3.0",
        "Node": "kazoo_apps@apps1",
        "Msg-ID": "m-1",
        "Server-ID": "",
        "Call-ID": "OTlmNzJkZGI3ODEyZDE5NjNlZWRjYzY4ZjA3ZmNhODg",
        "Callee-ID-Name": "Acme Main Line",
        "Callee-ID-Number": "+14155550100",
        "Caller-ID-Name": "ACME WIDGETS",
        "Caller-ID-Number": "+14155550123",
        "Parking-Slot": 1,
        "Slot-Info": {"Ringback-ID": "r-1", "Hold-Media": null},
        "Custom-Channel-Vars": {"Account-ID": ACCOUNT},
    }));
    assert_eq!(e.hook_event, "parking");
    assert_eq!(
        Value::Object(e.payload),
        json!({
            "hook_event": "parking",
            "account_id": ACCOUNT,
            "event_name": "PARK_PARKED",
            "server_id": "",
            "call_id": "OTlmNzJkZGI3ODEyZDE5NjNlZWRjYzY4ZjA3ZmNhODg",
            "callee_id_name": "Acme Main Line",
            "callee_id_number": "+14155550100",
            "caller_id_name": "ACME WIDGETS",
            "caller_id_number": "+14155550123",
            "parking_slot": 1,
            "slot_info": {"ringback_id": "r-1"},
        })
    );
}

#[test]
fn normalize_key_lowers_and_underscores() {
    assert_eq!(normalize_key("Caller-ID-Number"), "caller_id_number");
    assert_eq!(normalize_key("already_fine"), "already_fine");
}

#[test]
fn no_account_id_is_dropped_not_rejected() {
    let mut m = destroy();
    m["Custom-Channel-Vars"]
        .as_object_mut()
        .unwrap()
        .remove("Account-ID");
    assert_eq!(
        map_message(&bytes(&m)).unwrap(),
        Mapped::NoAccount {
            event_name: "CHANNEL_DESTROY".into()
        }
    );
    let m = json!({"Event-Name": "PARK_PARKED", "Call-ID": "c"});
    assert!(matches!(
        map_message(&bytes(&m)).unwrap(),
        Mapped::NoAccount { .. }
    ));
    let m = json!({"Event-Name": "PARK_PARKED", "Call-ID": "c", "Custom-Channel-Vars": {"Account-ID": ""}});
    assert!(matches!(
        map_message(&bytes(&m)).unwrap(),
        Mapped::NoAccount { .. }
    ));
}

#[test]
fn malformed_messages_are_named() {
    assert!(matches!(
        map_message(b"not json"),
        Err(MappingError::NotJson(_))
    ));
    assert_eq!(map_message(b"[1,2]"), Err(MappingError::NotObject));
    assert_eq!(
        map_message(br#"{"Call-ID":"c"}"#),
        Err(MappingError::NoEventName)
    );
    assert_eq!(
        map_message(br#"{"Event-Name":"CHANNEL_EXECUTE","Call-ID":"c"}"#),
        Err(MappingError::UnknownEventName("CHANNEL_EXECUTE".into()))
    );
    assert_eq!(
        map_message(
            br#"{"Event-Name":"CHANNEL_CREATE","Event-Category":"dialplan","Call-ID":"c"}"#
        ),
        Err(MappingError::WrongCategory("dialplan".into()))
    );
    assert_eq!(
        map_message(br#"{"Event-Name":"CHANNEL_CREATE"}"#),
        Err(MappingError::NoCallId)
    );
    let bad_account = br#"{"Event-Name":"CHANNEL_CREATE","Call-ID":"c","Custom-Channel-Vars":{"Account-ID":"not-an-account"}}"#;
    match map_message(bad_account) {
        Err(e @ MappingError::Invalid(_)) => {
            assert_eq!(
                e.to_string(),
                "mapped event is invalid: account_id wrong_format"
            )
        }
        other => panic!("{other:?}"),
    }
    // Random bytes never panic.
    for body in [
        &b"\xff\xfe"[..],
        b"",
        b"{",
        b"null",
        b"\"x\"",
        b"{\"Event-Name\": 5}",
    ] {
        assert!(map_message(body).is_err());
    }
}

#[test]
fn event_ids_are_stable_valid_and_distinct() {
    let m = destroy();
    let a = event(&m).event_id.unwrap();
    // A redelivery (same bytes) and a re-serialization with the same Msg-ID: same id.
    assert_eq!(event(&m).event_id.unwrap(), a);
    let pretty = serde_json::to_vec_pretty(&m).unwrap();
    match map_message(&pretty).unwrap() {
        Mapped::Event(e) => assert_eq!(e.event_id.unwrap(), a),
        other => panic!("{other:?}"),
    }
    assert!(EventId::parse(a.as_str()).is_ok());
    assert!(a.as_str().starts_with("kz-") && a.as_str().len() == 43);
    // The same Msg-ID on another event name or call is another event.
    let mut other = m.clone();
    other["Event-Name"] = json!("CHANNEL_DISCONNECTED");
    assert_ne!(event(&other).event_id.unwrap(), a);
    // Without a Msg-ID the body decides.
    let mut no_id = m.clone();
    no_id.as_object_mut().unwrap().remove("Msg-ID");
    let b = event(&no_id).event_id.unwrap();
    assert_ne!(b, a);
    assert_eq!(event(&no_id).event_id.unwrap(), b);
    no_id["Timestamp"] = json!(1);
    assert_ne!(event(&no_id).event_id.unwrap(), b);
}

#[test]
fn a_kazoo_key_named_event_id_is_delivered_not_taken_as_ours() {
    let e = event(&json!({
        "Event-Name": "PARK_RETRIEVED", "Call-ID": "c", "Event-ID": "not valid as ours!",
        "Custom-Channel-Vars": {"Account-ID": ACCOUNT},
    }));
    assert_eq!(e.payload["event_id"], "not valid as ours!");
    assert!(e.event_id.unwrap().as_str().starts_with("kz-"));
}

#[test]
fn hold_and_unhold_get_the_base_channel_fields_only() {
    for (name, hook_event) in [
        ("CHANNEL_HOLD", "channel_hold"),
        ("CHANNEL_UNHOLD", "channel_unhold"),
    ] {
        let mut m = destroy();
        m["Event-Name"] = json!(name);
        let e = event(&m);
        assert_eq!(e.hook_event, hook_event);
        let mut expected = event(&destroy()).payload;
        for extra in [
            "hangup_cause",
            "hangup_code",
            "duration_seconds",
            "ringing_seconds",
            "billing_seconds",
        ] {
            expected.remove(extra);
        }
        expected.insert("hook_event".into(), json!(hook_event));
        assert_eq!(e.payload, expected, "{name}");
    }
}
