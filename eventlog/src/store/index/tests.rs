//! Derived indexes and unique keys: dedup on append, scans, pruning, rebuilds (on open,
//! for another indexer version, on demand), read-only reads.
//!
//! It runs past 500 lines because every index guarantee of the `codec` module documentation
//! has its test here, with the test indexers they share.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rocksdb::{Options, DB};

use super::*;
use crate::ids::{AccountId, EventId};
use crate::store::codec::{encode_record, key, GENESIS_PREV_HASH, INDEX_CF, META_CF, UNIQUE_CF};
use crate::store::index;
use crate::store::tests::{account, ev, seqs, wait_until, with_raw};
use crate::store::{CommitHook, OpenOptions};
use crate::{EventLog, Record};

/// Index of `EventAccepted` records by account.
const BY_ACCOUNT: IndexId = 1;
/// Index of `EventAccepted` records by hook event.
const BY_HOOK: IndexId = 2;

fn other_account() -> AccountId {
    AccountId::parse("fedcba9876543210fedcba9876543210").unwrap()
}

/// A call event `call-{n}` of `account` for `hook`.
fn call(n: u64, account: &AccountId, hook: &str) -> Event {
    Event::EventAccepted {
        event_id: EventId::parse(&format!("call-{n}")).unwrap(),
        account_id: account.clone(),
        hook_event: hook.to_owned(),
        payload: serde_json::json!({ "n": n }),
    }
}

fn call_key(n: u64) -> Vec<u8> {
    format!("ev:call-{n}").into_bytes()
}

/// The test indexer: a call's unique key is `ev:` + its event id; it is indexed by account
/// (`BY_ACCOUNT`) and hook event (`BY_HOOK`). Other events derive nothing.
fn indexer() -> Indexer {
    Arc::new(|event: &Event| match event {
        Event::EventAccepted {
            event_id,
            account_id,
            hook_event,
            ..
        } => IndexKeys {
            unique: Some(format!("ev:{}", event_id.as_str()).into_bytes()),
            entries: vec![
                (BY_ACCOUNT, account_id.as_str().as_bytes().to_vec()),
                (BY_HOOK, hook_event.as_bytes().to_vec()),
            ],
        },
        _ => IndexKeys::default(),
    })
}

fn options(hook: Option<CommitHook>) -> OpenOptions {
    OpenOptions {
        on_commit: hook,
        indexer: Some(indexer()),
        on_write: None,
        indexer_version: 0,
    }
}

fn open_indexed(dir: &Path) -> EventLog {
    EventLog::open_with(dir, options(None)).unwrap()
}

/// A commit hook that records the seqs it sees.
fn seen_hook() -> (CommitHook, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: CommitHook = {
        let seen = Arc::clone(&seen);
        Arc::new(move |r: &Record| seen.lock().unwrap().push(r.seq))
    };
    (hook, seen)
}

/// The `n` of every call in the log, in log order.
fn call_ns(log: &EventLog) -> Vec<u64> {
    log.iter_from(1)
        .map(Result::unwrap)
        .filter_map(|r| match r.event {
            Event::EventAccepted { event_id, .. } => {
                Some(event_id.as_str()["call-".len()..].parse().unwrap())
            }
            _ => None,
        })
        .collect()
}

fn all_seqs(log: &EventLog) -> Vec<u64> {
    log.iter_from(1).map(|r| r.unwrap().seq).collect()
}

fn scan(log: &EventLog, index: IndexId, key: &str, start: Option<u64>, asc: bool) -> Vec<u64> {
    log.scan_index(index, key.as_bytes(), start, asc, usize::MAX)
        .unwrap()
}

fn built(dir: &Path) -> bool {
    let mut built = false;
    with_raw(dir, |db| built = index::is_built(db, 0).unwrap());
    built
}

/// The stored built marker.
fn marker(dir: &Path) -> Option<Vec<u8>> {
    let mut marker = None;
    with_raw(dir, |db| {
        let meta = db.cf_handle(META_CF).unwrap();
        marker = db.get_cf(meta, BUILT_KEY).unwrap();
    });
    marker
}

/// `indexer`, counting the events it derives keys for.
fn counting(indexer: Indexer) -> (Indexer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted: Indexer = {
        let calls = Arc::clone(&calls);
        Arc::new(move |event: &Event| {
            calls.fetch_add(1, Ordering::SeqCst);
            indexer(event)
        })
    };
    (counted, calls)
}

/// A second version of the test indexer: no unique key, and calls are indexed by hook
/// event under `v2:` + the hook event.
fn indexer_v2() -> Indexer {
    Arc::new(|event: &Event| match event {
        Event::EventAccepted { hook_event, .. } => IndexKeys {
            unique: None,
            entries: vec![(BY_HOOK, format!("v2:{hook_event}").into_bytes())],
        },
        _ => IndexKeys::default(),
    })
}

/// Opens `dir` with `indexer` of `indexer_version`; returns the log and how many events
/// the open derived keys for (the records of a rebuild, or none).
fn open_version(dir: &Path, indexer: Indexer, indexer_version: u32) -> (EventLog, usize) {
    let (indexer, calls) = counting(indexer);
    let log = EventLog::open_with(
        dir,
        OpenOptions {
            on_commit: None,
            indexer: Some(indexer),
            on_write: None,
            indexer_version,
        },
    )
    .unwrap();
    let derived = calls.load(Ordering::SeqCst);
    (log, derived)
}

#[test]
fn duplicates_across_appends_and_within_one_are_skipped_and_not_seen_by_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, seen) = seen_hook();
    let log = EventLog::open_with(dir.path(), options(Some(hook))).unwrap();
    let a = account();

    let first = log.append_blocking(vec![call(1, &a, "x"), ev(1)]).unwrap();
    assert_eq!(seqs(&first), [1, 2]);
    // call-1 is stored, call-2 comes twice in this append: one call-2 and the token remain.
    let second = log
        .append_blocking(vec![
            call(1, &a, "x"),
            call(2, &a, "x"),
            call(2, &a, "y"),
            ev(2),
        ])
        .unwrap();
    assert_eq!(seqs(&second), [3, 4]);
    assert!(
        matches!(&second[0].event, Event::EventAccepted { hook_event, .. } if hook_event == "x")
    );
    assert_eq!(second[1].event, ev(2));
    // Only duplicates: nothing is written, not even an empty batch.
    let batches = log.batches_written();
    assert!(log
        .append_blocking(vec![call(2, &a, "z")])
        .unwrap()
        .is_empty());
    assert_eq!(log.batches_written(), batches);
    assert_eq!(log.last_seq(), 4);

    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
    assert_eq!(all_seqs(&log), [1, 2, 3, 4]);
    assert_eq!(call_ns(&log), [1, 2]);
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), Some(1));
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(3));
    assert_eq!(log.unique_seq(&call_key(3)).unwrap(), None);
    assert_eq!(scan(&log, BY_HOOK, "y", None, true), Vec::<u64>::new());
    assert_eq!(log.verify().unwrap().records, 4);
    assert_eq!(log.verify_indexes().unwrap(), 4);
}

#[tokio::test]
async fn async_append_skips_duplicates_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path());
    let a = account();
    assert_eq!(
        seqs(&log.append(vec![call(1, &a, "x")]).await.unwrap()),
        [1]
    );
    assert!(log.append(vec![call(1, &a, "x")]).await.unwrap().is_empty());
    assert_eq!(seqs(&log.append(vec![ev(1)]).await.unwrap()), [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_are_committed_once_and_seqs_stay_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, seen) = seen_hook();
    let log = EventLog::open_with(dir.path(), options(Some(hook))).unwrap();
    let tasks = 16u64;
    let calls = 40u64;

    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let a = account();
            let mut mine = Vec::new();
            for i in 0..calls {
                // Every task offers every call, each task in another order, with a token
                // of its own (never a duplicate) in the same append.
                let n = (i + t * 7) % calls;
                let records = log.append(vec![call(n, &a, "x"), ev(t * calls + i)]).await;
                mine.extend(records.unwrap());
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let total = calls + tasks * calls;
    let mut got = seqs(&all);
    got.sort_unstable();
    assert_eq!(got, (1..=total).collect::<Vec<_>>());
    assert_eq!(log.last_seq(), total);
    let mut hooked = seen.lock().unwrap().clone();
    assert_eq!(hooked, (1..=total).collect::<Vec<_>>());
    hooked.dedup();
    assert_eq!(hooked.len() as u64, total);

    let mut ns = call_ns(&log);
    ns.sort_unstable();
    assert_eq!(ns, (0..calls).collect::<Vec<_>>());
    for n in 0..calls {
        let seq = log.unique_seq(&call_key(n)).unwrap().unwrap();
        let record = all.iter().find(|r| r.seq == seq).unwrap();
        assert_eq!(record.event, call(n, &account(), "x"));
    }
    assert_eq!(scan(&log, BY_HOOK, "x", None, true).len() as u64, calls);
    assert_eq!(log.verify().unwrap().records, total);
    assert_eq!(log.verify_indexes().unwrap(), total);
}

#[test]
fn unique_keys_are_checked_across_the_callers_of_one_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    // The hook holds the writer inside the first batch while the others queue up, so they
    // are committed together.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((entered_tx, release_rx))));
    let hook: CommitHook = Arc::new(move |_: &Record| {
        let first = gate.lock().unwrap().take();
        if let Some((entered, release)) = first {
            entered.send(()).unwrap();
            release
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
        }
    });
    let log = EventLog::open_with(dir.path(), options(Some(hook))).unwrap();
    let first = std::thread::spawn({
        let log = log.clone();
        move || log.append_blocking(vec![ev(0)])
    });
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let waiting = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..8u64 {
        let log = log.clone();
        let waiting = Arc::clone(&waiting);
        handles.push(std::thread::spawn(move || {
            waiting.fetch_add(1, Ordering::SeqCst);
            // Half offer call-1, half call-2.
            log.append_blocking(vec![call(1 + i % 2, &account(), "x")])
        }));
    }
    while waiting.load(Ordering::SeqCst) < 8 {
        std::thread::yield_now();
    }
    wait_until("the 8 appends wait for the writer", || {
        log.queued_jobs() == 8
    });
    let batches = log.batches_written();
    release_tx.send(()).unwrap();

    assert_eq!(seqs(&first.join().unwrap().unwrap()), [1]);
    let appended: Vec<Vec<Record>> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(appended.iter().filter(|r| !r.is_empty()).count(), 2);
    assert_eq!(log.last_seq(), 3);
    assert_eq!(log.batches_written(), batches + 1);
    let mut ns = call_ns(&log);
    ns.sort_unstable();
    assert_eq!(ns, [1, 2]);
}

#[test]
fn a_bad_indexer_fails_only_its_append() {
    let dir = tempfile::tempdir().unwrap();
    let indexer: Indexer = Arc::new(|event: &Event| match event {
        Event::TokenIssued {
            expires_at: 666, ..
        } => panic!("indexer bug"),
        Event::TokenIssued { expires_at: 7, .. } => IndexKeys {
            unique: None,
            entries: vec![(1, vec![0; MAX_ENTRY_KEY_LEN + 1])],
        },
        Event::TokenIssued { expires_at, .. } => IndexKeys {
            unique: None,
            entries: vec![(1, vec![0; usize::try_from(*expires_at).unwrap()])],
        },
        _ => IndexKeys::default(),
    });
    let log = EventLog::open_with(
        dir.path(),
        OpenOptions {
            on_commit: None,
            indexer: Some(indexer),
            on_write: None,
            indexer_version: 0,
        },
    )
    .unwrap();
    assert!(matches!(
        log.append_blocking(vec![ev(1), ev(666)]),
        Err(LogError::Encode(_))
    ));
    assert!(matches!(
        log.append_blocking(vec![ev(7)]),
        Err(LogError::Encode(_))
    ));
    assert_eq!(log.last_seq(), 0);
    // The writer lives on; the longest entry key is stored.
    let max = u64::try_from(MAX_ENTRY_KEY_LEN).unwrap();
    assert_eq!(
        seqs(&log.append_blocking(vec![ev(1), ev(max)]).unwrap()),
        [1, 2]
    );
    let long = vec![0; MAX_ENTRY_KEY_LEN];
    assert_eq!(log.scan_index(1, &long, None, true, 10).unwrap(), [2]);
    let too_long = vec![0; MAX_ENTRY_KEY_LEN + 1];
    assert!(log
        .scan_index(1, &too_long, None, true, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn scan_index_reads_both_ways_from_a_start_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path());
    let (a, b) = (account(), other_account());
    // Seqs 1..=12: calls of `a` at odd seqs, of `b` at even seqs.
    for n in 1..=12 {
        let owner = if n % 2 == 1 { &a } else { &b };
        log.append_blocking(vec![call(n, owner, "x")]).unwrap();
    }
    let by = |owner: &AccountId, start, asc, limit| {
        log.scan_index(BY_ACCOUNT, owner.as_str().as_bytes(), start, asc, limit)
            .unwrap()
    };
    assert_eq!(by(&a, None, true, 100), [1, 3, 5, 7, 9, 11]);
    assert_eq!(by(&a, None, false, 100), [11, 9, 7, 5, 3, 1]);
    assert_eq!(by(&b, None, true, 3), [2, 4, 6]);
    assert_eq!(by(&b, None, false, 2), [12, 10]);
    // Start is inclusive when present, and the next seq in the direction otherwise.
    assert_eq!(by(&a, Some(5), true, 2), [5, 7]);
    assert_eq!(by(&a, Some(6), true, 2), [7, 9]);
    assert_eq!(by(&a, Some(5), false, 2), [5, 3]);
    assert_eq!(by(&a, Some(6), false, 100), [5, 3, 1]);
    assert_eq!(by(&a, Some(0), false, 100), Vec::<u64>::new());
    assert_eq!(by(&a, Some(12), true, 100), Vec::<u64>::new());
    assert_eq!(by(&a, Some(u64::MAX), false, 1), [11]);
    assert_eq!(by(&a, None, true, 0), Vec::<u64>::new());
    // Paging: each page starts after the last seq of the previous one.
    let mut pages = Vec::new();
    let mut start = None;
    loop {
        let page = by(&b, start, true, 4);
        if page.is_empty() {
            break;
        }
        start = page.last().map(|s| s + 1);
        pages.push(page);
    }
    assert_eq!(pages, [vec![2, 4, 6, 8], vec![10, 12]]);
    assert_eq!(scan(&log, BY_HOOK, "x", Some(11), true), [11, 12]);
}

#[test]
fn scan_index_keeps_keys_and_indexes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path());
    let a = account();
    log.append_blocking(vec![
        call(1, &a, "ab"),
        call(2, &a, "abc"),
        call(3, &a, "a"),
        call(4, &a, "ab"),
        call(5, &a, "b"),
        call(6, &a, ""),
    ])
    .unwrap();
    assert_eq!(scan(&log, BY_HOOK, "ab", None, true), [1, 4]);
    assert_eq!(scan(&log, BY_HOOK, "ab", None, false), [4, 1]);
    assert_eq!(scan(&log, BY_HOOK, "abc", None, true), [2]);
    assert_eq!(scan(&log, BY_HOOK, "abc", None, false), [2]);
    assert_eq!(scan(&log, BY_HOOK, "a", None, true), [3]);
    assert_eq!(scan(&log, BY_HOOK, "a", None, false), [3]);
    assert_eq!(scan(&log, BY_HOOK, "", None, true), [6]);
    assert_eq!(scan(&log, BY_HOOK, "abcd", None, true), Vec::<u64>::new());
    assert_eq!(scan(&log, BY_HOOK, "zz", None, false), Vec::<u64>::new());
    // The same key under another index, and an index nothing uses.
    assert_eq!(scan(&log, BY_ACCOUNT, "ab", None, true), Vec::<u64>::new());
    assert_eq!(scan(&log, 9, "ab", None, true), Vec::<u64>::new());
    assert_eq!(
        scan(&log, BY_ACCOUNT, a.as_str(), None, true),
        [1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn indexes_and_unique_keys_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &a, "x"), ev(1), call(2, &a, "y")])
            .unwrap();
    }
    assert!(built(dir.path()));
    let (hook, seen) = seen_hook();
    let log = EventLog::open_with(dir.path(), options(Some(hook))).unwrap();
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(3));
    assert_eq!(scan(&log, BY_HOOK, "y", None, true), [3]);
    let more = log
        .append_blocking(vec![call(2, &a, "y"), call(3, &a, "y")])
        .unwrap();
    assert_eq!(seqs(&more), [4]);
    assert_eq!(*seen.lock().unwrap(), [4]);
    assert_eq!(scan(&log, BY_HOOK, "y", None, false), [4, 3]);
    assert_eq!(log.verify_indexes().unwrap(), 4);
}

#[test]
fn prune_removes_the_index_entries_and_unique_keys_of_removed_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path());
    let (a, b) = (account(), other_account());
    // 1..=8: calls 1..=6 (of `a` when odd, `b` when even) and two tokens.
    log.append_blocking(vec![
        call(1, &a, "x"),
        call(2, &b, "x"),
        ev(1),
        call(3, &a, "y"),
        call(4, &b, "y"),
        ev(2),
        call(5, &a, "x"),
        call(6, &b, "x"),
    ])
    .unwrap();
    // Through 6, remove the calls of `b` and call-1; keep call-3 and the tokens.
    let removable = |r: &Record| match &r.event {
        Event::EventAccepted {
            account_id,
            event_id,
            ..
        } => *account_id == other_account() || event_id.as_str() == "call-1",
        _ => false,
    };
    let summary = log.prune(6, removable).unwrap();
    assert_eq!((summary.removed, summary.kept), (3, 3));
    assert_eq!(summary.checkpoint_seq, 9);

    assert_eq!(scan(&log, BY_ACCOUNT, a.as_str(), None, true), [4, 7]);
    assert_eq!(scan(&log, BY_ACCOUNT, b.as_str(), None, true), [8]);
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [7, 8]);
    assert_eq!(scan(&log, BY_HOOK, "y", None, true), [4]);
    for (n, expected) in [(1, None), (2, None), (3, Some(4)), (4, None), (5, Some(7))] {
        assert_eq!(log.unique_seq(&call_key(n)).unwrap(), expected, "call-{n}");
    }
    assert_eq!(log.unique_seq(&call_key(6)).unwrap(), Some(8));
    assert_eq!(log.verify_indexes().unwrap(), 6);

    // Dedup holds within retention: a pruned call can come again, a kept one cannot.
    let again = log
        .append_blocking(vec![call(1, &a, "x"), call(3, &a, "y"), call(6, &b, "x")])
        .unwrap();
    assert_eq!(seqs(&again), [10]);
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), Some(10));
    assert_eq!(scan(&log, BY_HOOK, "x", None, false), [10, 8, 7]);
    drop(log);

    let log = open_indexed(dir.path());
    assert_eq!(log.verify().unwrap().records, 7);
    assert_eq!(log.verify_indexes().unwrap(), 7);
}

#[test]
fn rebuild_on_open_indexes_a_log_written_without_indexer() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        // Without an indexer nothing is deduplicated: call-1 is stored twice.
        let records = log
            .append_blocking(vec![
                call(1, &a, "x"),
                ev(1),
                call(1, &a, "y"),
                call(2, &a, "y"),
            ])
            .unwrap();
        assert_eq!(seqs(&records), [1, 2, 3, 4]);
        assert_eq!(
            log.scan_index(BY_HOOK, b"x", None, true, 10).unwrap(),
            Vec::<u64>::new()
        );
        assert_eq!(log.unique_seq(&call_key(1)).unwrap(), None);
    }
    assert!(!built(dir.path()));

    let log = open_indexed(dir.path());
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [1]);
    assert_eq!(scan(&log, BY_HOOK, "y", None, true), [3, 4]);
    // The first record with a key keeps it.
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), Some(1));
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(4));
    assert_eq!(log.verify_indexes().unwrap(), 4);
    assert!(log
        .append_blocking(vec![call(2, &a, "x")])
        .unwrap()
        .is_empty());
    drop(log);
    assert!(built(dir.path()));
}

#[test]
fn a_write_without_indexer_marks_the_indexes_for_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &a, "x")]).unwrap();
    }
    // Opening without indexer and only reading keeps the indexes trusted.
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        assert_eq!(log.verify().unwrap().records, 1);
    }
    assert!(built(dir.path()));
    // Writing without indexer does not.
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.append_blocking(vec![call(2, &a, "x"), ev(1)]).unwrap();
        assert_eq!(log.unique_seq(&call_key(2)).unwrap(), None);
        assert!(matches!(log.verify_indexes(), Err(LogError::NoIndexer)));
        assert!(matches!(log.rebuild_indexes(), Err(LogError::NoIndexer)));
    }
    assert!(!built(dir.path()));
    let log = open_indexed(dir.path());
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [1, 2]);
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(2));
    assert_eq!(log.verify_indexes().unwrap(), 3);
}

#[test]
fn prune_without_indexer_leaves_the_indexes_alone_until_the_next_indexed_open() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &a, "x"), call(2, &a, "x"), ev(1)])
            .unwrap();
    }
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.prune(1, |_| true).unwrap();
        // Stale until rebuilt: the entry of the pruned record is still there.
        assert_eq!(
            log.scan_index(BY_HOOK, b"x", None, true, 10).unwrap(),
            [1, 2]
        );
    }
    let log = open_indexed(dir.path());
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [2]);
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), None);
    assert_eq!(log.verify_indexes().unwrap(), 3);
}

#[test]
fn rebuild_indexes_repairs_damaged_indexes_and_verify_ignores_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &a, "x"), ev(1), call(2, &a, "y")])
            .unwrap();
    }
    // Lose one entry, add a stray one, point a unique key elsewhere.
    with_raw(dir.path(), |db| {
        let index = db.cf_handle(INDEX_CF).unwrap();
        let unique = db.cf_handle(UNIQUE_CF).unwrap();
        let mut lost = vec![BY_HOOK, 0, 1, b'x'];
        lost.extend_from_slice(&key(1));
        assert!(db.get_cf(index, &lost).unwrap().is_some());
        db.delete_cf(index, &lost).unwrap();
        let mut stray = vec![BY_HOOK, 0, 1, b'z'];
        stray.extend_from_slice(&key(2));
        db.put_cf(index, &stray, []).unwrap();
        db.put_cf(unique, call_key(2), key(1)).unwrap();
    });
    let log = open_indexed(dir.path());
    assert_eq!(log.verify().unwrap().records, 3);
    assert!(matches!(log.verify_indexes(), Err(LogError::Index(_))));
    assert_eq!(scan(&log, BY_HOOK, "z", None, true), [2]);

    assert_eq!(log.rebuild_indexes().unwrap(), 3);
    assert_eq!(log.verify_indexes().unwrap(), 3);
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [1]);
    assert_eq!(scan(&log, BY_HOOK, "z", None, true), Vec::<u64>::new());
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(3));
    // Appends go on after a rebuild, deduplicated against it.
    let more = log
        .append_blocking(vec![call(2, &a, "y"), call(3, &a, "y")])
        .unwrap();
    assert_eq!(seqs(&more), [4]);
}

#[test]
fn a_malformed_unique_value_is_an_index_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &account(), "x")]).unwrap();
    }
    with_raw(dir.path(), |db| {
        let unique = db.cf_handle(UNIQUE_CF).unwrap();
        db.put_cf(unique, call_key(1), b"short").unwrap();
    });
    let log = open_indexed(dir.path());
    assert!(matches!(
        log.unique_seq(&call_key(1)),
        Err(LogError::Index(_))
    ));
    assert!(matches!(log.verify_indexes(), Err(LogError::Index(_))));
}

#[test]
fn read_only_opens_scan_and_find_unique_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    let log = open_indexed(dir.path());
    log.append_blocking(vec![call(1, &a, "x"), call(2, &a, "x")])
        .unwrap();

    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(scan(&ro, BY_HOOK, "x", None, false), [2, 1]);
    assert_eq!(ro.unique_seq(&call_key(1)).unwrap(), Some(1));
    assert!(matches!(ro.rebuild_indexes(), Err(LogError::ReadOnly)));
    assert!(matches!(ro.verify_indexes(), Err(LogError::NoIndexer)));

    log.append_blocking(vec![call(3, &a, "x")]).unwrap();
    assert_eq!(ro.catch_up().unwrap(), 3);
    assert_eq!(scan(&ro, BY_HOOK, "x", Some(2), true), [2, 3]);
    assert_eq!(ro.unique_seq(&call_key(3)).unwrap(), Some(3));
}

#[test]
fn read_only_open_of_a_log_without_index_families_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Written as a build before indexes did: records only, default column family only.
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir.path()).unwrap();
        let (value, _) =
            encode_record(1, 1, &GENESIS_PREV_HASH, &call(1, &account(), "x")).unwrap();
        db.put(key(1), value).unwrap();
    }
    let ro = EventLog::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.verify().unwrap().records, 1);
    assert!(ro
        .scan_index(BY_HOOK, b"x", None, true, 10)
        .unwrap()
        .is_empty());
    assert_eq!(ro.unique_seq(&call_key(1)).unwrap(), None);
    drop(ro);

    // A writable open with indexer creates the families and builds them.
    let log = open_indexed(dir.path());
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [1]);
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), Some(1));
}

#[test]
fn index_keys_are_length_prefixed_and_end_with_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &account(), "ab")])
            .unwrap();
    }
    with_raw(dir.path(), |db| {
        let index = db.cf_handle(INDEX_CF).unwrap();
        let mut expected = vec![BY_HOOK, 0, 2, b'a', b'b'];
        expected.extend_from_slice(&1u64.to_be_bytes());
        assert_eq!(db.get_cf(index, &expected).unwrap(), Some(Vec::new()));
        let unique = db.cf_handle(UNIQUE_CF).unwrap();
        assert_eq!(
            db.get_cf(unique, call_key(1)).unwrap(),
            Some(1u64.to_be_bytes().to_vec())
        );
    });
}

#[test]
fn a_refused_append_does_not_claim_its_unique_keys_in_the_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    // The test indexer, but one that panics on token 666.
    let base = indexer();
    let indexer: Indexer = Arc::new(move |event: &Event| match event {
        Event::TokenIssued {
            expires_at: 666, ..
        } => panic!("indexer bug"),
        other => base(other),
    });
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((entered_tx, release_rx))));
    let hook: CommitHook = Arc::new(move |_: &Record| {
        let first = gate.lock().unwrap().take();
        if let Some((entered, release)) = first {
            entered.send(()).unwrap();
            release
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
        }
    });
    let log = EventLog::open_with(
        dir.path(),
        OpenOptions {
            on_commit: Some(hook),
            indexer: Some(indexer),
            on_write: None,
            indexer_version: 0,
        },
    )
    .unwrap();
    let first = std::thread::spawn({
        let log = log.clone();
        move || log.append_blocking(vec![ev(0)])
    });
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    // Queued behind the first batch, in this order: the refused append offers call-9
    // first, the good one after it.
    let refused = std::thread::spawn({
        let log = log.clone();
        move || log.append_blocking(vec![call(9, &account(), "x"), ev(666)])
    });
    wait_until("the refused append waits for the writer", || {
        log.queued_jobs() == 1
    });
    let good = std::thread::spawn({
        let log = log.clone();
        move || log.append_blocking(vec![call(9, &account(), "x")])
    });
    wait_until("both appends wait for the writer", || {
        log.queued_jobs() == 2
    });
    release_tx.send(()).unwrap();

    first.join().unwrap().unwrap();
    assert!(matches!(refused.join().unwrap(), Err(LogError::Encode(_))));
    assert_eq!(seqs(&good.join().unwrap().unwrap()), [2]);
    assert_eq!(call_ns(&log), [9]);
    assert_eq!(log.unique_seq(&call_key(9)).unwrap(), Some(2));
}

#[test]
fn rebuild_indexes_while_appends_run_keeps_indexes_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_indexed(dir.path());
    let a = account();
    log.append_blocking((0..500).map(|n| call(n, &a, "x")).collect())
        .unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let a = account();
                let mut appended = 0;
                for i in 0..50u64 {
                    // Every writer offers calls 450..=649: half are stored already.
                    let n = 450 + (i * 4 + t) % 200;
                    appended += log.append_blocking(vec![call(n, &a, "x")]).unwrap().len();
                }
                appended
            })
        })
        .collect();
    let rebuilt = log.rebuild_indexes().unwrap();
    assert!(rebuilt >= 500, "{rebuilt} records indexed");
    let appended: usize = writers.into_iter().map(|h| h.join().unwrap()).sum();

    let mut ns = call_ns(&log);
    let total = ns.len();
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len(), total, "a call was stored twice");
    assert_eq!(total, 500 + appended);
    assert_eq!(log.verify_indexes().unwrap(), log.last_seq());
    assert_eq!(
        scan(&log, BY_HOOK, "x", None, true),
        (1..=log.last_seq()).collect::<Vec<_>>()
    );
}

#[test]
fn an_open_with_another_indexer_version_rebuilds_the_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let log = open_indexed(dir.path());
        log.append_blocking(vec![call(1, &a, "x"), ev(1), call(2, &a, "y")])
            .unwrap();
    }
    // Version 0 is stored as markers were before versions existed.
    assert_eq!(marker(dir.path()), Some(vec![0, 1]));
    let (log, derived) = open_version(dir.path(), indexer(), 0);
    assert_eq!(
        derived, 0,
        "same version: the indexes are trusted as they are"
    );
    drop(log);

    // The indexer changed what it derives, and says so: rebuilt at open.
    let (log, derived) = open_version(dir.path(), indexer_v2(), 2);
    assert_eq!(derived, 3, "every record derived once by the rebuild");
    assert_eq!(scan(&log, BY_HOOK, "v2:x", None, true), [1]);
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), Vec::<u64>::new());
    assert_eq!(
        scan(&log, BY_ACCOUNT, a.as_str(), None, true),
        Vec::<u64>::new()
    );
    assert_eq!(log.unique_seq(&call_key(1)).unwrap(), None);
    assert_eq!(log.verify_indexes().unwrap(), 3);
    drop(log);
    assert_eq!(marker(dir.path()), Some(vec![0, 1, 0, 0, 0, 2]));
    assert!(!built(dir.path()));

    let (log, derived) = open_version(dir.path(), indexer_v2(), 2);
    assert_eq!(derived, 0, "built by version 2 already");
    drop(log);
    // Back to version 0: rebuilt again, with the first indexer's keys.
    let (log, derived) = open_version(dir.path(), indexer(), 0);
    assert_eq!(derived, 3);
    assert_eq!(scan(&log, BY_HOOK, "x", None, true), [1]);
    assert_eq!(log.unique_seq(&call_key(2)).unwrap(), Some(3));
    assert_eq!(log.verify_indexes().unwrap(), 3);
}

#[test]
fn rebuild_indexes_marks_them_with_the_open_version_and_a_write_without_indexer_unmarks_any() {
    let dir = tempfile::tempdir().unwrap();
    let a = account();
    {
        let (log, _) = open_version(dir.path(), indexer_v2(), 7);
        log.append_blocking(vec![call(1, &a, "x")]).unwrap();
        log.rebuild_indexes().unwrap();
    }
    assert_eq!(marker(dir.path()), Some(vec![0, 1, 0, 0, 0, 7]));
    {
        let log = EventLog::open(dir.path(), None).unwrap();
        log.append_blocking(vec![call(2, &a, "x")]).unwrap();
    }
    assert_eq!(marker(dir.path()), None);
    let (log, derived) = open_version(dir.path(), indexer_v2(), 7);
    assert_eq!(derived, 2);
    assert_eq!(scan(&log, BY_HOOK, "v2:x", None, true), [1, 2]);
}
