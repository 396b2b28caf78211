//! Group commit: concurrent appends share synced batches and keep their order, the hook
//! sees every record before its caller is answered, and the two lanes.

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::store::tests::{ev, n_of, read_all, seqs, wait_until};
use crate::EventLog;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_distinct_consecutive_seqs_and_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    let tasks = 16u64;
    let per_task = 25u64;

    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..per_task {
                // Two events per call: they must stay adjacent.
                let base = (t * per_task + i) * 2;
                let records = log.append(vec![ev(base), ev(base + 1)]).await.unwrap();
                assert_eq!(records.len(), 2);
                assert_eq!(records[1].seq, records[0].seq + 1);
                mine.extend(records);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let total = tasks * per_task * 2;
    let mut got = seqs(&all);
    got.sort_unstable();
    assert_eq!(got, (1..=total).collect::<Vec<_>>());
    assert_eq!(log.last_seq(), total);
    drop(log);

    // Durable: a fresh open reads back exactly what every caller was told.
    let log = EventLog::open(dir.path(), None).unwrap();
    let read: Vec<Record> = read_all(&log, 1).into_iter().map(Result::unwrap).collect();
    all.sort_by_key(|r| r.seq);
    assert_eq!(read, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_synced_batches() {
    let dir = tempfile::tempdir().unwrap();
    // The hook holds the writer inside the first batch until the test has queued the rest,
    // so the rest must be committed together.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((entered_tx, release_rx))));
    let hook: CommitHook = Arc::new(move |_: &Record| {
        let first = gate.lock().unwrap().take();
        if let Some((entered, release)) = first {
            entered.send(()).unwrap();
            release.recv_timeout(Duration::from_secs(30)).unwrap();
        }
    });
    let log = EventLog::open(dir.path(), Some(hook)).unwrap();

    let first = tokio::spawn({
        let log = log.clone();
        async move { log.append(vec![ev(0)]).await }
    });
    entered_rx.recv_timeout(Duration::from_secs(30)).unwrap();

    let appends = 50u64;
    let mut handles = Vec::new();
    for i in 1..=appends {
        let log = log.clone();
        handles.push(tokio::spawn(async move { log.append(vec![ev(i)]).await }));
    }
    wait_until("every append waits for the writer", || {
        log.queued_jobs() == appends
    });
    release_tx.send(()).unwrap();

    assert_eq!(first.await.unwrap().unwrap()[0].seq, 1);
    let mut got = Vec::new();
    for h in handles {
        got.extend(seqs(&h.await.unwrap().unwrap()));
    }
    got.sort_unstable();
    assert_eq!(got, (2..=appends + 1).collect::<Vec<_>>());

    // The first append plus the ones queued behind it: two batches expected, allow slack.
    let total = appends + 1;
    let batches = log.batches_written();
    assert!(
        batches * 2 < total,
        "{batches} synced batches for {total} appends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_hook_sees_every_record_in_seq_order_before_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: CommitHook = {
        let seen = Arc::clone(&seen);
        Arc::new(move |r: &Record| seen.lock().unwrap().push(r.seq))
    };
    let log = EventLog::open(dir.path(), Some(hook)).unwrap();

    let mut handles = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        let seen = Arc::clone(&seen);
        handles.push(tokio::spawn(async move {
            for i in 0..20u64 {
                let records = log.append(vec![ev(t * 100 + i)]).await.unwrap();
                // The hook ran before this caller was answered.
                assert!(seen.lock().unwrap().contains(&records[0].seq));
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (1..=160).collect::<Vec<u64>>());
}

#[test]
fn a_panicking_hook_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let hook: CommitHook = Arc::new(|r: &Record| {
        if r.seq == 1 {
            panic!("hook failure (expected by the test)");
        }
    });
    let log = EventLog::open(dir.path(), Some(hook)).unwrap();
    assert_eq!(log.append_blocking(vec![ev(1)]).unwrap()[0].seq, 1);
    assert_eq!(log.append_blocking(vec![ev(2)]).unwrap()[0].seq, 2);
}

#[test]
fn the_write_observer_sees_each_durable_commit_before_its_caller_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<WriteStats>>> = Arc::default();
    let keep = Arc::clone(&seen);
    let on_write: WriteObserver = Arc::new(move |stats: &WriteStats| {
        keep.lock().unwrap().push(*stats);
    });
    let log = EventLog::open_with(
        dir.path(),
        crate::OpenOptions {
            on_write: Some(on_write),
            ..crate::OpenOptions::default()
        },
    )
    .unwrap();
    log.append_blocking(vec![ev(1), ev(2), ev(3)]).unwrap();
    // Answered only after the observer ran: no waiting needed.
    let first = seen.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "one group commit: {first:?}");
    assert_eq!((first[0].records, first[0].last_seq), (3, 3));
    log.append_blocking(vec![ev(4)]).unwrap();
    let all = seen.lock().unwrap().clone();
    assert_eq!(
        all.iter()
            .map(|s| (s.records, s.last_seq))
            .collect::<Vec<_>>(),
        vec![(3, 3), (1, 4)]
    );
}

#[test]
fn a_panicking_write_observer_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let on_write: WriteObserver = Arc::new(|_: &WriteStats| {
        panic!("observer failure (expected by the test)");
    });
    let log = EventLog::open_with(
        dir.path(),
        crate::OpenOptions {
            on_write: Some(on_write),
            ..crate::OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(log.append_blocking(vec![ev(1)]).unwrap()[0].seq, 1);
    assert_eq!(log.append_blocking(vec![ev(2)]).unwrap()[0].seq, 2);
}

/// A queued request of `events` events (tagged `tag`, as `expires_at` of the first).
fn queued_request(tag: u64, events: usize, background: bool) -> Request {
    let (tx, _rx) = oneshot::channel();
    Request {
        events: (0..events as u64).map(|i| ev(tag * 100_000 + i)).collect(),
        prune: None,
        reply: Reply::Async(tx),
        background,
    }
}

fn tags(round: &[Request]) -> Vec<u64> {
    round
        .iter()
        .map(|r| match &r.events[0] {
            Event::TokenIssued { expires_at, .. } => expires_at / 100_000,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

#[test]
fn a_group_commit_takes_foreground_appends_before_background_ones() {
    let mut queued = Queued::default();
    // 40 background requests of 100 events arrived first, then 3 foreground ones.
    for tag in 1..=40 {
        queued.push(queued_request(tag, 100, true));
    }
    for tag in 101..=103 {
        queued.push(queued_request(tag, 100, false));
    }
    let round = queued.next_round();
    let taken = tags(&round);
    // The foreground ones lead, and the batch is filled up to its cap with background.
    assert_eq!(&taken[..3], &[101, 102, 103]);
    assert_eq!(&taken[3..], (1..=38).collect::<Vec<_>>().as_slice());
    let events: usize = round.iter().map(|r| r.events.len()).sum();
    assert!(events <= MAX_BATCH_EVENTS + 100, "{events}");
    assert_eq!(tags(&queued.next_round()), vec![39, 40]);
    assert!(queued.is_empty());
    assert!(queued.next_round().is_empty());
}

#[test]
fn background_appends_keep_their_share_under_foreground_load() {
    let mut queued = Queued::default();
    for tag in 1..=100 {
        queued.push(queued_request(tag, 100, false));
    }
    for tag in 1001..=1020 {
        queued.push(queued_request(tag, 100, true));
    }
    let taken = tags(&queued.next_round());
    let background = taken.iter().filter(|t| **t > 1000).count();
    // Their share, less at most one request the foreground lane overshot by.
    assert!(
        background * 100 >= BACKGROUND_SHARE_EVENTS - 100,
        "background got {background} requests of 100 events"
    );
    // Arrival order is kept within each lane.
    let foreground: Vec<u64> = taken.iter().copied().filter(|t| *t <= 1000).collect();
    assert_eq!(
        foreground,
        (1..=foreground.len() as u64).collect::<Vec<_>>()
    );
    // A request larger than the cap still goes, alone.
    let mut queued = Queued::default();
    queued.push(queued_request(7, MAX_BATCH_EVENTS + 1, false));
    queued.push(queued_request(8, 1, true));
    assert_eq!(tags(&queued.next_round()), vec![7]);
    assert_eq!(tags(&queued.next_round()), vec![8]);
}

#[tokio::test]
async fn background_appends_are_durable_records_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), None).unwrap();
    let (a, b) = tokio::join!(
        log.append_background(vec![ev(1), ev(2)]),
        log.append(vec![ev(3)])
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.iter().map(n_of).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(b.iter().map(n_of).collect::<Vec<_>>(), vec![3]);
    log.close().unwrap();
    assert!(matches!(
        log.append_background(vec![ev(4)]).await,
        Err(LogError::Closed)
    ));
    drop(log);
    let reopened = EventLog::open(dir.path(), None).unwrap();
    let stored: Vec<u64> = reopened.iter_from(1).map(|r| n_of(&r.unwrap())).collect();
    let mut sorted = stored.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2, 3]);
}
