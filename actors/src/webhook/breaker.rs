//! The circuit breaker of one hook: pure policy, tested without sockets or actors. The
//! actor asks it how many tries may be in flight and tells it each try's outcome; when
//! it trips, the actor sets the timer for the pause it returns.

use std::time::Duration;

use super::millis;

/// Consecutive failed tries after which a hook pauses.
pub const BREAKER_FAILURES: u32 = 3;

/// A circuit breaker per hook, so a receiver that keeps failing costs little: after
/// [`BREAKER_FAILURES`] failed tries in a row no try starts for one retry base
/// (`--retry-base-ms`), then one try at a time goes until one succeeds. Deliveries wait
/// meanwhile; none loses a try, and failed tries still count towards auto-disable.
#[derive(Debug, Default)]
pub(super) struct Breaker {
    consecutive_failures: u32,
    /// No try starts before this (Unix ms).
    paused_until_ms: u64,
}

impl Breaker {
    /// Failed tries in a row so far.
    pub(super) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    fn tripped(&self) -> bool {
        self.consecutive_failures >= BREAKER_FAILURES
    }

    /// Records a try's outcome; returns the pause to wait out, if it trips.
    pub(super) fn record(&mut self, success: bool, now: u64, pause: Duration) -> Option<Duration> {
        if success {
            *self = Breaker::default();
            return None;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if !self.tripped() {
            return None;
        }
        self.paused_until_ms = now + millis(pause);
        Some(pause)
    }

    /// How many tries may be in flight now, given the configured bound.
    pub(super) fn allowed_in_flight(&self, now: u64, configured: usize) -> usize {
        if now < self.paused_until_ms {
            0
        } else if self.tripped() {
            1
        } else {
            configured
        }
    }
}

#[cfg(test)]
mod tests;
