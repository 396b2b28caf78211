//! Stage 1 of a delivery: the payload sent for one event to one hook, the event's own
//! fields with `hook_event` set and the hook's `custom_data` merged over them. Pure.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

/// Hook kinds whose `custom_data` holds the selection keys `type` and `action`, which are
/// therefore not merged into the payload.
const SELECTING_HOOK_KINDS: [&str; 2] = ["object", "notifications"];

/// The `custom_data` keys that select events for `object` / `notifications` hooks.
const SELECTION_KEYS: [&str; 2] = ["type", "action"];

/// Builds the payload sent for one event to one hook (`kazoo-behaviour.md` 4.4, master).
///
/// Starts from `event_payload`, sets `hook_event`, then merges `custom_data` shallowly:
/// each top-level `custom_data` key overwrites the payload key of the same name (nested
/// objects are replaced, not merged). For hooks of kind (`hook`) `object` and
/// `notifications`, the selection keys `type` and `action` of `custom_data` are not
/// merged, so the hook's selection does not clobber the event's own `type` / `action`.
/// As in Kazoo, `custom_data` is merged after `hook_event` is set and so may overwrite it.
/// Kazoo's `cluster_id` is not added.
///
/// The result borrows the event's payload rather than copying it: an event goes to many
/// hooks, and copying its whole object per try was a visible share of delivery CPU.
pub fn build_payload<'a>(
    event_payload: &'a Map<String, Value>,
    hook_event: &str,
    custom_data: Option<&'a Map<String, Value>>,
    hook_kind: &str,
) -> Payload<'a> {
    // The fields set over the event's, in key order; a later one replaces an earlier
    // one of the same key (custom_data after hook_event).
    let mut overrides: Vec<(&'a str, Cow<'a, Value>)> = Vec::new();
    if event_payload.get("hook_event").and_then(Value::as_str) != Some(hook_event) {
        overrides.push((
            "hook_event",
            Cow::Owned(Value::String(hook_event.to_owned())),
        ));
    }
    if let Some(custom) = custom_data {
        let skip_selection = SELECTING_HOOK_KINDS.contains(&hook_kind);
        for (key, value) in custom {
            if skip_selection && SELECTION_KEYS.contains(&key.as_str()) {
                continue;
            }
            overrides.retain(|(k, _)| *k != key.as_str());
            overrides.push((key.as_str(), Cow::Borrowed(value)));
        }
    }
    overrides.sort_by(|a, b| a.0.cmp(b.0));
    // Merge two key-sorted sequences; on equal keys the override wins.
    let mut fields = Vec::with_capacity(event_payload.len() + overrides.len());
    let mut base = event_payload.iter().peekable();
    let mut over = overrides.into_iter().peekable();
    loop {
        let take_base = match (base.peek(), over.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((bk, _)), Some((ok, _))) => match bk.as_str().cmp(ok) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => {
                    base.next();
                    false
                }
                std::cmp::Ordering::Greater => false,
            },
        };
        if take_base {
            if let Some((k, v)) = base.next() {
                fields.push((k.as_str(), Cow::Borrowed(v)));
            }
        } else if let Some(field) = over.next() {
            fields.push(field);
        }
    }
    Payload { fields }
}

/// The JSON object delivered for one event to one hook: its fields in key order (the
/// order of a `serde_json` map), mostly borrowed from the event. See [`build_payload`].
#[derive(Debug, Clone, PartialEq)]
pub struct Payload<'a> {
    fields: Vec<(&'a str, Cow<'a, Value>)>,
}

impl<'a> Payload<'a> {
    /// The fields, in key order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (*k, v.as_ref()))
    }

    /// The value of one field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| self.fields[i].1.as_ref())
    }

    /// An owned copy, as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.fields()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }
}

impl<'a> From<&'a Map<String, Value>> for Payload<'a> {
    fn from(map: &'a Map<String, Value>) -> Self {
        Payload {
            fields: map
                .iter()
                .map(|(k, v)| (k.as_str(), Cow::Borrowed(v)))
                .collect(),
        }
    }
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.fields())
    }
}

#[cfg(test)]
mod tests;
