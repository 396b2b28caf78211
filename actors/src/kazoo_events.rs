//! The events this daemon publishes itself, in Kazoo's shapes, each built by a pure
//! function: the `webhook_disabled` notification that a hook's auto-disable sends to its
//! account's `notifications` hooks, and the `object` events (`type: account`) that an
//! account change sends. They are `EventAccepted` records like any ingested event, so
//! they are matched, delivered and retried the same way.
//!
//! Must not: append, match or deliver (the caller appends the event in the batch of the
//! change it reports).

use eventlog::{AccountId, Event, EventId};
use serde_json::json;

use crate::hook_config::HookConfig;
use crate::registry::AUTO_DISABLE_REASON;

/// The `webhook_disabled` notification of an auto-disabled hook, delivered to the
/// account's `notifications` hooks.
pub fn webhook_disabled(hook: &HookConfig) -> Event {
    Event::EventAccepted {
        event_id: EventId::generate(),
        account_id: hook.account_id.clone(),
        hook_event: "notifications".to_owned(),
        payload: json!({
            "event_name": "webhook_disabled",
            "event_category": "notification",
            "app_name": "piston-webhooks",
            "app_version": env!("CARGO_PKG_VERSION"),
            "account_id": hook.account_id.as_str(),
            "hook_id": hook.id.as_str(),
            "hook": {
                "id": hook.id.as_str(),
                "name": hook.name,
                "uri": hook.uri,
                "event": hook.hook,
                "disable_reason": AUTO_DISABLE_REASON,
            },
        }),
    }
}

/// The `object` event an account change fires (`type: account`, `action` one of
/// `doc_created`, `doc_edited`, `doc_deleted`), delivered to the account's own object
/// hooks and its ancestors' that include subaccounts.
pub fn account_object(account_id: &AccountId, action: &str) -> Event {
    Event::EventAccepted {
        event_id: EventId::generate(),
        account_id: account_id.clone(),
        hook_event: "object".to_owned(),
        payload: json!({
            "id": account_id.as_str(),
            "account_id": account_id.as_str(),
            "type": "account",
            "action": action,
        }),
    }
}

#[cfg(test)]
mod tests;
