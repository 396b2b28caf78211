use serde_json::{json, Map, Value};

use super::*;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

#[test]
fn verbs_and_formats_parse_from_stored_strings() {
    assert_eq!("get".parse::<HttpVerb>(), Ok(HttpVerb::Get));
    assert_eq!("post".parse::<HttpVerb>(), Ok(HttpVerb::Post));
    assert_eq!("PUT".parse::<HttpVerb>(), Ok(HttpVerb::Put));
    assert_eq!(
        "delete".parse::<HttpVerb>(),
        Err(DeliveryError::UnknownVerb("delete".to_owned()))
    );
    assert_eq!("form-data".parse::<BodyFormat>(), Ok(BodyFormat::FormData));
    assert_eq!("json".parse::<BodyFormat>(), Ok(BodyFormat::Json));
    assert!("xml".parse::<BodyFormat>().is_err());
    for verb in [HttpVerb::Get, HttpVerb::Post, HttpVerb::Put] {
        assert_eq!(verb.as_str().parse::<HttpVerb>(), Ok(verb));
        assert_eq!(verb.to_string(), verb.as_str());
    }
    for format in [BodyFormat::FormData, BodyFormat::Json] {
        assert_eq!(format.as_str().parse::<BodyFormat>(), Ok(format));
    }
}

#[test]
fn verbs_and_formats_serialize_as_stored_strings() {
    assert_eq!(
        serde_json::to_value(HttpVerb::Post).ok(),
        Some(json!("post"))
    );
    assert_eq!(
        serde_json::to_value(BodyFormat::FormData).ok(),
        Some(json!("form-data"))
    );
    assert_eq!(
        serde_json::from_value::<BodyFormat>(json!("json")).ok(),
        Some(BodyFormat::Json)
    );
}

#[test]
fn get_appends_query_with_question_mark() {
    let payload = obj(json!({"a": "1 2", "b": true}));
    let req = build_request(
        "http://example.com/hook",
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Get);
    assert_eq!(req.url.as_str(), "http://example.com/hook?a=1+2&b=true");
    assert_eq!(req.content_type, None);
    assert!(req.body.is_empty());
}

#[test]
fn get_joins_existing_query_with_ampersand() {
    let payload = obj(json!({"a": "x"}));
    let req = build_request(
        "https://example.com/hook?token=abc",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?token=abc&a=x");

    let req = build_request(
        "https://example.com/hook?token=abc&",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?token=abc&a=x");

    // An empty query is no query.
    let req = build_request(
        "https://example.com/hook?",
        HttpVerb::Get,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "https://example.com/hook?a=x");
}

#[test]
fn get_with_empty_payload_leaves_uri_alone() {
    let empty = Map::new();
    let req = build_request(
        "http://example.com/h?x=1",
        HttpVerb::Get,
        BodyFormat::FormData,
        &empty,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h?x=1");
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Get,
        BodyFormat::FormData,
        &empty,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn fragment_is_dropped() {
    let payload = obj(json!({"a": "x"}));
    let req = build_request(
        "http://example.com/h?q=1#frag",
        HttpVerb::Get,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h?q=1&a=x");
    let req = build_request(
        "http://example.com/h#frag",
        HttpVerb::Post,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn post_form_data_is_urlencoded_body() {
    let payload = obj(json!({"a": {"b": "c d"}, "n": 1}));
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Post,
        BodyFormat::FormData,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Post);
    assert_eq!(req.content_type, Some("application/x-www-form-urlencoded"));
    assert_eq!(&req.body[..], b"a[b]=c+d&n=1");
    assert_eq!(req.url.as_str(), "http://example.com/h");
}

#[test]
fn put_json_is_json_body() {
    let payload = obj(json!({"a": {"b": [1, 2]}, "s": "x"}));
    let req = build_request(
        "http://example.com/h",
        HttpVerb::Put,
        BodyFormat::Json,
        &payload,
    )
    .expect("request");
    assert_eq!(req.method, HttpVerb::Put);
    assert_eq!(req.content_type, Some("application/json"));
    let body: Value = serde_json::from_slice(&req.body).expect("json body");
    assert_eq!(body, json!({"a": {"b": [1, 2]}, "s": "x"}));
}

#[test]
fn bad_uris_are_refused() {
    let payload = Map::new();
    assert!(matches!(
        build_request("not a url", HttpVerb::Post, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
    assert!(matches!(
        build_request("ftp://example.com/", HttpVerb::Post, BodyFormat::Json, &payload),
        Err(DeliveryError::UnsupportedScheme(s)) if s == "ftp"
    ));
    assert!(matches!(
        build_request("http://", HttpVerb::Get, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
    assert!(matches!(
        build_request("", HttpVerb::Get, BodyFormat::Json, &payload),
        Err(DeliveryError::InvalidUri(_))
    ));
}
