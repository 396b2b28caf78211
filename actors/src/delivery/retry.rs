//! Stage 5 of a delivery: whether another try goes and how long to wait before it.
//! [`RetryPolicy`] is the one home of the retry rules: the default and the maximum of a
//! hook's `retries` (the API's validation reads them here), the exponential backoff
//! with jitter, and the clamp on a receiver's `Retry-After`. Pure; deterministic for a
//! seeded random number generator.

use std::time::Duration;

use rand::Rng;

use super::TryOutcome;

/// How a hook's deliveries are retried: up to its `retries` more tries after the first,
/// for a retryable outcome only, each after [`retry_delay`] from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry (before jitter); later ones double it
    /// (`--retry-base-ms`).
    pub base: Duration,
}

impl RetryPolicy {
    /// The retries of a hook that does not set `retries` (Kazoo's default).
    pub const DEFAULT_RETRIES: u32 = 2;

    /// The most retries a hook may ask for (Kazoo's maximum).
    pub const MAX_RETRIES: u32 = 4;

    /// The policy with this base wait.
    pub fn new(base: Duration) -> Self {
        RetryPolicy { base }
    }

    /// The retries of a hook whose stored `retries` is `stored` (`None` when it is unset
    /// or not a non-negative integer): [`Self::DEFAULT_RETRIES`] when unset, at most
    /// [`Self::MAX_RETRIES`].
    pub fn retries(stored: Option<u64>) -> u32 {
        stored.map_or(Self::DEFAULT_RETRIES, |r| {
            u32::try_from(r.min(u64::from(Self::MAX_RETRIES))).unwrap_or(Self::MAX_RETRIES)
        })
    }

    /// The retries left once `tries_done` tries (the first one included) were made for
    /// a hook allowed `retries`.
    pub fn retries_left(retries: u32, tries_done: u32) -> u32 {
        retries.saturating_add(1).saturating_sub(tries_done)
    }

    /// How long a hook waits before it writes again attempt records the log refused
    /// (a full disk, say): one base, at most [`MAX_RECORD_RETRY_WAIT`]. The tries are
    /// not made again; only their records are written.
    pub fn record_retry_wait(&self) -> Duration {
        self.base.min(MAX_RECORD_RETRY_WAIT)
    }

    /// When try number `tries_done` ended at `now` (Unix ms) with `outcome`: the time of
    /// the next try, or `None` when the delivery is finished (a success, a final
    /// failure, or no retry left).
    pub fn next_try_at<R: Rng + ?Sized>(
        &self,
        outcome: &TryOutcome,
        tries_done: u32,
        retries_left: u32,
        now: u64,
        rng: &mut R,
    ) -> Option<u64> {
        if !outcome.is_retryable() || retries_left == 0 {
            return None;
        }
        let wait = retry_delay(self.base, tries_done, outcome.retry_after(), rng);
        Some(now.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// Longest wait between two attempts to write refused attempt records.
pub const MAX_RECORD_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Longest wait [`retry_delay`] computes from the exponential backoff (before jitter),
/// unless the base delay itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// Longest wait a receiver's `Retry-After` can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// The wait before retry number `try_number` (1 for the first retry, after the first
/// try failed).
///
/// * With a `retry_after` from the receiver, that value clamped to
///   `[base, MAX_RETRY_AFTER]` (1 hour): a receiver may slow us down, but not below our own
///   base nor beyond an hour; no jitter is added, as the receiver asked for a time.
/// * Otherwise exponential backoff with jitter: the ceiling is `base * 2^(try_number - 1)`,
///   capped at [`MAX_BACKOFF`] (10 minutes, or `base` if that is longer), and the wait is
///   drawn uniformly from `[ceiling / 2, ceiling]`. Keeping at least half the ceiling keeps
///   the growth visible while still spreading retries of many hooks that failed together.
///
/// `try_number` 0 is treated as 1. Deterministic for a seeded `rng`; never panics.
pub fn retry_delay<R: Rng + ?Sized>(
    base: Duration,
    try_number: u32,
    retry_after: Option<Duration>,
    rng: &mut R,
) -> Duration {
    if let Some(asked) = retry_after {
        return asked.max(base).min(MAX_RETRY_AFTER);
    }
    let cap = MAX_BACKOFF.max(base);
    let doublings = try_number.saturating_sub(1);
    let ceiling = base
        .checked_mul(2_u32.saturating_pow(doublings))
        .unwrap_or(cap)
        .min(cap);
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let floor_nanos = ceiling_nanos - ceiling_nanos / 2;
    Duration::from_nanos(rng.random_range(floor_nanos..=ceiling_nanos))
}

#[cfg(test)]
mod tests;
