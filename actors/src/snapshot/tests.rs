use eventlog::{AccountId, Event, Record, WebhookId};
use serde_json::json;

use super::*;

#[test]
fn a_registry_round_trips_and_garbage_is_an_error() {
    let mut registry = Registry::new();
    let account = AccountId::generate();
    let records = [
        Event::AccountCreated {
            account_id: account.clone(),
            parent_id: None,
            api_key: "k".into(),
            doc: json!({"name": "m"}),
        },
        Event::WebhookCreated {
            account_id: account.clone(),
            webhook_id: WebhookId::generate(),
            doc: json!({"hook": "all", "name": "h", "uri": "http://example.com"}),
        },
        Event::EventAccepted {
            event_id: eventlog::EventId::generate(),
            account_id: account,
            hook_event: "channel_create".into(),
            payload: json!({"call_id": "c"}),
        },
    ];
    for (i, event) in records.into_iter().enumerate() {
        registry.apply(&Record {
            seq: i as u64 + 1,
            time_ms: 1000,
            event,
        });
    }
    assert_eq!(registry.pending_count(), 1);
    let bytes = encode(&registry).unwrap();
    assert_eq!(decode(&bytes).unwrap(), registry);
    assert!(decode(b"not a snapshot").is_err());
    let mut other_version = rmp_serde::to_vec_named(&SnapshotFileRef {
        version: 99,
        registry: &registry,
    })
    .unwrap();
    assert!(matches!(
        decode(&other_version),
        Err(SnapshotError::UnknownVersion(99))
    ));
    other_version.truncate(10);
    assert!(decode(&other_version).is_err());
}
