//! Does a webhook want this event? Pure functions over a hook's stored document and an
//! event payload (kazoo-behaviour.md section 4, with INTERFACE.md's rule that a modifier
//! key missing from the payload does not match).
//!
//! Candidate selection (the account's own hooks, ancestors' `include_subaccounts` hooks)
//! lives in the registry, which owns the indexes; this module decides one hook at a time.

use serde_json::{Map, Value};

/// Whether `doc` (a stored webhook document) accepts an event of `hook_event` with
/// `payload`. Enabled-ness and account selection are the caller's business.
pub fn hook_accepts(
    doc: &Map<String, Value>,
    hook_event: &str,
    payload: &Map<String, Value>,
) -> bool {
    let hook = doc.get("hook").and_then(Value::as_str).unwrap_or("");
    if hook != hook_event && hook != "all" {
        return false;
    }
    if doc.get("include_internal_legs").and_then(Value::as_bool) == Some(false)
        && payload.get("is_internal_leg").and_then(Value::as_bool) == Some(true)
    {
        return false;
    }
    if let Some(Value::Object(modifiers)) = doc.get("modifiers") {
        if !modifiers_match(modifiers, payload) {
            return false;
        }
    }
    // The selections of object and notifications hooks; an `all` hook takes everything.
    let custom = doc.get("custom_data").and_then(Value::as_object);
    match (hook, custom) {
        ("object", Some(custom)) => {
            selected(custom.get("type"), payload.get("type"))
                && selected(custom.get("action"), payload.get("action"))
        }
        ("notifications", Some(custom)) => selected(custom.get("type"), payload.get("event_name")),
        _ => true,
    }
}

/// Every modifier key must be in the payload with that value; a list value means any of
/// its members (an empty list accepts anything present).
pub fn modifiers_match(modifiers: &Map<String, Value>, payload: &Map<String, Value>) -> bool {
    modifiers.iter().all(|(key, want)| match payload.get(key) {
        None => false,
        Some(have) => match want {
            Value::Array(options) => {
                options.is_empty() || options.iter().any(|o| loosely_equal(o, have))
            }
            single => loosely_equal(single, have),
        },
    })
}

/// A custom_data selection: `all`, or equal to the event's value.
fn selected(selection: Option<&Value>, event_value: Option<&Value>) -> bool {
    match selection.and_then(Value::as_str) {
        Some("all") => true,
        Some(want) => event_value.and_then(Value::as_str) == Some(want),
        // Kazoo: custom_data present without the key does not match.
        None => false,
    }
}

/// JSON equality, except that scalars also match by their text: a modifier typed as
/// `"1001"` matches a payload number `1001`, as users write modifiers as strings.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (scalar_text(a), scalar_text(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
