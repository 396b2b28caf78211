//! The projection on a real log: restoring from a snapshot plus the tail rebuilds the
//! registry the live commit hook built, and so does a full replay.

use eventlog::{AccountId, Event, EventId, WebhookId};
use serde_json::json;

use super::*;

fn setup_events(master: &AccountId, hook: &WebhookId) -> Vec<Event> {
    vec![
        Event::AccountCreated {
            account_id: master.clone(),
            parent_id: None,
            api_key: "projection-test-key".into(),
            doc: json!({"name": "Master Account"}),
        },
        Event::WebhookCreated {
            account_id: master.clone(),
            webhook_id: hook.clone(),
            doc: json!({"name": "h", "hook": "all", "uri": "http://example.com"}),
        },
    ]
}

fn accepted(master: &AccountId, event_id: &str) -> Event {
    Event::EventAccepted {
        event_id: EventId::parse(event_id).unwrap(),
        account_id: master.clone(),
        hook_event: "channel_create".into(),
        payload: json!({"call_id": format!("call-{event_id}")}),
    }
}

#[tokio::test]
async fn a_start_restores_the_snapshot_and_replays_the_tail_through_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eventlog");
    let (master, hook) = (AccountId::generate(), WebhookId::generate());

    let live = Projection::new();
    let log = live.open_log(&path).unwrap();
    log.append(setup_events(&master, &hook)).await.unwrap();
    let bytes = snapshot::encode(&live.registry().read()).unwrap();
    log.save_snapshot(2, &bytes).unwrap();
    log.append(vec![accepted(&master, "ev-1"), accepted(&master, "ev-2")])
        .await
        .unwrap();
    assert_eq!(live.registry().read().pending_count(), 2);
    log.close().unwrap();
    drop(log);

    let restarted = Projection::new();
    let log = restarted.open_log(&path).unwrap();
    assert_eq!(
        restarted.restore(&log).unwrap(),
        Restored {
            snapshot_seq: 2,
            replayed_records: 2,
        }
    );
    assert_eq!(*restarted.registry().read(), *live.registry().read());

    let replayed = Projection::new();
    assert_eq!(replayed.replay(&log, 1).unwrap(), 4);
    assert_eq!(*replayed.registry().read(), *live.registry().read());
    log.close().unwrap();
}

#[tokio::test]
async fn an_unusable_snapshot_means_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eventlog");
    let (master, hook) = (AccountId::generate(), WebhookId::generate());
    let live = Projection::new();
    let log = live.open_log(&path).unwrap();
    log.append(setup_events(&master, &hook)).await.unwrap();
    log.save_snapshot(2, b"not a snapshot").unwrap();

    let restarted = Projection::new();
    assert_eq!(
        restarted.restore(&log).unwrap(),
        Restored {
            snapshot_seq: 0,
            replayed_records: 2,
        }
    );
    assert_eq!(*restarted.registry().read(), *live.registry().read());
    log.close().unwrap();
}
