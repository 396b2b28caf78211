//! Retention pruning and the verification of pruned logs: what is removed and kept, the
//! checkpoint, walks of a pruned log, tampering with one, and the disk space given back.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use rocksdb::DB;
use serde::Serialize;

use super::*;
use crate::ids::EventId;
use crate::store::checkpoint::{load_checkpoint, Checkpoint};
use crate::store::codec::{bin, encode_record, key, open_envelope, GENESIS_PREV_HASH, META_CF};
use crate::store::iter::READ_CHUNK;
use crate::store::tests::{
    account, ev, even, log_with, n_of, ok_seqs, raw_value, read_all, read_until_error, seqs,
    with_raw,
};
use crate::store::CommitHook;
use crate::{Event, EventLog, LogError};

fn stored_hash(db: &DB, seq: u64) -> [u8; 32] {
    open_envelope(seq, &raw_value(db, seq)).unwrap().hash
}

/// A closed log holding 1..=20, pruned through 10 with `even`: records 1, 3, 5, 7, 9 and
/// 11..=20 are left, and the checkpoint is record 21.
fn pruned_log(dir: &Path) {
    log_with(dir, 20);
    let log = EventLog::open(dir, None).unwrap();
    let summary = log.prune(10, even).unwrap();
    assert_eq!(
        summary,
        PruneSummary {
            removed: 5,
            kept: 5,
            checkpoint_seq: 21
        }
    );
}

// ---------------------------------------------------------------------------------------
// Pruning

#[test]
fn prune_removes_only_what_the_predicate_says_and_appends_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 20);
    let mut hashes = Vec::new();
    with_raw(dir.path(), |db| {
        hashes = (1..=20).map(|seq| stored_hash(db, seq)).collect();
    });

    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: CommitHook = {
        let seen = Arc::clone(&seen);
        Arc::new(move |r: &Record| seen.lock().unwrap().push(r.clone()))
    };
    let log = EventLog::open(dir.path(), Some(hook)).unwrap();
    let summary = log.prune(10, even).unwrap();
    assert_eq!(
        summary,
        PruneSummary {
            removed: 5,
            kept: 5,
            checkpoint_seq: 21
        }
    );

    let records: Vec<Record> = read_all(&log, 1).into_iter().map(Result::unwrap).collect();
    let mut expected: Vec<u64> = vec![1, 3, 5, 7, 9];
    expected.extend(11..=21);
    assert_eq!(seqs(&records), expected);
    assert_eq!(
        records[..15].iter().map(n_of).collect::<Vec<_>>(),
        expected[..15]
    );

    // The checkpoint, exactly as documented.
    let mut digest = blake3::Hasher::new();
    for seq in [1u64, 3, 5, 7, 9] {
        digest.update(&seq.to_be_bytes());
        digest.update(&hashes[seq as usize - 1]);
    }
    let checkpoint = Event::LogPruned {
        cut_seq: 10,
        cut_hash: hex::encode(hashes[9]),
        kept: 5,
        kept_digest: digest.finalize().to_hex().to_string(),
        removed: 5,
    };
    assert_eq!(records[15].event, checkpoint);
    assert_eq!(checkpoint.kind(), "log_pruned");
    // It went through the writer: the commit hook saw it.
    assert_eq!(seen.lock().unwrap().as_slice(), &records[15..]);

    let summary = log.verify().unwrap();
    assert_eq!(summary.records, 16);
    assert_eq!(summary.first_seq, 1);
    assert_eq!(summary.last_seq, 21);
    assert_eq!(
        (
            summary.pruned_through,
            summary.pruned,
            summary.kept,
            summary.checkpoint_seq
        ),
        (10, 5, 5, 21)
    );
    drop(log);

    // The metadata, as documented.
    with_raw(dir.path(), |db| {
        let c = load_checkpoint(db).unwrap().unwrap();
        assert_eq!(c.checkpoint_seq, 21);
        assert!(c.matches(&checkpoint));
        assert!(db.get(key(2)).unwrap().is_none());
        assert!(db.get(key(3)).unwrap().is_some());
    });
}

#[test]
fn a_pruned_log_verifies_after_reopen_appends_and_a_second_prune() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());

    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.last_seq(), 21);
    assert_eq!(log.verify().unwrap().records, 16);
    log.append_blocking((22..=30).map(ev).collect()).unwrap();
    assert_eq!(log.verify().unwrap().records, 25);

    // Monotonic cuts, never the tail.
    for cut in [0, 5, 10, 30, 31] {
        assert!(
            matches!(log.prune(cut, even), Err(LogError::InvalidPrune { cut_seq, .. }) if cut_seq == cut),
            "{cut}"
        );
    }
    // The second prune also removes a record the first kept (3), and the first checkpoint.
    let second = log
        .prune(25, |r| even(r) || r.seq == 3 || r.seq == 21)
        .unwrap();
    // Removed: 3, 12, 14, 16, 18, 20, 21, 22, 24.
    assert_eq!(
        second,
        PruneSummary {
            removed: 9,
            kept: 11,
            checkpoint_seq: 31
        }
    );
    let mut expected = vec![1, 5, 7, 9, 11, 13, 15, 17, 19, 23, 25];
    expected.extend(26..=31);
    assert_eq!(ok_seqs(&log, 1), expected);
    let summary = log.verify().unwrap();
    assert_eq!(
        (
            summary.records,
            summary.pruned_through,
            summary.pruned,
            summary.kept,
            summary.checkpoint_seq
        ),
        (17, 25, 14, 11, 31)
    );
    drop(log);

    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.verify().unwrap().records, 17);
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.verify().unwrap().records, 17);
    assert_eq!(ro.prune(26, even), Err(LogError::ReadOnly));
}

#[test]
fn iter_from_inside_at_and_after_the_pruned_region() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());
    let log = EventLog::open(dir.path(), None).unwrap();
    let after: Vec<u64> = (11..=21).collect();
    let with = |head: &[u64]| -> Vec<u64> { head.iter().copied().chain(after.clone()).collect() };

    assert_eq!(ok_seqs(&log, 1), with(&[1, 3, 5, 7, 9]));
    assert_eq!(ok_seqs(&log, 2), with(&[3, 5, 7, 9]));
    assert_eq!(ok_seqs(&log, 4), with(&[5, 7, 9]));
    assert_eq!(ok_seqs(&log, 9), with(&[9]));
    assert_eq!(ok_seqs(&log, 10), after);
    // The cut's successor is seeded with the checkpoint's `cut_hash` (record 10 is gone).
    assert_eq!(ok_seqs(&log, 11), after);
    assert_eq!(ok_seqs(&log, 12), (12..=21).collect::<Vec<_>>());
    assert_eq!(ok_seqs(&log, 21), [21]);
    assert!(read_all(&log, 22).is_empty());
    assert!(read_all(&log, 100).is_empty());
}

#[test]
fn appending_a_checkpoint_directly_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    let forged = Event::LogPruned {
        cut_seq: 1,
        cut_hash: "00".repeat(32),
        kept: 0,
        kept_digest: "00".repeat(32),
        removed: 0,
    };
    assert!(matches!(
        log.append_blocking(vec![ev(1), forged.clone()]),
        Err(LogError::InvalidPrune { cut_seq: 1, .. })
    ));
    assert_eq!(log.last_seq(), 0);
}

#[test]
fn a_damaged_log_is_not_pruned() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 8);
    with_raw(dir.path(), |db| db.delete(key(3)).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.prune(5, even),
        Err(LogError::Gap {
            expected: 3,
            found: 4
        })
    );
    assert_eq!(log.last_seq(), 8);
}

#[test]
fn pruning_while_appends_run_keeps_every_append() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 100);
    let log = EventLog::open(dir.path(), None).unwrap();
    let appender = {
        let log = log.clone();
        thread::spawn(move || {
            (0..200u64)
                .map(|i| log.append_blocking(vec![ev(1001 + 2 * i)]).unwrap()[0].seq)
                .collect::<Vec<_>>()
        })
    };
    log.prune(40, even).unwrap();
    log.prune(90, even).unwrap();
    let appended = appender.join().unwrap();
    let present: HashSetU64 = ok_seqs(&log, 1).into_iter().collect();
    assert!(appended.iter().all(|seq| present.contains(seq)));
    let summary = log.verify().unwrap();
    assert_eq!(summary.kept, 45);
    assert_eq!(summary.records, 45 + 10 + 200 + 2);
}

type HashSetU64 = std::collections::HashSet<u64>;

#[test]
fn an_iterator_survives_a_prune_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let n = READ_CHUNK as u64 * 2 + 50;
    log_with(dir.path(), n);
    let log = EventLog::open(dir.path(), None).unwrap();
    let mut it = log.iter_from(1);
    let first: Vec<u64> = it.by_ref().take(5).map(|r| r.unwrap().seq).collect();
    assert_eq!(first, [1, 2, 3, 4, 5]);
    let cut = READ_CHUNK as u64 + 100;
    log.prune(cut, even).unwrap();
    // The first chunk was read before the prune; the rest is read under the new checkpoint.
    let rest: Vec<u64> = it.map(|r| r.unwrap().seq).collect();
    assert_eq!(rest.last(), Some(&(n + 1)));
    assert!(rest.contains(&(cut + 1)));
    assert!(!rest.contains(&(cut - 2)));
    assert_eq!(log.verify().unwrap().checkpoint_seq, n + 1);
}

// ---------------------------------------------------------------------------------------
// Tampering with a pruned log

#[test]
fn a_flipped_byte_in_a_kept_record_of_the_region_is_corrupt_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());
    with_raw(dir.path(), |db| {
        let mut v = raw_value(db, 5);
        let last = v.len() - 1;
        v[last] ^= 0x01;
        db.put(key(5), v).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1, 3]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 5, .. })),
        "{err:?}"
    );
    assert!(matches!(
        log.verify(),
        Err(LogError::Corrupt { seq: 5, .. })
    ));
}

#[test]
fn a_deleted_kept_record_of_the_region_is_reported_at_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());
    with_raw(dir.path(), |db| db.delete(key(7)).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    // Reported when the walk leaves the region, before anything after the cut.
    assert_eq!(ok, [1, 3, 5, 9]);
    assert!(
        matches!(
            err,
            Some(LogError::CheckpointMismatch {
                checkpoint_seq: 21,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.unwrap().to_string().contains("holds 4 records"));
    assert!(matches!(
        log.verify(),
        Err(LogError::CheckpointMismatch {
            checkpoint_seq: 21,
            ..
        })
    ));
}

#[test]
fn a_pruned_record_put_back_or_a_replaced_kept_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 20);
    let mut two = Vec::new();
    with_raw(dir.path(), |db| two = raw_value(db, 2));
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.prune(10, even).unwrap();
    }
    // A removed record restored: well-formed, but not in the kept set.
    with_raw(dir.path(), |db| db.put(key(2), &two).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    assert!(matches!(
        log.verify(),
        Err(LogError::CheckpointMismatch {
            checkpoint_seq: 21,
            ..
        })
    ));
    drop(log);

    // A kept record swapped for another well-formed record with its own valid hash.
    with_raw(dir.path(), |db| {
        db.delete(key(2)).unwrap();
        let (value, _) = encode_record(3, 1, &GENESIS_PREV_HASH, &ev(33)).unwrap();
        db.put(key(3), value).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let err = log.verify().unwrap_err();
    assert!(
        matches!(
            err,
            LogError::CheckpointMismatch {
                checkpoint_seq: 21,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[test]
fn an_altered_first_record_after_the_cut_is_detected_at_cut_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());
    let mut original = Vec::new();
    with_raw(dir.path(), |db| {
        original = raw_value(db, 11);
        let mut v = original.clone();
        let last = v.len() - 1;
        v[last] ^= 0x01;
        db.put(key(11), v).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1, 3, 5, 7, 9]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 11, .. })),
        "{err:?}"
    );
    assert!(matches!(
        read_all(&log, 11).first(),
        Some(Err(LogError::Corrupt { seq: 11, .. }))
    ));
    drop(log);

    // A well-formed record 11 that does not chain to the cut.
    with_raw(dir.path(), |db| {
        let (value, _) = encode_record(11, 1, &GENESIS_PREV_HASH, &ev(11)).unwrap();
        db.put(key(11), value).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.verify(), Err(LogError::ChainBroken { seq: 11 }));
    assert_eq!(
        read_all(&log, 11).first(),
        Some(&Err(LogError::ChainBroken { seq: 11 }))
    );
    drop(log);

    // Record 11 deleted: a gap at the cut's successor.
    with_raw(dir.path(), |db| db.delete(key(11)).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.verify(),
        Err(LogError::Gap {
            expected: 11,
            found: 12
        })
    );
}

#[test]
fn tampered_or_lost_prune_metadata_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    pruned_log(dir.path());

    // A metadata that disagrees with the chained checkpoint record.
    let mut stored = Vec::new();
    with_raw(dir.path(), |db| {
        let cf = db.cf_handle(META_CF).unwrap();
        stored = db.get_cf(cf, b"prune_checkpoint").unwrap().unwrap();
        let mut c = load_checkpoint(db).unwrap().unwrap();
        c.removed += 1;
        let value = prune_tests_encode(&c);
        db.put_cf(cf, b"prune_checkpoint", value).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let err = log.verify().unwrap_err();
    assert!(
        matches!(
            err,
            LogError::CheckpointMismatch {
                checkpoint_seq: 21,
                ..
            }
        ),
        "{err:?}"
    );
    drop(log);

    // Garbage metadata: reported, not a panic.
    with_raw(dir.path(), |db| {
        let cf = db.cf_handle(META_CF).unwrap();
        db.put_cf(cf, b"prune_checkpoint", b"garbage").unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert!(matches!(log.verify(), Err(LogError::Metadata(_))));
    drop(log);

    // Lost metadata: the region's holes are gaps again.
    with_raw(dir.path(), |db| {
        let cf = db.cf_handle(META_CF).unwrap();
        db.delete_cf(cf, b"prune_checkpoint").unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.verify(),
        Err(LogError::Gap {
            expected: 2,
            found: 3
        })
    );
    drop(log);

    // The checkpoint record removed from the tail (metadata restored).
    with_raw(dir.path(), |db| {
        let cf = db.cf_handle(META_CF).unwrap();
        db.put_cf(cf, b"prune_checkpoint", &stored).unwrap();
        db.delete(key(21)).unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert!(matches!(
        log.verify(),
        Err(LogError::CheckpointMismatch {
            checkpoint_seq: 21,
            ..
        })
    ));
}

fn prune_tests_encode(c: &Checkpoint) -> Vec<u8> {
    #[derive(Serialize)]
    struct Stored {
        version: u16,
        cut_seq: u64,
        #[serde(with = "bin")]
        cut_hash: Vec<u8>,
        kept: u64,
        #[serde(with = "bin")]
        kept_digest: Vec<u8>,
        removed: u64,
        checkpoint_seq: u64,
    }
    rmp_serde::to_vec_named(&Stored {
        version: 1,
        cut_seq: c.cut_seq,
        cut_hash: c.cut_hash.to_vec(),
        kept: c.kept,
        kept_digest: c.kept_digest.to_vec(),
        removed: c.removed,
        checkpoint_seq: c.checkpoint_seq,
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Disk

/// A call event with `size` bytes of incompressible payload.
fn big_call(n: u64, size: usize) -> Event {
    let blob: String = (0..size / 32)
        .map(|_| hex::encode(rand::random::<[u8; 16]>()))
        .collect();
    Event::EventAccepted {
        event_id: EventId::parse(&format!("call-{n}")).unwrap(),
        account_id: account(),
        hook_event: "channel_create".to_owned(),
        payload: serde_json::json!({ "blob": blob }),
    }
}

fn live_sst_bytes(log: &EventLog) -> u64 {
    log.inner
        .db
        .property_int_value("rocksdb.live-sst-files-size")
        .unwrap()
        .unwrap()
}

#[test]
fn pruning_many_large_records_gives_disk_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    for chunk in 0..40u64 {
        let events = (0..50)
            .map(|i| big_call(chunk * 50 + i, 8 * 1024))
            .collect();
        log.append_blocking(events).unwrap();
        if chunk % 10 == 0 {
            log.append_blocking(vec![ev(chunk)]).unwrap();
        }
    }
    log.inner.db.flush().unwrap();
    log.inner.db.compact_range(None::<&[u8]>, None::<&[u8]>);
    let before = live_sst_bytes(&log);
    assert!(before > 8 * 1024 * 1024, "{before} bytes before the prune");

    let last = log.last_seq();
    let summary = log
        .prune(last - 1, |r| matches!(r.event, Event::EventAccepted { .. }))
        .unwrap();
    assert_eq!(summary.kept, 4);
    let after = live_sst_bytes(&log);
    assert!(
        after * 20 < before,
        "{after} bytes after the prune, {before} before"
    );
    assert_eq!(log.verify().unwrap().records, 4 + 1 + 1);
}
