//! "Appended": how many events the daemon started here has appended to its log, seen
//! from outside through `GET /healthz`, so that HTTP and AMQP ingest are measured the
//! same way. The daemon reports `events_accepted`, its count of the events in its log
//! (kept by `Registry::apply`, so producer retries of one id count once): the difference
//! of two reads is exactly the events appended between them, whatever the deliveries,
//! retries and dead hooks did meanwhile.

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
    /// The daemon's count of accepted events.
    pub events_accepted: u64,
}

/// Events appended between `start` and `now`.
pub(crate) fn appended_between(start: LogMark, now: LogMark) -> u64 {
    now.events_accepted.saturating_sub(start.events_accepted)
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
/// `start`, or `deadline`.
pub(crate) async fn wait_appended(
    api: &Api,
    clock: Clock,
    start: LogMark,
    target: u64,
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
                seen.events = appended_between(start, now);
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
