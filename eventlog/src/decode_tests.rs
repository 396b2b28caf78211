//! Property test of the record decoder: whatever the stored bytes, decoding returns an
//! error or the exact record that was written, and never panics. (The `fuzz/` crate
//! drives the same function with libFuzzer; this runs briefly in every `cargo test`.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::{decode_stored_record, encode_stored_record, AccountId, Event, EventId, WebhookId};

fn sample_events() -> Vec<Event> {
    vec![
        Event::AccountCreated {
            account_id: AccountId::generate(),
            parent_id: None,
            api_key: "k".repeat(64),
            doc: json!({"name": "acct", "nested": {"a": [1, 2.5, null, true]}}),
        },
        Event::WebhookCreated {
            account_id: AccountId::generate(),
            webhook_id: WebhookId::generate(),
            doc: json!({"name": "h", "uri": "http://example.com/x", "hook": "all", "retries": 2}),
        },
        Event::EventAccepted {
            event_id: EventId::generate(),
            account_id: AccountId::generate(),
            hook_event: "channel_create".into(),
            payload: json!({"call_id": "c", "caller_id_name": "Zoë ☎", "ccv": {"k": "v"}}),
        },
    ]
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20_000 {
        let len = rng.random_range(0..300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        assert!(decode_stored_record(1, &bytes).is_err());
    }
}

#[test]
fn mutated_records_decode_to_an_error_or_to_exactly_what_was_written() {
    let mut rng = StdRng::seed_from_u64(11);
    let prev = [3u8; 32];
    for event in sample_events() {
        let value = encode_stored_record(5, 1_700_000_000_000, &prev, &event).unwrap();
        let clean = decode_stored_record(5, &value).unwrap();
        assert_eq!(clean.event, event);
        for _ in 0..5_000 {
            let mut mutated = value.clone();
            match rng.random_range(0..4) {
                0 => {
                    let i = rng.random_range(0..mutated.len());
                    mutated[i] ^= 1 << rng.random_range(0..8);
                }
                1 => mutated.truncate(rng.random_range(0..mutated.len())),
                2 => {
                    let i = rng.random_range(0..=mutated.len());
                    mutated.insert(i, rng.random());
                }
                _ => {
                    let i = rng.random_range(0..mutated.len());
                    let j = rng.random_range(0..mutated.len());
                    mutated.swap(i, j);
                }
            }
            if let Ok(record) = decode_stored_record(5, &mutated) {
                assert_eq!(record, clean, "a changed record decoded to something else");
            }
        }
        // The same bytes under another sequence number fail the hash.
        assert!(decode_stored_record(6, &value).is_err());
    }
}
