//! Does a webhook want this event? Pure functions over a hook's stored document and an
//! event payload (kazoo-behaviour.md section 4, with INTERFACE.md's rule that a modifier
//! key missing from the payload does not match).
//!
//! Candidate selection (the account's own hooks, ancestors' `include_subaccounts` hooks)
//! lives in the registry, which owns the indexes; this module decides one hook at a time.

use serde_json::{Map, Value};

/// Whether `doc` (a stored webhook document) accepts an event of `hook_event` with
/// `payload`. Enabled-ness and account selection are the caller's business. The same
/// rule as [`HookMatcher::accepts`], for one look at a document.
pub fn hook_accepts(
    doc: &Map<String, Value>,
    hook_event: &str,
    payload: &Map<String, Value>,
) -> bool {
    HookMatcher::compile(doc).accepts(hook_event, payload)
}

/// A webhook document's matching rule, read once: what the registry's candidate index
/// keeps per hook, so matching an event looks no document key up.
#[derive(Debug, Clone, PartialEq)]
pub struct HookMatcher {
    /// The `hook` it listens to (`channel_create`, …, or `all`).
    pub hook: String,
    /// `include_internal_legs: false`: events with `is_internal_leg: true` are dropped.
    drop_internal_legs: bool,
    /// The `modifiers` object, when there is one.
    modifiers: Option<Map<String, Value>>,
    /// The `custom_data` selections of `object` (type, action) and `notifications`
    /// (type) hooks; `None` when the hook selects nothing that way.
    selection: Option<Selection>,
}

#[derive(Debug, Clone, PartialEq)]
enum Selection {
    /// `object`: `custom_data.type` against the event's `type`, `custom_data.action`
    /// against its `action`.
    Object {
        kind: Option<Value>,
        action: Option<Value>,
    },
    /// `notifications`: `custom_data.type` against the event's `event_name`.
    Notifications { kind: Option<Value> },
}

impl HookMatcher {
    /// Reads the matching rule of a stored webhook document.
    pub fn compile(doc: &Map<String, Value>) -> HookMatcher {
        let hook = doc
            .get("hook")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let custom = doc.get("custom_data").and_then(Value::as_object);
        let selection = match (hook.as_str(), custom) {
            ("object", Some(custom)) => Some(Selection::Object {
                kind: custom.get("type").cloned(),
                action: custom.get("action").cloned(),
            }),
            ("notifications", Some(custom)) => Some(Selection::Notifications {
                kind: custom.get("type").cloned(),
            }),
            _ => None,
        };
        HookMatcher {
            drop_internal_legs: doc.get("include_internal_legs").and_then(Value::as_bool)
                == Some(false),
            modifiers: doc.get("modifiers").and_then(Value::as_object).cloned(),
            selection,
            hook,
        }
    }

    /// Whether the hook accepts an event of `hook_event` with `payload`.
    pub fn accepts(&self, hook_event: &str, payload: &Map<String, Value>) -> bool {
        if self.hook != hook_event && self.hook != "all" {
            return false;
        }
        if self.drop_internal_legs
            && payload.get("is_internal_leg").and_then(Value::as_bool) == Some(true)
        {
            return false;
        }
        if let Some(modifiers) = &self.modifiers {
            if !modifiers_match(modifiers, payload) {
                return false;
            }
        }
        // The selections of object and notifications hooks; an `all` hook takes everything.
        match &self.selection {
            Some(Selection::Object { kind, action }) => {
                selected(kind.as_ref(), payload.get("type"))
                    && selected(action.as_ref(), payload.get("action"))
            }
            Some(Selection::Notifications { kind }) => {
                selected(kind.as_ref(), payload.get("event_name"))
            }
            None => true,
        }
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
