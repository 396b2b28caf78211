use std::collections::VecDeque;

use eventlog::WebhookId;
use serde_json::{json, Value};

use super::*;
use crate::registry::Webhook;

fn payload_of(event: Event) -> (AccountId, String, Value) {
    match event {
        Event::EventAccepted {
            account_id,
            hook_event,
            payload,
            ..
        } => (account_id, hook_event, payload),
        other => panic!("not an accepted event: {other:?}"),
    }
}

#[test]
fn an_auto_disabled_hook_is_announced_to_its_accounts_notification_hooks() {
    let account = AccountId::parse(&format!("{:032x}", 1)).unwrap();
    let id = WebhookId::parse(&format!("{:032x}", 2)).unwrap();
    let webhook = Webhook {
        id: id.clone(),
        account_id: account.clone(),
        doc: json!({"name": "h", "uri": "http://example.com/", "hook": "channel_create"})
            .as_object()
            .cloned()
            .unwrap(),
        disable_reason: None,
        recent_failures: VecDeque::new(),
        created_ms: 0,
        modified_ms: 0,
        doc_seq: 0,
        secrets: Default::default(),
    };
    let (to, hook_event, payload) = payload_of(webhook_disabled(&HookConfig::new(&webhook, false)));
    assert_eq!(
        (to, hook_event.as_str()),
        (account.clone(), "notifications")
    );
    assert_eq!(payload["event_name"], "webhook_disabled");
    assert_eq!(payload["event_category"], "notification");
    assert_eq!(payload["app_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(payload["account_id"], account.as_str());
    assert_eq!(payload["hook_id"], id.as_str());
    assert_eq!(
        payload["hook"],
        json!({
            "id": id.as_str(),
            "name": "h",
            "uri": "http://example.com/",
            "event": "channel_create",
            "disable_reason": AUTO_DISABLE_REASON,
        })
    );
}

#[test]
fn an_account_change_is_an_object_event_of_type_account() {
    let account = AccountId::parse(&format!("{:032x}", 3)).unwrap();
    let (to, hook_event, payload) = payload_of(account_object(&account, "doc_edited"));
    assert_eq!((to, hook_event.as_str()), (account.clone(), "object"));
    assert_eq!(
        payload,
        json!({
            "id": account.as_str(),
            "account_id": account.as_str(),
            "type": "account",
            "action": "doc_edited",
        })
    );
}
