//! The static hook catalog served by the REST API.
//!
//! This module owns the data that never changes while the daemon runs:
//!
//! * the list of available hooks returned by `GET /v2/webhooks` (one item per hook, with
//!   the `object` and `notifications` modifiers);
//! * the modifier selections that validation checks `custom_data.type` and
//!   `custom_data.action` against;
//! * the sample payloads returned by `GET /v2/webhooks/samples[/{SAMPLE_ID}]`.
//!
//! The data lives in JSON files under `src/catalog/`, embedded with `include_str!` and
//! parsed once on first use. The unit tests prove the embedded JSON parses, so the
//! `expect` calls below cannot fire in a built binary.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::Value;

#[cfg(test)]
mod tests;

/// Message for the startup-fatal invariant that the embedded data parses.
const EMBEDDED_JSON: &str = "embedded catalog JSON is valid";

/// The hooks a webhook document may name (besides the pseudo hook `all`), in the order
/// `GET /v2/webhooks` lists them.
const HOOK_IDS: &[&str] = &[
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
    "channel_hold",
    "channel_unhold",
    "object",
    "notifications",
    "parking",
];

/// The pseudo hook that matches every event; valid as a `hook` value, never listed.
const ALL: &str = "all";

/// Sample ids (sorted) and the suffix after `webhooks_`, paired with the embedded file.
const SAMPLE_FILES: &[(&str, &str)] = &[
    (
        "webhooks_channel_answer",
        include_str!("catalog/samples/webhooks_channel_answer.json"),
    ),
    (
        "webhooks_channel_bridge",
        include_str!("catalog/samples/webhooks_channel_bridge.json"),
    ),
    (
        "webhooks_channel_create",
        include_str!("catalog/samples/webhooks_channel_create.json"),
    ),
    (
        "webhooks_channel_destroy",
        include_str!("catalog/samples/webhooks_channel_destroy.json"),
    ),
    (
        "webhooks_channel_hold",
        include_str!("catalog/samples/webhooks_channel_hold.json"),
    ),
    (
        "webhooks_channel_unhold",
        include_str!("catalog/samples/webhooks_channel_unhold.json"),
    ),
    (
        "webhooks_notifications",
        include_str!("catalog/samples/webhooks_notifications.json"),
    ),
    (
        "webhooks_object",
        include_str!("catalog/samples/webhooks_object.json"),
    ),
    (
        "webhooks_parking",
        include_str!("catalog/samples/webhooks_parking.json"),
    ),
];

const SAMPLE_IDS: &[&str] = &[
    "webhooks_channel_answer",
    "webhooks_channel_bridge",
    "webhooks_channel_create",
    "webhooks_channel_destroy",
    "webhooks_channel_hold",
    "webhooks_channel_unhold",
    "webhooks_notifications",
    "webhooks_object",
    "webhooks_parking",
];

static AVAILABLE_HOOKS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("catalog/available_hooks.json")).expect(EMBEDDED_JSON)
});

static SAMPLES: LazyLock<Vec<(&'static str, Vec<Value>)>> = LazyLock::new(|| {
    SAMPLE_FILES
        .iter()
        .map(|(id, text)| {
            let payloads: Vec<Value> = serde_json::from_str(text).expect(EMBEDDED_JSON);
            (*id, payloads)
        })
        .collect()
});

static OBJECT_TYPES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| array_modifier_items("object", "type"));

static OBJECT_ACTIONS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| array_modifier_items("object", "action"));

static NOTIFICATION_TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let items = modifier("notifications", "type")
        .and_then(|m| m.get("items"))
        .and_then(Value::as_object);
    // Sorted explicitly so the order does not depend on serde_json's map features.
    let keys: BTreeSet<&'static str> = items
        .into_iter()
        .flat_map(|map| map.keys().map(String::as_str))
        .collect();
    keys.into_iter().collect()
});

/// The `modifiers.{name}` object of the available hook `hook_id`, if it has one.
fn modifier(hook_id: &str, name: &str) -> Option<&'static Value> {
    available_hook(hook_id)?.get("modifiers")?.get(name)
}

/// The string `items` of an array-typed modifier, in catalog order.
fn array_modifier_items(hook_id: &str, name: &str) -> Vec<&'static str> {
    modifier(hook_id, name)
        .and_then(|m| m.get("items"))
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The items of `GET /v2/webhooks`: `{id, name, description, modifiers?}` per hook.
pub(crate) fn available_hooks() -> &'static [Value] {
    &AVAILABLE_HOOKS
}

/// The available-hook item with this id (`channel_create`, `object`, ...).
pub(crate) fn available_hook(hook_id: &str) -> Option<&'static Value> {
    available_hooks()
        .iter()
        .find(|item| item.get("id").and_then(Value::as_str) == Some(hook_id))
}

/// The nine hooks a webhook can subscribe to (the pseudo hook `all` excluded).
pub(crate) fn hook_ids() -> &'static [&'static str] {
    HOOK_IDS
}

/// Whether `hook` is a valid `hook` value: one of [`hook_ids`] or `"all"`.
pub(crate) fn is_known_hook(hook: &str) -> bool {
    hook == ALL || HOOK_IDS.contains(&hook)
}

/// The allowed `custom_data.type` values of an `object` hook, `"all"` included.
pub(crate) fn object_types() -> &'static [&'static str] {
    &OBJECT_TYPES
}

/// The allowed `custom_data.action` values of an `object` hook, `"all"` included.
pub(crate) fn object_actions() -> &'static [&'static str] {
    &OBJECT_ACTIONS
}

/// The allowed `custom_data.type` values of a `notifications` hook: every notification
/// event name plus `"all"`, sorted.
pub(crate) fn notification_types() -> &'static [&'static str] {
    &NOTIFICATION_TYPES
}

/// The sample ids of `GET /v2/webhooks/samples`, sorted.
pub(crate) fn sample_ids() -> &'static [&'static str] {
    SAMPLE_IDS
}

/// The sample payloads for `id`. Besides Kazoo's `webhooks_X` ids, the singular
/// `webhook_X` spelling of the user's API document is accepted. Unknown ids give `None`.
pub(crate) fn samples(id: &str) -> Option<&'static [Value]> {
    let suffix = id
        .strip_prefix("webhooks_")
        .or_else(|| id.strip_prefix("webhook_"))?;
    SAMPLES
        .iter()
        .find(|(known, _)| known.strip_prefix("webhooks_") == Some(suffix))
        .map(|(_, payloads)| payloads.as_slice())
}
