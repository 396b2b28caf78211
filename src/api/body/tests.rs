use super::*;

#[test]
fn the_envelope_yields_its_data_and_empty_bodies_are_empty_objects() {
    assert_eq!(
        parse_envelope(br#"{"data":{"a":1}}"#).unwrap(),
        serde_json::json!({"a":1})
    );
    assert_eq!(parse_envelope(b"  \n").unwrap(), serde_json::json!({}));
    assert_eq!(parse_envelope(b"{}").unwrap(), serde_json::json!({}));
}

#[test]
fn invalid_json_says_where_it_breaks() {
    let err = parse_envelope(b"{\"data\": {\n \"a\": 1,\n }}").unwrap_err();
    let ApiError::InvalidJson(why) = err else {
        panic!("expected InvalidJson, got {err:?}")
    };
    assert!(why.contains("line 3"), "{why}");
}

#[test]
fn a_body_that_is_not_an_object_is_refused() {
    assert!(matches!(
        parse_envelope(b"[1,2]"),
        Err(ApiError::BadRequest { .. })
    ));
}
