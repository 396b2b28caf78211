//! "Appended": how many events the daemon started here has appended to its log, seen
//! from outside through `GET /healthz`, so that HTTP and AMQP ingest are measured the
//! same way. The daemon reports `events_accepted`, its count of accepted events: the
//! difference of two reads is exact. For a daemon that does not, the count is derived
//! from `last_seq` and `pending_deliveries` (read under one lock), as follows.
//!
//! From the read taken after setup to a later one, with `E` events appended, `A`
//! delivery attempts logged and `F` of them final (a success, or out of retries):
//!
//! - `Δlast_seq = E + A`: one record per event and one per attempt, and nothing else is
//!   appended while the load runs (no auto-disable at the load test's failure threshold,
//!   no retention cut, snapshots are not records);
//! - `Δpending = h·E − F`: every event is owed to the `h` hooks of its account (every
//!   hook the load test creates matches every event of its account, dead ones too), and
//!   a final attempt settles one.
//!
//! So `E = (Δlast_seq + Δpending − (A − F)) / (1 + h)`. `A − F` are the attempts that
//! were retried: none with healthy hooks and no injected errors, and the count is then
//! exact (with `--hooks-per-account 0`, `E` is simply `Δlast_seq`). Otherwise an upper
//! bound of them is subtracted (the 500s the receiver injected, which it counts before
//! the daemon logs their attempt, and `retries` per dead-hook pair), so an event is
//! never counted before it is appended; the last ones may be seen late, by at most the
//! retry time.

use std::time::{Duration, Instant};

use super::api::Api;
use super::Clock;

/// How often `/healthz` is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// How long [`settled_mark`] waits for the log to settle after setup.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

/// One `/healthz` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogMark {
    pub last_seq: u64,
    pub pending: u64,
    /// The daemon's count of accepted events, when it reports one.
    pub events_accepted: Option<u64>,
}

/// Events appended between `start` and `now`, for `hooks_per_account` hooks per account
/// and at most `retried` retried attempts logged meanwhile (see the module docs).
pub(crate) fn appended_between(
    start: LogMark,
    now: LogMark,
    hooks_per_account: u64,
    retried: u64,
) -> u64 {
    if let (Some(before), Some(after)) = (start.events_accepted, now.events_accepted) {
        return after.saturating_sub(before);
    }
    let grown = i128::from(now.last_seq) - i128::from(start.last_seq) + i128::from(now.pending)
        - i128::from(start.pending)
        - i128::from(retried);
    let per_event = i128::from(hooks_per_account) + 1;
    u64::try_from(grown.max(0) / per_event).unwrap_or(u64::MAX)
}

/// The log once setup's own records are in and delivered: no delivery pending and the
/// same `last_seq` twice, 50 ms apart (at most [`SETTLE_DEADLINE`]; then the last read).
pub(crate) async fn settled_mark(api: &Api) -> Result<LogMark, super::LoadtestError> {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    let mut last = api.health().await?;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = api.health().await?;
        if now == last && now.pending == 0 {
            return Ok(now);
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                last_seq = now.last_seq,
                pending = now.pending,
                "the daemon's log did not settle after setup; counting appends from here"
            );
            return Ok(now);
        }
        last = now;
    }
}

/// What waiting for the appends saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Events appended at the last read.
    pub events: u64,
    /// When that read's answer came (µs on the run's clock).
    pub at_us: u64,
    /// The deadline passed before `target` events were seen.
    pub timed_out: bool,
    /// `/healthz` reads made.
    pub polls: u64,
}

/// Reads `/healthz` every [`POLL_EVERY`] until `target` events were appended since
/// `start`, or `deadline`. `retried` is read after each answer (an upper bound of the
/// retried attempts logged by then).
pub(crate) async fn wait_appended(
    api: &Api,
    clock: Clock,
    start: LogMark,
    target: u64,
    hooks_per_account: u64,
    retried: impl Fn() -> u64,
    deadline: Instant,
) -> Appended {
    let mut seen = Appended {
        events: 0,
        at_us: clock.now_us(),
        timed_out: false,
        polls: 0,
    };
    loop {
        match api.health().await {
            Ok(now) => {
                seen.at_us = clock.now_us();
                seen.polls += 1;
                seen.events = appended_between(start, now, hooks_per_account, retried());
                if seen.events >= target {
                    return seen;
                }
            }
            Err(e) => tracing::debug!(error = %e, "GET /healthz failed"),
        }
        if Instant::now() >= deadline {
            seen.timed_out = true;
            return seen;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests;
