//! [`DeliveryObserver`]: what the webhook actors report as they work, for the daemon's
//! metrics and alerts. The actors call it; the daemon implements it. Must not: decide
//! anything, or block (it is called from the actors' tasks).

use std::time::Duration;

use eventlog::{AccountId, WebhookId};

/// Told of each finished try and of each auto-disable once it is in the log. Both
/// methods must return quickly: spawn anything slow.
pub trait DeliveryObserver: Send + Sync {
    /// A try finished: whether the receiver took it, and how long the try took.
    fn try_finished(&self, _success: bool, _latency: Duration) {}

    /// A webhook was auto-disabled, and its `WebhookAutoDisabled` record is durable.
    fn webhook_auto_disabled(&self, _disabled: &AutoDisabled) {}
}

/// Observes nothing (tests, benches).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl DeliveryObserver for NoObserver {}

/// One auto-disable, as the actor knew the webhook when it disabled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDisabled {
    pub account_id: AccountId,
    pub webhook_id: WebhookId,
    pub name: Option<String>,
    pub uri: Option<String>,
    /// Why, as the `WebhookAutoDisabled` record says.
    pub reason: String,
    /// Failed tries within the failure window when the hook was disabled.
    pub failures: usize,
    /// Unix ms of the disable (when the try that crossed the threshold was decided).
    pub at_ms: u64,
}
