//! Kazoo 5's v2 body and its `hmac`, against a vector computed with Python's `hmac` and
//! `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

use serde_json::{json, Map};

use super::*;

fn data() -> Map<String, Value> {
    json!({"hook_event": "channel_create", "call_id": "abc",
           "nested": {"z": 1, "a": "é"}, "list": [{"b": true, "a": null}]})
    .as_object()
    .cloned()
    .unwrap()
}

const KEY: &[u8] = b"kazoo-shared-key";
const EXPECTED_HMAC: &str = "MFa9larh/X0CF4dMX4juEGdYAt9irlH+IbqggZS63qg=";

#[test]
fn the_hmac_is_over_the_timestamp_and_the_sorted_compact_data() {
    let data = data();
    let key = HmacKey::new(KEY);
    let envelope = Envelope::new(
        "channel_create",
        Payload::from(&data),
        1_800_000_000,
        Some(&key),
    )
    .unwrap();
    assert_eq!(envelope.hmac(), Some(EXPECTED_HMAC));
}

#[test]
fn the_json_body_is_the_envelope_in_kazoo_5s_order() {
    let data = data();
    let key = HmacKey::new(KEY);
    let envelope = Envelope::new(
        "channel_create",
        Payload::from(&data),
        1_800_000_000,
        Some(&key),
    )
    .unwrap();
    let text = serde_json::to_string(&envelope).unwrap();
    assert!(
        text.starts_with(r#"{"action":"event","name":"channel_create","data":{"#),
        "{text}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"action": "event", "name": "channel_create", "data": data,
               "timestamp": 1_800_000_000u64, "hmac": EXPECTED_HMAC})
    );
}

#[test]
fn without_a_key_there_is_no_hmac() {
    let data = data();
    let envelope = Envelope::new("channel_create", Payload::from(&data), 5, None).unwrap();
    assert_eq!(envelope.hmac(), None);
    let body: Value = serde_json::to_value(&envelope).unwrap();
    assert!(body.get("hmac").is_none(), "{body}");
}

#[test]
fn the_form_encoding_nests_the_payload_under_data() {
    let data = json!({"call_id": "c 1", "n": 2})
        .as_object()
        .cloned()
        .unwrap();
    let envelope = Envelope::new("channel_answer", Payload::from(&data), 7, None).unwrap();
    assert_eq!(
        envelope.form_encode_within(usize::MAX).as_deref(),
        Some("action=event&name=channel_answer&data[call_id]=c+1&data[n]=2&timestamp=7")
    );
    assert_eq!(envelope.form_encode_within(10), None);
}

#[test]
fn versions_read_only_their_two_spellings() {
    assert_eq!("v1".parse(), Ok(PayloadVersion::V1));
    assert_eq!("v2".parse(), Ok(PayloadVersion::V2));
    assert_eq!("V2".parse::<PayloadVersion>(), Err(()));
    assert_eq!(PayloadVersion::default(), PayloadVersion::V1);
    assert_eq!(PayloadVersion::V2.to_string(), "v2");
}
