use serde_json::{json, Map, Value};

use super::{form_encode, FormEncoder};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

fn enc(value: Value) -> String {
    form_encode(&obj(value))
}

#[test]
fn empty_payload_is_empty_string() {
    assert_eq!(enc(json!({})), "");
}

#[test]
fn scalars_are_key_value_pairs_in_key_order() {
    assert_eq!(
        enc(json!({"call_id": "abc-123", "b": 2, "a": "x"})),
        "a=x&b=2&call_id=abc-123"
    );
}

#[test]
fn booleans_are_true_and_false() {
    assert_eq!(
        enc(json!({"is_internal_leg": false, "t": true})),
        "is_internal_leg=false&t=true"
    );
}

#[test]
fn numbers_print_as_json_does_with_reserved_chars_encoded() {
    assert_eq!(enc(json!({"i": 42, "n": -7})), "i=42&n=-7");
    assert_eq!(enc(json!({"f": 1.5})), "f=1.5");
    // serde_json writes large floats with an exponent; its `+` must be encoded.
    let big = enc(json!({"f": 1e300}));
    assert!(big.starts_with("f=1e"), "{big}");
    assert!(!big.contains('+'), "{big}");
}

#[test]
fn null_is_key_with_empty_value() {
    assert_eq!(enc(json!({"a": null, "b": 1})), "a=&b=1");
    assert_eq!(enc(json!({"o": {"x": null}})), "o[x]=");
}

#[test]
fn nested_objects_use_brackets() {
    assert_eq!(
        enc(json!({"custom_channel_vars": {"account_id": "a1", "owner_id": "o1"}})),
        "custom_channel_vars[account_id]=a1&custom_channel_vars[owner_id]=o1"
    );
    assert_eq!(enc(json!({"a": {"b": {"c": "v"}}})), "a[b][c]=v");
}

#[test]
fn lists_of_scalars_repeat_empty_brackets() {
    assert_eq!(
        enc(json!({"to": ["a@b.c", "d@e.f"], "n": [1, true, null]})),
        "n[]=1&n[]=true&n[]=&to[]=a%40b.c&to[]=d%40e.f"
    );
    assert_eq!(enc(json!({"o": {"l": ["x", "y"]}})), "o[l][]=x&o[l][]=y");
}

#[test]
fn lists_holding_containers_are_indexed() {
    assert_eq!(
        enc(json!({"k": [{"x": 1, "y": 2}, {"x": 3}]})),
        "k[0][x]=1&k[0][y]=2&k[1][x]=3"
    );
    assert_eq!(
        enc(json!({"k": ["s", ["a", "b"]]})),
        "k[0]=s&k[1][]=a&k[1][]=b"
    );
}

#[test]
fn empty_containers_produce_no_pair() {
    assert_eq!(enc(json!({"a": {}, "b": [], "c": 1})), "c=1");
}

#[test]
fn spaces_become_plus() {
    assert_eq!(enc(json!({"name": "John  Smith "})), "name=John++Smith+");
}

#[test]
fn unreserved_kept_reserved_encoded_uppercase() {
    assert_eq!(enc(json!({"v": "AZaz09.-~_"})), "v=AZaz09.-~_");
    assert_eq!(
        enc(json!({"v": "a&b=c+d%e#f/g?h[i]j'k\"l*m!n"})),
        "v=a%26b%3Dc%2Bd%25e%23f%2Fg%3Fh%5Bi%5Dj%27k%22l%2Am%21n"
    );
    assert_eq!(enc(json!({"v": "\n\t"})), "v=%0A%09");
    assert_eq!(enc(json!({"v": "+15551234567"})), "v=%2B15551234567");
}

#[test]
fn unicode_values_encode_their_utf8_bytes() {
    assert_eq!(enc(json!({"v": "é"})), "v=%C3%A9");
    assert_eq!(enc(json!({"v": "日本"})), "v=%E6%97%A5%E6%9C%AC");
    assert_eq!(enc(json!({"v": "😀"})), "v=%F0%9F%98%80");
}

#[test]
fn ordinary_keys_are_not_encoded() {
    assert_eq!(
        enc(json!({"Caller-ID-Name": "x", "a.b:c/d": "y", "é": "z"})),
        "Caller-ID-Name=x&a.b:c/d=y&é=z"
    );
}

#[test]
fn structure_breaking_key_characters_are_encoded() {
    assert_eq!(
        enc(json!({"a&b=c": "1", "p%q+r#s t": "2"})),
        "a%26b%3Dc=1&p%25q%2Br%23s+t=2"
    );
    assert_eq!(enc(json!({"x\ny": 1})), "x%0Ay=1");
    // Brackets in keys are kept, as the brief asks (they only change nesting).
    assert_eq!(enc(json!({"a[b]": 1})), "a[b]=1");
    // Nested keys get the same treatment.
    assert_eq!(enc(json!({"o": {"k=v&z": 1}})), "o[k%3Dv%26z]=1");
}

#[test]
fn injection_attempt_cannot_add_pairs() {
    let out = enc(json!({"v": "1&admin=true", "k&admin=true": "x"}));
    let pairs: Vec<&str> = out.split('&').collect();
    assert_eq!(pairs.len(), 2, "{out}");
}

#[test]
fn an_object_field_encodes_as_the_object_would() {
    let data = obj(json!({"call_id": "c 1", "ccv": {"k": "v"}, "n": 2}));
    let mut encoder = FormEncoder::within(usize::MAX);
    encoder
        .field("action", &json!("event"))
        .object_field("data", data.iter().map(|(k, v)| (k.as_str(), v)))
        .field("timestamp", &json!(7));
    let whole = enc(json!({"action": "event", "data": data, "timestamp": 7}));
    assert_eq!(encoder.finish().as_deref(), Some(whole.as_str()));
}

#[test]
fn an_encoder_past_its_bound_gives_nothing() {
    let data = obj(json!({"call_id": "a long call id"}));
    let mut encoder = FormEncoder::within(10);
    encoder
        .field("action", &json!("event"))
        .object_field("data", data.iter().map(|(k, v)| (k.as_str(), v)))
        .field("after", &json!("x"));
    assert_eq!(encoder.finish(), None);
}
