//! The quiet window: after the last expected delivery arrived, the receiver is watched
//! until it has seen no request for `--quiet-window-ms` (default 2 s), so that late
//! duplicates and misdirected deliveries are counted before the reconciliation.
//!
//! Every request during the window restarts it: any request after every expected pair
//! arrived is a duplicate, misdirected or unknown, so a window that never goes quiet
//! means the daemon kept sending; the watch then stops after [`MAX_WINDOWS`] windows and
//! says so. [`QuietWatch`] is the decision, on instants it is given; [`watch`] polls
//! the receiver's request counter with it.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The watch ends after this many windows even if requests keep coming.
pub(crate) const MAX_WINDOWS: u32 = 10;

/// How often [`watch`] reads the receiver's counter, at most.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// What the watch saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct QuietWindow {
    /// `--quiet-window-ms`.
    pub window_ms: u64,
    /// How long the receiver was watched.
    pub watched_ms: u64,
    /// Requests the receiver got meanwhile (duplicates, misdirected or unknown: each one
    /// is counted in the reconciliation too).
    pub requests: u64,
    /// The receiver went a whole window without a request (`false`: the watch stopped
    /// after [`MAX_WINDOWS`] windows with requests still coming).
    pub quiet: bool,
}

/// The window's state between two reads of the receiver's request counter.
#[derive(Debug, Clone)]
pub(crate) struct QuietWatch {
    window: Duration,
    started: Instant,
    last_request: Instant,
    count: u64,
    requests: u64,
}

impl QuietWatch {
    /// Starts watching at `now`, when the receiver's counter is `count`.
    pub(crate) fn new(window: Duration, now: Instant, count: u64) -> QuietWatch {
        QuietWatch {
            window,
            started: now,
            last_request: now,
            count,
            requests: 0,
        }
    }

    /// The counter read `count` at `now`: `Some` once the window is over.
    pub(crate) fn observe(&mut self, now: Instant, count: u64) -> Option<QuietWindow> {
        if count != self.count {
            self.requests += count.saturating_sub(self.count);
            self.count = count;
            self.last_request = now;
        }
        let quiet = now.saturating_duration_since(self.last_request) >= self.window;
        let watched = now.saturating_duration_since(self.started);
        if !quiet && watched < self.window.saturating_mul(MAX_WINDOWS) {
            return None;
        }
        Some(QuietWindow {
            window_ms: millis(self.window),
            watched_ms: millis(watched),
            requests: self.requests,
            quiet,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Watches `requests` (the receiver's counter of every request) until it stays the
/// same for `window`, or [`MAX_WINDOWS`] windows passed.
pub(crate) async fn watch(requests: impl Fn() -> u64, window: Duration) -> QuietWindow {
    let mut state = QuietWatch::new(window, Instant::now(), requests());
    loop {
        if let Some(done) = state.observe(Instant::now(), requests()) {
            return done;
        }
        tokio::time::sleep(POLL_EVERY.min(window)).await;
    }
}

#[cfg(test)]
mod tests;
