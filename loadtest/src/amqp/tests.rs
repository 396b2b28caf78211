use super::*;
use piston_webhooks::amqp::mapping::{map_message, Mapped};

fn plan() -> Plan {
    Plan::new(
        "t1".into(),
        vec![
            "0123456789abcdef0123456789abcdef".into(),
            "fedcba9876543210fedcba9876543210".into(),
        ],
        Vec::new(),
    )
}

#[test]
fn the_message_is_a_kazoo_call_event_the_daemon_maps_with_the_expected_id() {
    let plan = plan();
    for event in [0u64, 1, 7] {
        let mut body = String::new();
        write_message(&mut body, &plan, event, 63_900_000_000);
        let msg: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(msg["Event-Category"], "call_event");
        assert_eq!(msg["Event-Name"], "CHANNEL_CREATE");
        assert_eq!(msg["Msg-ID"], plan.event_id(event).as_str());
        assert_eq!(msg["Call-ID"], plan.event_id(event).as_str());
        let Ok(Mapped::Event(mapped)) = map_message(body.as_bytes()) else {
            panic!("not mapped to an event: {body}");
        };
        assert_eq!(
            mapped.event_id.as_ref().map(|id| id.as_str().to_owned()),
            Some(expected_event_id(&plan, event))
        );
        assert_eq!(
            mapped.account_id.as_str(),
            plan.accounts[plan.account_of(event) as usize]
        );
        assert_eq!(mapped.hook_event, "channel_create");
        // The hooks' modifiers filter on the direction.
        let direction = if event % 2 == 0 {
            "inbound"
        } else {
            "outbound"
        };
        assert_eq!(mapped.payload["call_direction"], direction);
        assert_eq!(mapped.payload["call_id"], plan.event_id(event).as_str());
        assert_eq!(mapped.payload["is_internal_leg"], false);
        assert_eq!(mapped.payload["timestamp"], 63_900_000_000u64);
    }
}

#[test]
fn routing_keys_are_kazoos_with_the_call_id_as_one_word() {
    assert_eq!(routing_key("lt-ab-3"), "call.CHANNEL_CREATE.lt-ab-3");
    assert_eq!(routing_key("a.b"), "call.CHANNEL_CREATE.a%2Eb");
    let plan = plan();
    let messages = batch_messages(&plan, 4, 6);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].0, "call.CHANNEL_CREATE.lt-t1-4");
    assert!(messages[1]
        .1
        .starts_with(b"{\"Event-Category\":\"call_event\""));
}

#[test]
fn derived_ids_name_every_event_of_the_run() {
    let plan = plan();
    let ids = derived_ids(&plan, 1_000).expect("no collision");
    assert_eq!(ids.len(), 1_000);
    for event in [0u64, 1, 999] {
        let id = expected_event_id(&plan, event);
        assert!(id.starts_with("kz-") && id.len() == 43, "{id}");
        assert_eq!(ids.get(&derived_key(&id).unwrap()), Some(&(event as u32)));
    }
    // Another run's ids are other ids.
    let other = Plan::new("t2".into(), plan.accounts.clone(), Vec::new());
    assert_ne!(expected_event_id(&other, 0), expected_event_id(&plan, 0));
}

#[test]
fn only_loopback_brokers_are_accepted() {
    assert!(is_loopback_broker(DEFAULT_URL));
    assert!(is_loopback_broker("amqp://u:p@localhost:5672/%2f"));
    assert!(is_loopback_broker("amqp://127.0.0.2"));
    assert!(!is_loopback_broker("amqp://guest:guest@10.0.0.5:5672/%2f"));
    assert!(!is_loopback_broker("amqp://rabbit.example.com"));
    assert!(!is_loopback_broker("http://127.0.0.1:5672"));
    assert_eq!(broker_label(DEFAULT_URL), "127.0.0.1:5672 (vhost /)");
}
