//! Snapshots: saved and loaded, generations, fallbacks past a damaged or foreign one,
//! and a snapshot at a prune's cut.

use std::path::Path;
use std::thread;

use super::*;
use crate::store::codec::{key, SNAPSHOTS_CF};
use crate::store::tests::{ev, even, log_with, ok_seqs, with_raw};
use crate::{EventLog, LogError};

fn snapshot_keys(dir: &Path) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    with_raw(dir, |db| {
        let cf = db.cf_handle(SNAPSHOTS_CF).unwrap();
        for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            keys.push(item.unwrap().0.to_vec());
        }
    });
    keys
}

/// Flips the last byte (inside `bytes`) of the snapshot stored under `generation`.
fn corrupt_snapshot(dir: &Path, generation: u64) {
    with_raw(dir, |db| {
        let cf = db.cf_handle(SNAPSHOTS_CF).unwrap();
        let mut v = db.get_cf(cf, key(generation)).unwrap().unwrap();
        let last = v.len() - 1;
        v[last] ^= 0x01;
        db.put_cf(cf, key(generation), v).unwrap();
    });
}

#[test]
fn snapshot_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
    log.save_snapshot(3, b"state after 3").unwrap();
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 3,
            bytes: b"state after 3".to_vec()
        })
    );
    // Empty state is a state too.
    log.save_snapshot(5, b"").unwrap();
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 5,
            bytes: Vec::new()
        })
    );
    // Snapshots are invisible to reads and verification.
    assert_eq!(ok_seqs(&log, 1), [1, 2, 3, 4, 5]);
    assert_eq!(log.verify().unwrap().records, 5);
}

#[test]
fn newest_valid_snapshot_wins_and_only_two_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 6);
    let log = EventLog::open(dir.path(), None).unwrap();
    log.save_snapshot(2, b"two").unwrap();
    log.save_snapshot(4, b"four").unwrap();
    assert_eq!(log.load_snapshot().unwrap().unwrap().bytes, b"four");
    // The newest write wins, even at a lower seq.
    log.save_snapshot(3, b"three").unwrap();
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 3,
            bytes: b"three".to_vec()
        })
    );
    drop(log);
    assert_eq!(
        snapshot_keys(dir.path()),
        [key(2).to_vec(), key(3).to_vec()]
    );
}

#[test]
fn a_corrupt_snapshot_falls_back_to_the_previous_then_to_none() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 6);
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.save_snapshot(2, b"two").unwrap();
        log.save_snapshot(4, b"four").unwrap();
    }
    corrupt_snapshot(dir.path(), 2);
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 2,
            bytes: b"two".to_vec()
        })
    );
    drop(log);

    corrupt_snapshot(dir.path(), 1);
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
    drop(log);

    // Garbage and a foreign key in the family: skipped, not a panic.
    with_raw(dir.path(), |db| {
        let cf = db.cf_handle(SNAPSHOTS_CF).unwrap();
        db.put_cf(cf, key(3), b"\xc1 not msgpack").unwrap();
        db.put_cf(cf, b"odd key", b"x").unwrap();
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
    // A new save replaces all that and works.
    log.save_snapshot(6, b"six").unwrap();
    assert_eq!(log.load_snapshot().unwrap().unwrap().seq, 6);
}

#[test]
fn a_snapshot_whose_record_hash_differs_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    log_with(a.path(), 5);
    {
        let log = EventLog::open(a.path(), None).unwrap();
        log.save_snapshot(4, b"state of log a").unwrap();
    }
    // Log b has different records under the same seqs, and a snapshot of its own.
    {
        let log = EventLog::open(b.path(), None).unwrap();
        log.append_blocking((11..=15).map(ev).collect()).unwrap();
        log.save_snapshot(2, b"state of log b").unwrap();
    }
    let mut foreign = Vec::new();
    with_raw(a.path(), |db| {
        let cf = db.cf_handle(SNAPSHOTS_CF).unwrap();
        foreign = db.get_cf(cf, key(1)).unwrap().unwrap();
    });
    with_raw(b.path(), |db| {
        let cf = db.cf_handle(SNAPSHOTS_CF).unwrap();
        db.put_cf(cf, key(2), &foreign).unwrap();
    });
    let log = EventLog::open(b.path(), None).unwrap();
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 2,
            bytes: b"state of log b".to_vec()
        })
    );
}

#[test]
fn a_snapshot_of_a_rolled_back_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.save_snapshot(5, b"state after 5").unwrap();
    }
    // Roll back to 4, then append a different record 5.
    with_raw(dir.path(), |db| db.delete(key(5)).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
    log.append_blocking(vec![ev(55)]).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
}

#[test]
fn save_snapshot_refuses_records_that_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3);
    let log = EventLog::open(dir.path(), None).unwrap();
    for seq in [0, 4, 100] {
        assert!(
            matches!(
                log.save_snapshot(seq, b"x"),
                Err(LogError::InvalidSnapshot { seq: s, .. }) if s == seq
            ),
            "{seq}"
        );
    }
    assert_eq!(log.load_snapshot().unwrap(), None);
    drop(log);
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.save_snapshot(1, b"x"), Err(LogError::ReadOnly));
}

#[test]
fn reopen_and_read_only_keep_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 4);
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.save_snapshot(4, b"four").unwrap();
    }
    let expected = Some(Snapshot {
        seq: 4,
        bytes: b"four".to_vec(),
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), expected);
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.load_snapshot().unwrap(), expected);
}

#[test]
fn snapshots_are_saved_while_appends_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    log.append_blocking(vec![ev(0)]).unwrap();
    let appender = {
        let log = log.clone();
        thread::spawn(move || {
            for i in 1..=200 {
                log.append_blocking(vec![ev(i)]).unwrap();
            }
        })
    };
    for _ in 0..50 {
        let seq = log.last_seq();
        log.save_snapshot(seq, &seq.to_be_bytes()).unwrap();
        let loaded = log.load_snapshot().unwrap().unwrap();
        assert_eq!(loaded.bytes, loaded.seq.to_be_bytes());
    }
    appender.join().unwrap();
    assert_eq!(log.verify().unwrap().records, 201);
}

#[test]
fn a_snapshot_at_the_cut_survives_the_prune_of_its_record() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 12);
    let log = EventLog::open(dir.path(), None).unwrap();
    log.save_snapshot(8, b"eight").unwrap();
    log.save_snapshot(10, b"ten").unwrap();
    log.prune(10, even).unwrap();
    // Record 10 is gone, but it is the cut: its hash is pinned by the checkpoint.
    assert_eq!(
        log.load_snapshot().unwrap(),
        Some(Snapshot {
            seq: 10,
            bytes: b"ten".to_vec()
        })
    );
    // Record 8 is gone too and cannot be checked any more: not saved, not loaded.
    assert!(matches!(
        log.save_snapshot(8, b"eight"),
        Err(LogError::InvalidSnapshot { seq: 8, .. })
    ));
    drop(log);
    corrupt_snapshot(dir.path(), 2);
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
}
