//! The event log: durable appends (each one a synced group commit) and replay. Logs are
//! opened as the daemon opens them, with its indexer (`actors::index::indexer`).
//!
//! - `append/single`: one appender, one event per append; every append waits for its own
//!   synced write, so this is the fsync latency of the disk.
//! - `append/concurrent/64`: 64 tokio tasks each append one event at once; the writer
//!   thread group-commits them (events/s).
//! - `append/batch/100`: one append of 100 events (one synced write);
//!   `append/batch_unindexed/100` the same on a log opened without indexer.
//! - `append/concurrent_batches/4x100`: 4 tasks each append 100 events at once, as the
//!   load test's ingest does (`--batch 100 --concurrency 4`).
//! - `replay/iter_from/100k`: `iter_from(1)` over a log of 100,000 records (decode, hash
//!   and chain checks), records/s.
//! - `replay/apply/100k`: the same walk through `Registry::apply`, as a start without
//!   snapshot does.
//!
//! Run: `cargo bench --bench eventlog` (RocksDB prebuilt: see BENCHMARKS.md).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use actors::Registry;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use eventlog::{AccountId, Attempt, AttemptResult, Event, EventLog, OpenOptions, WebhookId};
use tokio::task::JoinSet;

#[allow(dead_code)]
mod support;

use support::{account_created, channel_create_payload, event_accepted, matching_hook_doc};

/// Records in the replayed log.
const REPLAY_RECORDS: u64 = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Opens a log in `dir` as the daemon does (with its indexer: every accepted event's id
/// is a unique key checked on the writer thread), or without any indexer.
fn open_log(dir: &Path, indexed: bool) -> EventLog {
    EventLog::open_with(
        &dir.join("eventlog"),
        OpenOptions {
            on_commit: None,
            indexer: indexed.then(actors::index::indexer),
            on_write: None,
            indexer_version: actors::index::INDEXER_VERSION,
        },
    )
    .expect("open the log")
}

fn bench_append(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open_log(dir.path(), true);
    let account = AccountId::generate();
    let event = |n: u64| event_accepted(&account, channel_create_payload(&account, n));

    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        let mut n = 0;
        b.to_async(&rt).iter_batched(
            || {
                n += 1;
                vec![event(n)]
            },
            |events| async {
                log.append(events).await.expect("append");
            },
            BatchSize::SmallInput,
        );
    });

    for (tasks, per_task, name) in [
        (64u64, 1u64, "concurrent/64"),
        (4, 100, "concurrent_batches/4x100"),
    ] {
        let (seq_before, batches_before) = (log.last_seq(), log.batches_written());
        group.throughput(Throughput::Elements(tasks * per_task));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let requests: Vec<Vec<Event>> = (0..tasks)
                            .map(|t| {
                                (0..per_task)
                                    .map(|e| event((i * tasks + t) * per_task + e))
                                    .collect()
                            })
                            .collect();
                        let start = Instant::now();
                        let mut set = JoinSet::new();
                        for events in requests {
                            let log = log.clone();
                            set.spawn(async move { log.append(events).await });
                        }
                        while let Some(done) = set.join_next().await {
                            done.expect("append task").expect("append");
                        }
                        total += start.elapsed();
                    }
                    total
                })
            });
        });
        let records = log.last_seq() - seq_before;
        let batches = (log.batches_written() - batches_before).max(1);
        eprintln!(
            "append/{name}: {records} events in {batches} synced group commits ({:.1} per commit)",
            records as f64 / batches as f64
        );
    }

    group.throughput(Throughput::Elements(100));
    group.bench_function("batch/100", |b| {
        let mut n = 0;
        b.to_async(&rt).iter_batched(
            || {
                n += 100;
                (n..n + 100).map(event).collect::<Vec<_>>()
            },
            |events| async {
                log.append(events).await.expect("append");
            },
            BatchSize::SmallInput,
        );
    });

    // The same batches on a log without indexer: the cost of the unique-key check.
    let plain_dir = tempfile::tempdir().expect("temp dir");
    let plain = open_log(plain_dir.path(), false);
    group.bench_function("batch_unindexed/100", |b| {
        let mut n = 0;
        b.to_async(&rt).iter_batched(
            || {
                n += 100;
                (n..n + 100).map(event).collect::<Vec<_>>()
            },
            |events| async {
                plain.append(events).await.expect("append");
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
    log.close().expect("close the log");
    plain.close().expect("close the log");
}

/// The events of a log of `total` records as a daemon writes them: a master, 10 accounts
/// with 10 hooks each, then call events, each followed by its 10 successful delivery
/// attempts (11 records per call event).
fn replay_events(total: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let master = AccountId::generate();
    events.push(account_created(&master, None, "Master Account"));
    let mut accounts = Vec::new();
    for a in 0..10 {
        let id = AccountId::generate();
        events.push(account_created(&id, Some(&master), &format!("account {a}")));
        accounts.push((id, Vec::new()));
    }
    for (account, hooks) in &mut accounts {
        for slot in 0..10 {
            let webhook_id = WebhookId::generate();
            events.push(Event::WebhookCreated {
                account_id: account.clone(),
                webhook_id: webhook_id.clone(),
                doc: matching_hook_doc(slot, &format!("http://127.0.0.1:9/hook/{slot}")),
            });
            hooks.push(webhook_id);
        }
    }
    let mut n = 0u64;
    while (events.len() as u64) < total {
        let (account, hooks) = &accounts[(n % 10) as usize];
        let accepted = event_accepted(account, channel_create_payload(account, n));
        let Event::EventAccepted { event_id, .. } = &accepted else {
            unreachable!("event_accepted builds an EventAccepted")
        };
        let event_id = event_id.clone();
        // Sequences start at 1 and the log is written in this order.
        let event_seq = events.len() as u64 + 1;
        events.push(accepted);
        for webhook_id in hooks {
            events.push(Event::DeliveryAttempted(Attempt {
                event_seq,
                event_id: event_id.clone(),
                webhook_id: webhook_id.clone(),
                account_id: account.clone(),
                hook_event: "channel_create".to_owned(),
                uri: "http://127.0.0.1:9/hook".to_owned(),
                method: "post".to_owned(),
                result: AttemptResult::Success,
                reason: None,
                client_error: None,
                response_code: Some(200),
                response_body: None,
                retries_left: 2,
                latency_ms: 3,
                next_try_at_ms: None,
                local_fault: false,
            }));
        }
        n += 1;
    }
    events.truncate(total as usize);
    events
}

fn bench_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open_log(dir.path(), true);
    let mut events = replay_events(REPLAY_RECORDS);
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(1000));
        log.append_blocking(events).expect("append");
        events = rest;
    }
    assert_eq!(log.last_seq(), REPLAY_RECORDS);

    let mut group = c.benchmark_group("replay");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(REPLAY_RECORDS));
    group.bench_function("iter_from/100k", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for record in log.iter_from(1) {
                black_box(record.expect("intact record"));
                n += 1;
            }
            assert_eq!(n, REPLAY_RECORDS);
        });
    });
    group.bench_function("apply/100k", |b| {
        b.iter_with_large_drop(|| {
            let mut registry = Registry::new();
            for record in log.iter_from(1) {
                black_box(registry.apply(&record.expect("intact record")));
            }
            assert_eq!(registry.last_seq(), REPLAY_RECORDS);
            registry
        });
    });
    group.finish();
    log.close().expect("close the log");
}

criterion_group!(benches, bench_append, bench_replay);
criterion_main!(benches);
