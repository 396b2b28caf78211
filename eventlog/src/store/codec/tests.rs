//! The record codec: the stored hash is the documented one, every damaged value is an
//! error with its seq, and a property test of the record decoder: whatever the stored
//! bytes, decoding returns an error or the exact record that was written, and never panics.
//! (The `fuzz/` crate drives the same function with libFuzzer; this runs briefly in every
//! `cargo test`.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use super::*;
use crate::store::tests::{account, ev, log_with, raw_value, read_all, read_until_error, with_raw};
use crate::EventLog;
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

#[test]
fn every_single_byte_flip_is_detected_without_panic() {
    let prev = [7u8; 32];
    let event = Event::EventAccepted {
        event_id: crate::ids::EventId::parse("call-1").unwrap(),
        account_id: account(),
        hook_event: "channel_create".to_owned(),
        payload: serde_json::json!({"call_id": "abc", "n": 1}),
    };
    let (value, hash) = encode_record(9, 1_700_000_000_000, &prev, &event).unwrap();
    let (record, checked_hash) = check_value(9, &prev, &value).unwrap();
    assert_eq!(record.event, event);
    assert_eq!(checked_hash, hash);

    for i in 0..value.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = value.clone();
            bad[i] ^= mask;
            match check_value(9, &prev, &bad) {
                Err(LogError::Corrupt { seq: 9, .. })
                | Err(LogError::UnknownVersion { seq: 9, .. })
                | Err(LogError::ChainBroken { seq: 9 }) => {}
                other => panic!("byte {i} ^ {mask:#x}: {other:?}"),
            }
        }
    }
    // Truncated and extended values too.
    for len in 0..value.len() {
        assert!(
            check_value(9, &prev, &value[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut longer = value.clone();
    longer.push(0);
    assert!(matches!(
        check_value(9, &prev, &longer),
        Err(LogError::Corrupt { seq: 9, .. })
    ));
}

#[test]
fn version_0_is_unknown_version() {
    let value = rmp_serde::to_vec_named(&Envelope {
        version: 0,
        time_ms: 0,
        prev_hash: vec![0; 32],
        body: Vec::new(),
        hash: vec![0; 32],
    })
    .unwrap();
    assert_eq!(
        check_value(1, &GENESIS_PREV_HASH, &value).err(),
        Some(LogError::UnknownVersion { seq: 1, version: 0 })
    );
}

#[test]
fn stored_hash_matches_the_documented_definition() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 2);
    with_raw(dir.path(), |db| {
        let mut prev = [0u8; 32];
        for seq in 1..=2u64 {
            let env: Envelope = rmp_serde::from_slice(&raw_value(db, seq)).unwrap();
            assert_eq!(env.version, RECORD_VERSION);
            assert_eq!(env.prev_hash, prev);
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&seq.to_be_bytes());
            bytes.extend_from_slice(&env.version.to_be_bytes());
            bytes.extend_from_slice(&env.time_ms.to_be_bytes());
            bytes.extend_from_slice(&env.prev_hash);
            bytes.extend_from_slice(&env.body);
            assert_eq!(env.hash, blake3::hash(&bytes).as_bytes());
            let event: Event = rmp_serde::from_slice(&env.body).unwrap();
            assert_eq!(event, ev(seq));
            prev.copy_from_slice(&env.hash);
        }
    });
}

#[test]
fn wrong_prev_hash_with_a_valid_hash_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 4);
    with_raw(dir.path(), |db| {
        // A well-formed record 3 that does not chain to record 2.
        let (value, _) = encode_record(3, 1, &GENESIS_PREV_HASH, &ev(33)).unwrap();
        db.put(key(3), value).unwrap();
    });

    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1, 2]);
    assert_eq!(err, Some(LogError::ChainBroken { seq: 3 }));
}

#[test]
fn version_99_is_unknown_version_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3);
    with_raw(dir.path(), |db| {
        // Record 2 as a future build would write it, with a valid hash.
        let prev = open_envelope(1, &raw_value(db, 1)).unwrap().hash;
        let body = rmp_serde::to_vec_named(&ev(2)).unwrap();
        let hash = record_hash(2, 99, 5, &prev, &body);
        let envelope = Envelope {
            version: 99,
            time_ms: 5,
            prev_hash: prev.to_vec(),
            body,
            hash: hash.to_vec(),
        };
        db.put(key(2), rmp_serde::to_vec_named(&envelope).unwrap())
            .unwrap();

        // Record 3 in an envelope layout this build has never seen.
        #[derive(Serialize)]
        struct FutureEnvelope {
            version: u16,
            payload: String,
        }
        let future = FutureEnvelope {
            version: 99,
            payload: "something new".to_owned(),
        };
        db.put(key(3), rmp_serde::to_vec_named(&future).unwrap())
            .unwrap();
    });

    // The tail (record 3) has an unknown version: a writable open refuses it.
    assert_eq!(
        EventLog::open(dir.path(), None).err(),
        Some(LogError::UnknownVersion {
            seq: 3,
            version: 99
        })
    );
    let log = EventLog::open_read_only(dir.path()).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1]);
    assert_eq!(
        err,
        Some(LogError::UnknownVersion {
            seq: 2,
            version: 99
        })
    );
    assert_eq!(
        read_all(&log, 3),
        [Err(LogError::UnknownVersion {
            seq: 2,
            version: 99
        })]
    );
}

#[test]
fn garbage_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3);
    with_raw(dir.path(), |db| {
        db.put(key(2), b"\xc1 this is not msgpack \x00\xff")
            .unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 2, .. })),
        "{err:?}"
    );

    for garbage in [
        &b""[..],
        b"plain text",
        b"\x92\x01\x02",
        b"\x81\xa7version\xa1x",
    ] {
        assert!(
            matches!(
                check_value(5, &GENESIS_PREV_HASH, garbage),
                Err(LogError::Corrupt { seq: 5, .. })
            ),
            "{garbage:?}"
        );
    }
}
