use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::codec::{encode_record, key, GENESIS_PREV_HASH};
use super::*;
use crate::ids::AccountId;

pub(super) fn account() -> AccountId {
    AccountId::parse("0123456789abcdef0123456789abcdef").unwrap()
}

/// How long a test waits for something that takes milliseconds: generous, so that a slow
/// machine does not fail the test.
pub(super) const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; fails the test, naming `what`, after [`PATIENCE`]. Tests wait
/// with it on observable state instead of sleeping for a guessed time.
pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "still waiting after {PATIENCE:?} until {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A distinguishable event: `n` comes back as `expires_at`.
pub(super) fn ev(n: u64) -> Event {
    Event::TokenIssued {
        token_hash: format!("token-{n}"),
        account_id: account(),
        expires_at: n,
        expires_at_ms: None,
    }
}

pub(super) fn n_of(record: &Record) -> u64 {
    match &record.event {
        Event::TokenIssued { expires_at, .. } => *expires_at,
        other => panic!("unexpected event {other:?}"),
    }
}

pub(super) fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// A closed log in `dir` holding events 1..=n, one record each.
pub(super) fn log_with(dir: &Path, n: u64) {
    let log = EventLog::open(dir, None).unwrap();
    for i in 1..=n {
        log.append_blocking(vec![ev(i)]).unwrap();
    }
}

/// Runs `f` on the raw RocksDB of a closed log (every column family open; records in the
/// default one).
pub(super) fn with_raw(dir: &Path, f: impl FnOnce(&DB)) {
    let opts = Options::default();
    let families = DB::list_cf(&opts, dir).unwrap();
    let db = DB::open_cf(&opts, dir, families).unwrap();
    f(&db);
}

pub(super) fn raw_value(db: &DB, seq: u64) -> Vec<u8> {
    db.get(key(seq)).unwrap().expect("record present")
}

/// Everything `iter_from(from)` yields.
pub(super) fn read_all(log: &EventLog, from: u64) -> Vec<Result<Record, LogError>> {
    log.iter_from(from).collect()
}

/// The seqs read before the first error, and that error.
pub(super) fn read_until_error(log: &EventLog) -> (Vec<u64>, Option<LogError>) {
    let mut ok = Vec::new();
    for item in log.iter_from(1) {
        match item {
            Ok(r) => ok.push(r.seq),
            Err(e) => return (ok, Some(e)),
        }
    }
    (ok, None)
}

/// Events `ev(n)` with an even `n` stand for calls and attempts (removable); odd ones for
/// configuration (kept forever).
pub(super) fn even(record: &Record) -> bool {
    matches!(record.event, Event::TokenIssued { expires_at, .. } if expires_at % 2 == 0)
}

pub(super) fn ok_seqs(log: &EventLog, from: u64) -> Vec<u64> {
    read_all(log, from)
        .into_iter()
        .map(|r| r.unwrap().seq)
        .collect()
}

#[test]
fn eventlog_and_iterator_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<EventLog>();
    check::<LogIter>();
}

#[test]
fn appends_get_consecutive_seqs_in_order_and_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.last_seq(), 0);

    let a = log.append_blocking(vec![ev(1), ev(2), ev(3)]).unwrap();
    let b = log.append_blocking(vec![ev(4), ev(5)]).unwrap();
    assert_eq!(seqs(&a), [1, 2, 3]);
    assert_eq!(seqs(&b), [4, 5]);
    assert_eq!(log.last_seq(), 5);

    let read: Vec<Record> = read_all(&log, 1).into_iter().map(Result::unwrap).collect();
    let written: Vec<Record> = a.into_iter().chain(b).collect();
    assert_eq!(read, written);
    assert_eq!(read.iter().map(n_of).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn empty_append_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    assert!(log.append(Vec::new()).await.unwrap().is_empty());
    assert!(log.append_blocking(Vec::new()).unwrap().is_empty());
    assert_eq!(log.batches_written(), 0);
    assert_eq!(log.last_seq(), 0);
    assert_eq!(log.append(vec![ev(1)]).await.unwrap()[0].seq, 1);
}

#[test]
fn reopen_continues_seqs_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3);

    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.last_seq(), 3);
    let more = log.append_blocking(vec![ev(4), ev(5)]).unwrap();
    assert_eq!(seqs(&more), [4, 5]);
    drop(log);

    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.last_seq(), 5);
    let summary = log.verify().unwrap();
    assert_eq!(summary.records, 5);
    assert_eq!(summary.last_seq, 5);
}

#[test]
fn open_refuses_a_corrupt_tail_but_read_only_can_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 4);
    with_raw(dir.path(), |db| {
        let mut v = raw_value(db, 4);
        v[10] ^= 0xff;
        db.put(key(4), v).unwrap();
    });
    let err = EventLog::open(dir.path(), None).err();
    assert!(
        matches!(
            err,
            Some(LogError::Corrupt { seq: 4, .. }) | Some(LogError::UnknownVersion { seq: 4, .. })
        ),
        "{err:?}"
    );
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.last_seq(), 4);
    let verified = ro.verify();
    assert!(
        matches!(
            verified,
            Err(LogError::Corrupt { seq: 4, .. }) | Err(LogError::UnknownVersion { seq: 4, .. })
        ),
        "{verified:?}"
    );
}

#[test]
fn verify_summarises_an_intact_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(
        log.verify().unwrap(),
        VerifySummary {
            records: 0,
            first_seq: 0,
            last_seq: 0,
            last_hash: "0".repeat(64),
            pruned_through: 0,
            pruned: 0,
            kept: 0,
            checkpoint_seq: 0,
        }
    );
    log.append_blocking((1..=7).map(ev).collect()).unwrap();
    let summary = log.verify().unwrap();
    drop(log);

    let mut expected_hash = String::new();
    with_raw(dir.path(), |db| {
        expected_hash = hex::encode(open_envelope(7, &raw_value(db, 7)).unwrap().hash);
    });
    assert_eq!(
        summary,
        VerifySummary {
            records: 7,
            first_seq: 1,
            last_seq: 7,
            last_hash: expected_hash,
            pruned_through: 0,
            pruned: 0,
            kept: 0,
            checkpoint_seq: 0,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sees_records_of_a_writer_that_is_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = EventLog::open(dir.path(), None).unwrap();
    writer.append(vec![ev(1), ev(2), ev(3)]).await.unwrap();

    let reader = EventLog::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(reader.last_seq(), 3);
    let read: Vec<u64> = read_all(&reader, 1)
        .into_iter()
        .map(|r| n_of(&r.unwrap()))
        .collect();
    assert_eq!(read, [1, 2, 3]);

    writer.append(vec![ev(4), ev(5)]).await.unwrap();
    assert_eq!(reader.catch_up().unwrap(), 5);
    assert_eq!(reader.verify().unwrap().records, 5);
    assert_eq!(reader.append(vec![ev(6)]).await, Err(LogError::ReadOnly));
    assert_eq!(reader.append_blocking(vec![ev(6)]), Err(LogError::ReadOnly));

    // The writer is unaffected.
    assert_eq!(writer.append(vec![ev(6)]).await.unwrap()[0].seq, 6);
    assert_eq!(writer.verify().unwrap().records, 6);
}

#[test]
fn read_only_open_of_a_missing_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(matches!(
        EventLog::open_read_only(&missing),
        Err(LogError::Storage(_))
    ));
}

#[tokio::test]
async fn close_stops_appends_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    let other = log.clone();
    log.append(vec![ev(1)]).await.unwrap();
    log.close().unwrap();
    assert_eq!(other.append(vec![ev(2)]).await, Err(LogError::Closed));
    assert_eq!(other.append_blocking(vec![ev(2)]), Err(LogError::Closed));
    assert_eq!(other.verify().unwrap().records, 1);
    log.close().unwrap();
    drop(log);
    drop(other);
    // Every handle gone: the database lock is released.
    let reopened = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(reopened.last_seq(), 1);
}

#[test]
fn dropping_the_last_handle_releases_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let hook: CommitHook = {
        let seen = Arc::clone(&seen);
        Arc::new(move |r: &Record| {
            seen.lock().unwrap().insert(r.seq);
        })
    };
    for round in 0..3u64 {
        let log = EventLog::open(dir.path(), Some(Arc::clone(&hook))).unwrap();
        log.append_blocking(vec![ev(round)]).unwrap();
        // No close: drop alone must stop the writer and unlock the directory.
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn error_messages_are_lowercase_without_trailing_period() {
    let errors = [
        LogError::Corrupt {
            seq: 3,
            reason: "hash mismatch".to_owned(),
        },
        LogError::ChainBroken { seq: 3 },
        LogError::Gap {
            expected: 3,
            found: 4,
        },
        LogError::UnknownVersion {
            seq: 3,
            version: 99,
        },
        LogError::Encode("x".to_owned()),
        LogError::Storage("x".to_owned()),
        LogError::Unwritable("x".to_owned()),
        LogError::Closed,
        LogError::ReadOnly,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
    assert_eq!(
        LogError::UnknownVersion {
            seq: 3,
            version: 99
        }
        .to_string(),
        "record 3 has unknown version 99"
    );
}

#[test]
fn a_log_from_before_the_column_families_opens() {
    let dir = tempfile::tempdir().unwrap();
    // Written as the previous build did: records only, default column family only.
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir.path()).unwrap();
        let mut prev = GENESIS_PREV_HASH;
        for seq in 1..=3 {
            let (value, hash) = encode_record(seq, 1, &prev, &ev(seq)).unwrap();
            db.put(key(seq), value).unwrap();
            prev = hash;
        }
    }
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.load_snapshot().unwrap(), None);
    assert_eq!(ro.verify().unwrap().records, 3);
    drop(ro);

    let log = EventLog::open(dir.path(), None).unwrap();
    assert_eq!(log.load_snapshot().unwrap(), None);
    log.save_snapshot(3, b"three").unwrap();
    assert_eq!(log.load_snapshot().unwrap().unwrap().seq, 3);
    assert_eq!(log.prune(1, |_| true).unwrap().removed, 1);
    assert_eq!(log.verify().unwrap().records, 3);
}
