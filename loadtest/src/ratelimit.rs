//! A token bucket that paces event batches to `--rate` events per second.
//!
//! Takers may overdraw it: a take that finds too few tokens still succeeds, leaves the
//! bucket negative and is told how long to wait before sending. Concurrent senders thus
//! queue in the order they asked, and the long-run rate is exactly `rate`, whatever the
//! batch size. The logic takes `now` as an argument so it is tested without sleeping.

use std::time::{Duration, Instant};

/// Tokens refill at `rate` per second up to `burst`; the bucket starts full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive; `burst` is raised to at least one token.
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` tokens at `now`; returns how long the caller must wait before acting.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> Duration {
        if now > self.last {
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
        }
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests;
