//! Phase 3, the drain: wait until the daemon's log holds every accepted event (own
//! daemon only) and every expected pair arrived, or the drain timeout; then watch the
//! quiet window ([`crate::quiet`]) for late duplicates and misdirected deliveries;
//! then stop the RSS sampler ([`crate::memory`]) and read the daemon's memory and the
//! CPU used. It only waits and reads: the
//! reconciliation comes after.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Loaded, RunContext, SetUp};
use crate::api::Api;
use crate::daemon::{self, OwnDaemon};
use crate::ingest::{self, LogMark};
use crate::load::LoadOutcome;
use crate::memory::{self, MemorySample, Sampler};
use crate::progress::Progress;
use crate::quiet::{self, QuietWindow};
use crate::receiver::ReceiverState;
use crate::report::{self, DaemonMemory, Throughput};

/// How often the receiver's count of expected pairs is read.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The drain's part of the report.
pub(super) struct Drained {
    pub appended: Option<report::Appended>,
    pub timed_out: bool,
    /// `None` when not watched: the drain timed out, or no hook could reach the
    /// receiver.
    pub quiet_window: Option<QuietWindow>,
    /// The daemon's RSS from the start of the load (own daemon only).
    pub memory_series: Vec<MemorySample>,
    pub daemon: Option<DaemonMemory>,
    pub loadtest_cpu_seconds: Option<f64>,
}

/// Phase 3: appended, delivered, quiet; then the memory and CPU used.
pub(super) async fn drain(
    run: &RunContext<'_>,
    setup: &SetUp,
    loaded: &Loaded,
    progress: Progress,
    sampler: Option<Sampler>,
) -> Drained {
    let expected: u64 = loaded
        .state
        .accepted_events()
        .map(|e| setup.plan.expected_hooks(e).len() as u64)
        .sum();
    progress.set_length(expected);
    let deadline = Instant::now() + Duration::from_secs_f64(run.args.drain_timeout);
    let mut appended = match setup.log_mark {
        Some(start) => {
            Some(count_appended(run, &setup.api, &loaded.outcome, start, deadline).await)
        }
        None => None,
    };
    let timed_out = !deliveries_arrived(run.receiver, expected, deadline).await;
    progress.finish();
    // Without a healthy hook nothing can reach the receiver: no window to watch.
    let quiet_window = if timed_out || setup.plan.healthy_hooks() == 0 {
        None
    } else {
        let receiver = run.receiver;
        Some(
            quiet::watch(
                || receiver.requests.load(Ordering::Relaxed),
                Duration::from_millis(run.args.quiet_window_ms),
            )
            .await,
        )
    };
    // Counted again once the deliveries are done: more than were accepted means
    // events of timed-out batches, events from elsewhere (another publisher on
    // `callevt`) or records the count does not know of.
    if let (Some(a), Some(start)) = (appended.as_mut(), setup.log_mark) {
        if let Ok(end) = setup.api.health().await {
            a.events_at_end = Some(ingest::appended_between(start, end));
        }
    }
    let memory_series = match sampler {
        Some(sampler) => sampler.finish().await,
        None => Vec::new(),
    };
    let daemon = run.own.and_then(OwnDaemon::memory).map(|m| DaemonMemory {
        sampled: memory::summarize(&memory_series),
        ..m
    });
    Drained {
        appended,
        timed_out,
        quiet_window,
        memory_series,
        daemon,
        loadtest_cpu_seconds: daemon::cpu_seconds("self"),
    }
}

/// Waits until `/healthz` shows every accepted event in the log (or `deadline`), and
/// how fast they were appended.
async fn count_appended(
    run: &RunContext<'_>,
    api: &Api,
    outcome: &LoadOutcome,
    start: LogMark,
    deadline: Instant,
) -> report::Appended {
    let seen = ingest::wait_appended(api, run.clock, start, outcome.accepted, deadline).await;
    let rate = Throughput::new(seen.events, seen.at_us.saturating_sub(outcome.start_us));
    report::Appended {
        events: seen.events,
        seconds: rate.seconds,
        per_second: rate.per_second,
        after_last_accept_ms: (seen.at_us.saturating_sub(outcome.end_us) as f64 / 1000.0 * 10.0)
            .round()
            / 10.0,
        timed_out: seen.timed_out,
        polls: seen.polls,
        events_at_end: None,
    }
}

/// Waits until `expected` pairs arrived; `false` when `deadline` passed first.
async fn deliveries_arrived(receiver: &ReceiverState, expected: u64, deadline: Instant) -> bool {
    loop {
        if receiver.unique_ok.load(Ordering::Relaxed) >= expected {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
