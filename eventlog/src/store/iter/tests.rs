//! Walks of intact and damaged logs: each problem is reported at its seq, never a panic.
//! (Walks of pruned logs are with the prune tests.)

use super::*;
use crate::store::codec::key;
use crate::store::tests::{ev, log_with, n_of, raw_value, read_all, read_until_error, with_raw};
use crate::EventLog;

#[test]
fn flipped_byte_is_corrupt_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    with_raw(dir.path(), |db| {
        let mut v = raw_value(db, 3);
        let last = v.len() - 1;
        v[last] ^= 0x01;
        db.put(key(3), v).unwrap();
    });

    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1, 2]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 3, .. })),
        "{err:?}"
    );
    assert!(matches!(
        log.verify(),
        Err(LogError::Corrupt { seq: 3, .. })
    ));
}

#[test]
fn deleted_key_is_a_gap_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    with_raw(dir.path(), |db| db.delete(key(3)).unwrap());

    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1, 2]);
    assert_eq!(
        err,
        Some(LogError::Gap {
            expected: 3,
            found: 4
        })
    );
    // Starting right after the hole: the missing anchor is reported too.
    let from4 = read_all(&log, 4);
    assert_eq!(
        from4,
        [Err(LogError::Gap {
            expected: 3,
            found: 4
        })]
    );
}

#[test]
fn deleted_first_record_is_a_gap_at_seq_1() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 2);
    with_raw(dir.path(), |db| db.delete(key(1)).unwrap());
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.verify(),
        Err(LogError::Gap {
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn swapped_values_are_reported_at_the_first_swapped_seq() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    with_raw(dir.path(), |db| {
        let two = raw_value(db, 2);
        let three = raw_value(db, 3);
        db.put(key(2), three).unwrap();
        db.put(key(3), two).unwrap();
    });

    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 2, .. })),
        "{err:?}"
    );
}

#[test]
fn a_bad_key_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 2);
    // A short key sorts between records 1 and 2 (`[0,0,0,0,0,0,0,1] < [0,0,0,0,0,0,0,1,0]`).
    with_raw(dir.path(), |db| {
        db.put([0u8, 0, 0, 0, 0, 0, 0, 1, 0], b"x").unwrap()
    });
    let log = EventLog::open(dir.path(), None).unwrap();
    let (ok, err) = read_until_error(&log);
    assert_eq!(ok, [1]);
    assert!(
        matches!(err, Some(LogError::Corrupt { seq: 2, .. })),
        "{err:?}"
    );
}

#[test]
fn iter_from_starts_at_the_given_seq() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 10);
    let log = EventLog::open(dir.path(), None).unwrap();

    let from4: Vec<u64> = read_all(&log, 4)
        .into_iter()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(from4, (4..=10).collect::<Vec<_>>());
    let from10: Vec<u64> = read_all(&log, 10)
        .into_iter()
        .map(|r| n_of(&r.unwrap()))
        .collect();
    assert_eq!(from10, [10]);
    assert_eq!(read_all(&log, 0).len(), 10);
    assert!(read_all(&log, 11).is_empty());
    assert!(read_all(&log, 100).is_empty());
}

#[test]
fn iteration_crosses_read_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    let n = READ_CHUNK as u64 * 2 + 7;
    log.append_blocking((1..=n).map(ev).collect()).unwrap();
    let read: Vec<u64> = read_all(&log, 1)
        .into_iter()
        .map(|r| n_of(&r.unwrap()))
        .collect();
    assert_eq!(read, (1..=n).collect::<Vec<_>>());
    assert_eq!(
        read_all(&log, READ_CHUNK as u64).len() as u64,
        n - READ_CHUNK as u64 + 1
    );
}
