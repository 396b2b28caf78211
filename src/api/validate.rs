//! Document validation with Kazoo's rules (kazoo-behaviour.md 1.1, 1.3); the fields Kazoo 5
//! added (`version`, `custom_request_headers`, `security_settings`) in `kazoo5`.
//!
//! Failures are collected as `path -> rule -> detail` in [`Errors`], written with the
//! shapes of [`crate::kazoo_errors`] (kazoo-behaviour.md 1.4), which ingest shares. Like
//! Kazoo's non-strict schema validation, a wrong JSON type that has an obvious reading is
//! coerced (`"3"` for an integer, `"true"` for a boolean) and the coerced value is stored.

use serde_json::{json, Map, Value};

use actors::delivery::RetryPolicy;
use actors::uri_guard::{self, UriError};

use super::error::ApiError;
use crate::catalog;
use crate::kazoo_errors::{Errors, Violation};

/// The document must be a JSON object.
pub(crate) fn require_object(data: Value) -> Result<Map<String, Value>, ApiError> {
    match data {
        Value::Object(map) => Ok(map),
        other => Err(Errors::one("data", Violation::wrong_type("object", &other)).into()),
    }
}

/// Drops what clients may not set: ids, private (`pvt_`, `_`) and computed fields.
pub(crate) fn strip_private(doc: &mut Map<String, Value>) {
    doc.retain(|k, _| {
        !(k == "id" || k.starts_with("pvt_") || k.starts_with('_') || k == "disable_reason")
    });
}

/// A required, string-typed field.
fn required_string(doc: &Map<String, Value>, field: &str, errors: &mut Errors) -> Option<String> {
    match doc.get(field) {
        None | Some(Value::Null) => {
            errors.add(field, Violation::required_in(doc));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.add(field, Violation::wrong_type("string", other));
            None
        }
    }
}

/// Longest `name` accepted (Kazoo's account schema bound, applied to webhooks too).
pub(crate) const MAX_NAME_CHARS: usize = 128;
/// Longest webhook `uri` accepted.
pub(crate) const MAX_URI_CHARS: usize = 2048;

/// A text a person reads back (a name): bounded, without control characters.
pub(crate) fn check_text(field: &str, value: &str, max: usize, errors: &mut Errors) {
    let chars = value.chars().count();
    if chars > max {
        errors.add(field, Violation::max_length(max).with_cause(chars));
    } else if value.chars().any(char::is_control) {
        errors.add(
            field,
            Violation::wrong_format(value, "text without control characters"),
        );
    }
}

/// An optional string field restricted to `allowed`, defaulted when missing.
fn string_enum(
    doc: &mut Map<String, Value>,
    field: &str,
    allowed: &[&str],
    default: Option<&str>,
    errors: &mut Errors,
) {
    match doc.get(field) {
        None | Some(Value::Null) => {
            doc.remove(field);
            if let Some(d) = default {
                doc.insert(field.to_owned(), d.into());
            }
        }
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(value @ Value::String(_)) => errors.add(field, Violation::not_in_enum(allowed, value)),
        Some(other) => errors.add(field, Violation::wrong_type("string", other)),
    }
}

/// An optional boolean, coerced from `"true"`/`"false"`, defaulted when missing.
pub(crate) fn boolean(
    doc: &mut Map<String, Value>,
    field: &str,
    default: Option<bool>,
    errors: &mut Errors,
) {
    let coerced = match doc.get(field) {
        None | Some(Value::Null) => {
            doc.remove(field);
            default
        }
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        Some(other) => {
            errors.add(field, Violation::wrong_type("boolean", other));
            return;
        }
    };
    if let Some(b) = coerced {
        doc.insert(field.to_owned(), Value::Bool(b));
    }
}

/// An optional integer in `min..=max`, coerced from integer text, defaulted when missing.
fn integer(
    doc: &mut Map<String, Value>,
    field: &str,
    (min, max): (i64, i64),
    default: i64,
    errors: &mut Errors,
) {
    let value = match doc.get(field) {
        None | Some(Value::Null) => {
            doc.insert(field.to_owned(), default.into());
            return;
        }
        Some(v) => v.clone(),
    };
    let n = match &value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(n) = n else {
        errors.add(field, Violation::wrong_type("integer", &value));
        return;
    };
    if n < min {
        errors.add(field, Violation::minimum(min, n));
    } else if n > max {
        errors.add(field, Violation::maximum(max, n));
    } else {
        doc.insert(field.to_owned(), n.into());
    }
}

/// The values of `http_verb`.
pub(crate) const HTTP_VERBS: &[&str] = &["get", "post", "put"];
/// The values of `format`.
pub(crate) const FORMATS: &[&str] = &["form-data", "json"];

/// Who is validating: some modifier values are shown only to the master account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Validator {
    pub(crate) allow_private_targets: bool,
    pub(crate) super_admin: bool,
}

impl Validator {
    /// Validates a webhook document and fills its defaults; returns the document to store.
    pub(crate) fn webhook(
        &self,
        mut doc: Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        strip_private(&mut doc);
        let mut errors = Errors::default();
        if let Some(name) = required_string(&doc, "name", &mut errors) {
            check_text("name", &name, MAX_NAME_CHARS, &mut errors);
        }
        let uri = required_string(&doc, "uri", &mut errors).filter(|u| {
            let long = u.chars().count() > MAX_URI_CHARS;
            if long {
                errors.add("uri", Violation::max_length(MAX_URI_CHARS));
            }
            !long
        });
        let hook = required_string(&doc, "hook", &mut errors);
        if let Some(hook) = &hook {
            if !catalog::is_known_hook(hook) {
                let value = Value::String(hook.clone());
                errors.add("hook", Violation::not_in_enum(&hook_enum(), &value));
            }
        }
        if let Some(uri) = &uri {
            match uri_guard::check_uri(uri, self.allow_private_targets) {
                Ok(_) => {}
                Err(UriError::Malformed) => {
                    errors.add("uri", Violation::wrong_format(uri, "uri"));
                }
                Err(UriError::Refused) => errors.add(
                    "uri",
                    Violation::new(
                        "error",
                        json!({"message": "invalid client URL", "value": uri}),
                    ),
                ),
            }
        }
        string_enum(&mut doc, "http_verb", HTTP_VERBS, Some("post"), &mut errors);
        string_enum(&mut doc, "format", FORMATS, Some("form-data"), &mut errors);
        let retries = (0, RetryPolicy::MAX_RETRIES.into());
        let default = RetryPolicy::DEFAULT_RETRIES.into();
        integer(&mut doc, "retries", retries, default, &mut errors);
        boolean(&mut doc, "enabled", Some(true), &mut errors);
        boolean(&mut doc, "include_internal_legs", Some(true), &mut errors);
        boolean(&mut doc, "include_subaccounts", None, &mut errors);
        check_custom_data(&doc, &mut errors);
        kazoo5::check_kazoo5_fields(&mut doc, &mut errors);
        match doc.get("modifiers") {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) => {
                doc.remove("modifiers");
            }
            Some(other) => {
                let violation = Violation::wrong_type("object", other);
                errors.add("modifiers", violation);
            }
        }
        errors.into_result()?;
        // Kazoo checks the modifier selections only once the schema passes.
        let mut errors = Errors::default();
        match hook.as_deref() {
            Some("object") => {
                self.selection(&doc, "action", catalog::object_actions(), &mut errors);
                self.selection(&doc, "type", catalog::object_types(), &mut errors);
            }
            Some("notifications") => {
                let visible: Vec<&str> = catalog::notification_types()
                    .iter()
                    .copied()
                    .filter(|t| self.super_admin || !ADMIN_ONLY_NOTIFICATIONS.contains(t))
                    .collect();
                self.selection_in(
                    &doc,
                    "type",
                    catalog::notification_types(),
                    &visible,
                    &mut errors,
                );
            }
            _ => {}
        }
        errors.into_result()?;
        Ok(doc)
    }

    fn selection(&self, doc: &Map<String, Value>, key: &str, items: &[&str], errors: &mut Errors) {
        self.selection_in(doc, key, items, items, errors);
    }

    /// A `custom_data` modifier selection: present and one of `accepted` (errors show
    /// `shown`, which may hide admin-only values).
    fn selection_in(
        &self,
        doc: &Map<String, Value>,
        key: &str,
        accepted: &[&str],
        shown: &[&str],
        errors: &mut Errors,
    ) {
        let path = format!("custom_data.{key}");
        let value = doc.get("custom_data").and_then(|c| c.get(key));
        match value {
            None => errors.add(
                &path,
                Violation::new("required", json!({"message": "missing required modifier"})),
            ),
            Some(Value::String(s)) if accepted.contains(&s.as_str()) => {}
            Some(other) => errors.add(
                &path,
                Violation::new(
                    "enum",
                    json!({"message": "value not found in enumerated list of values", "cause": other, "target": shown}),
                ),
            ),
        }
    }
}

/// The `hook` enum: `all` and every hook we deliver, sorted as Kazoo's schema lists it.
fn hook_enum() -> Vec<&'static str> {
    let mut values = vec!["all"];
    values.extend(catalog::hook_ids().iter().copied());
    values.sort_unstable();
    values
}

/// Notification types only the master account sees in listings and errors.
pub(crate) const ADMIN_ONLY_NOTIFICATIONS: &[&str] = &["system_alert", "webhook_disabled"];

fn check_custom_data(doc: &Map<String, Value>, errors: &mut Errors) {
    match doc.get("custom_data") {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if !value.is_string() {
                    // Kazoo encodes a literal `.` inside a key as %2E in the path.
                    let path = format!("custom_data.{}", key.replace('.', "%2E"));
                    errors.add(&path, Violation::wrong_type("string", value));
                }
            }
        }
        Some(other) => errors.add("custom_data", Violation::wrong_type("object", other)),
    }
}

/// Crossbar's PATCH: merge `patch` into `doc` recursively; a `null` removes the key.
pub(crate) fn merge_patch(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                doc.remove(&key);
            }
            Value::Object(inner) => match doc.get_mut(&key) {
                Some(Value::Object(existing)) => merge_patch(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge_patch(&mut fresh, inner);
                    doc.insert(key, Value::Object(fresh));
                }
            },
            other => {
                doc.insert(key, other);
            }
        }
    }
}

mod kazoo5;
pub(crate) use kazoo5::{MAX_SHA256_KEY_CHARS, VERSIONS};

#[cfg(test)]
mod tests;
