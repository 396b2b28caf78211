//! The webhook fields Kazoo 5 added (its `webhooks.json` schema): `version`,
//! `custom_request_headers` and `security_settings.sha256_key`, with Kazoo's error shapes.
//!
//! Kazoo 5's schema types them only (`version` an enum defaulting to `v1`, the other two
//! objects, `sha256_key` a string). Piston adds the header rules of
//! [`actors::delivery`]'s `headers` (a name is an HTTP token the daemon does not set
//! itself, a value a string without control characters, both bounded, at most
//! [`MAX_CUSTOM_HEADERS`]) and bounds the key's length; a `sha256_key` on a `v1` hook is
//! accepted and stored, and unused, as in Kazoo 5.

use serde_json::{json, Map, Value};

use actors::delivery::{
    check_header_name, check_header_value, HeaderRuleError, MAX_CUSTOM_HEADERS,
    MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, RESERVED_HEADERS, RESERVED_HEADER_PREFIX,
};

use super::string_enum;
use crate::kazoo_errors::{Errors, Violation};

/// The values of `version`.
pub(crate) const VERSIONS: &[&str] = &["v1", "v2"];

/// The longest `security_settings.sha256_key`, in characters.
pub(crate) const MAX_SHA256_KEY_CHARS: usize = 1024;

/// The pattern a header name must match (an HTTP token), as a `pattern` error shows it.
const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// Checks (and defaults) the Kazoo 5 fields of a webhook document.
pub(super) fn check_kazoo5_fields(doc: &mut Map<String, Value>, errors: &mut Errors) {
    string_enum(doc, "version", VERSIONS, Some("v1"), errors);
    drop_null(doc, "custom_request_headers");
    if let Some(headers) = doc.get("custom_request_headers") {
        check_custom_request_headers(headers, errors);
    }
    drop_null(doc, "security_settings");
    match doc.get_mut("security_settings") {
        None => {}
        Some(Value::Object(settings)) => check_security_settings(settings, errors),
        Some(other) => errors.add("security_settings", Violation::wrong_type("object", other)),
    }
}

/// A `null` field is no field (a POST may send one; a PATCH removes it before this).
fn drop_null(doc: &mut Map<String, Value>, field: &str) {
    if doc.get(field).is_some_and(Value::is_null) {
        doc.remove(field);
    }
}

fn check_custom_request_headers(headers: &Value, errors: &mut Errors) {
    let Value::Object(headers) = headers else {
        errors.add(
            "custom_request_headers",
            Violation::wrong_type("object", headers),
        );
        return;
    };
    if headers.len() > MAX_CUSTOM_HEADERS {
        errors.add(
            "custom_request_headers",
            Violation::new(
                "maxProperties",
                json!({"message": format!("The object must have at most {MAX_CUSTOM_HEADERS} keys"),
                       "target": MAX_CUSTOM_HEADERS}),
            ),
        );
    }
    for (name, value) in headers {
        // Kazoo encodes a literal `.` inside a key as %2E in the path.
        let path = format!("custom_request_headers.{}", name.replace('.', "%2E"));
        if let Err(why) = check_header_name(name) {
            errors.add(&path, name_violation(why, name));
        }
        match value {
            Value::String(text) => {
                if let Err(why) = check_header_value(text) {
                    errors.add(&path, value_violation(why, text));
                }
            }
            other => errors.add(&path, Violation::wrong_type("string", other)),
        }
    }
}

fn name_violation(why: HeaderRuleError, name: &str) -> Violation {
    match why {
        HeaderRuleError::Reserved => {
            let mut target: Vec<String> =
                RESERVED_HEADERS.iter().map(|h| (*h).to_owned()).collect();
            target.push(format!("{RESERVED_HEADER_PREFIX}*"));
            Violation::new(
                "disallow",
                json!({"message": "Header is set by the daemon and cannot be overridden",
                       "target": target, "value": name}),
            )
        }
        HeaderRuleError::NameTooLong => {
            Violation::max_length(MAX_HEADER_NAME_BYTES).with_cause(name.len())
        }
        _ => Violation::new(
            "pattern",
            json!({"message": format!("Failed to match pattern '{HEADER_NAME_PATTERN}'"),
                   "target": HEADER_NAME_PATTERN, "value": name}),
        ),
    }
}

fn value_violation(why: HeaderRuleError, value: &str) -> Violation {
    match why {
        HeaderRuleError::ValueTooLong => {
            Violation::max_length(MAX_HEADER_VALUE_BYTES).with_cause(value.len())
        }
        _ => Violation::wrong_format(value, "header value without control characters"),
    }
}

fn check_security_settings(settings: &mut Map<String, Value>, errors: &mut Errors) {
    drop_null(settings, "sha256_key");
    match settings.get("sha256_key") {
        None => {}
        Some(Value::String(key)) => {
            let chars = key.chars().count();
            if chars > MAX_SHA256_KEY_CHARS {
                // Not echoed: it is a key.
                errors.add(
                    "security_settings.sha256_key",
                    Violation::max_length(MAX_SHA256_KEY_CHARS).with_cause(chars),
                );
            }
        }
        Some(other) => errors.add(
            "security_settings.sha256_key",
            Violation::wrong_type("string", other),
        ),
    }
}
