//! What a finished try means for its delivery and its hook: the attempt record, when the
//! delivery is tried again (if it is), and whether this failure disables the hook.
//!
//! Pure: the caller passes the time and the random source, and gets a [`Decision`] back;
//! logging the records, scheduling the retry and pausing the hook (its breaker) are the
//! actor's. The retry rules themselves are [`RetryPolicy`]'s.

use std::collections::VecDeque;

use eventlog::{Attempt, AttemptResult};
use rand::Rng;

use super::{millis, DeliverySettings};
use crate::delivery::{RetryPolicy, TryResult};
use crate::hook_config::HookConfig;
use crate::registry::PendingDelivery;

/// What the actor knows of its hook for auto-disable: the times (Unix ms, oldest first)
/// of its latest failed tries, and whether it is disabled.
#[derive(Debug, Default)]
pub(super) struct AutoDisable {
    failures: VecDeque<u64>,
    disabled: bool,
}

impl AutoDisable {
    /// As the registry has it: the failure times it holds, and the hook's `enabled`.
    pub(super) fn new(failures: VecDeque<u64>, enabled: bool) -> Self {
        AutoDisable {
            failures,
            disabled: !enabled,
        }
    }

    /// Whether the hook is disabled (by hand, or by this actor): no try starts.
    pub(super) fn disabled(&self) -> bool {
        self.disabled
    }

    /// Failed tries within the window, as last counted.
    pub(super) fn failures(&self) -> usize {
        self.failures.len()
    }

    /// Unix ms of the latest failed try counted (the one that disabled the hook, once
    /// disabled by it).
    pub(super) fn last_failure_ms(&self) -> Option<u64> {
        self.failures.back().copied()
    }

    /// Counts a failed try at `now` within `settings`' window; returns whether it
    /// disables the hook (the threshold reached by an enabled hook).
    fn count_failure(&mut self, now: u64, settings: &DeliverySettings) -> bool {
        self.failures.push_back(now);
        let window_start = now.saturating_sub(millis(settings.failure_window));
        while self.failures.front().is_some_and(|t| *t < window_start) {
            self.failures.pop_front();
        }
        let threshold = usize::try_from(settings.failure_threshold).unwrap_or(usize::MAX);
        if self.disabled || self.failures.len() < threshold {
            return false;
        }
        self.disabled = true;
        true
    }
}

/// What one finished try means.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decision {
    /// The `DeliveryAttempted` record of the try.
    pub(super) attempt: Attempt,
    /// When the delivery is tried again; `None` when it is finished.
    pub(super) next_try_at_ms: Option<u64>,
    /// The try succeeded.
    pub(super) success: bool,
    /// The try failed on our side (see [`TryResult::local_fault`]): it says nothing about
    /// the receiver, so the breaker ignores it.
    pub(super) local_fault: bool,
    /// This failure disables the hook (`WebhookAutoDisabled` goes with the attempt).
    pub(super) disables_hook: bool,
}

/// Decides what `result`, the outcome of `delivery`'s next try to `hook`, means at `now`.
pub(super) fn decide<R: Rng + ?Sized>(
    hook: &HookConfig,
    delivery: &PendingDelivery,
    result: TryResult,
    now: u64,
    settings: &DeliverySettings,
    auto_disable: &mut AutoDisable,
    rng: &mut R,
) -> Decision {
    let tries_done = delivery.tries_done + 1;
    let retries_left = RetryPolicy::retries_left(hook.retries, tries_done);
    let success = result.outcome.is_success();
    let next_try_at_ms =
        settings
            .retry_policy()
            .next_try_at(&result.outcome, tries_done, retries_left, now, rng);
    let reason = if success {
        None
    } else if let crate::delivery::TryOutcome::NotSent { reason } = &result.outcome {
        Some(reason.clone())
    } else if result.client_error.is_some() {
        Some("http client error".to_owned())
    } else {
        Some("bad response code".to_owned())
    };
    let event = &delivery.event;
    let attempt = Attempt {
        event_seq: event.seq,
        event_id: event.event_id.clone(),
        webhook_id: hook.id.clone(),
        account_id: hook.account_id.clone(),
        hook_event: event.hook_event.clone(),
        uri: hook.uri().to_owned(),
        method: hook.http_verb.clone(),
        result: if success {
            AttemptResult::Success
        } else {
            AttemptResult::Failure
        },
        reason,
        client_error: result.client_error,
        response_code: result.response_code,
        response_body: result.response_body,
        retries_left,
        latency_ms: result.latency_ms,
        next_try_at_ms,
        local_fault: result.local_fault,
    };
    // A fault on our side is retried, but it is not the receiver's failure.
    let disables_hook =
        !success && !result.local_fault && auto_disable.count_failure(now, settings);
    Decision {
        local_fault: attempt.local_fault,
        attempt,
        next_try_at_ms,
        success,
        disables_hook,
    }
}

#[cfg(test)]
mod tests;
