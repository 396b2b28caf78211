//! Telemetry: the tracing subscriber every command of the binary logs through (standard
//! error, `RUST_LOG` filter, `info` by default), the daemon's [`metrics`], and
//! [`DeliveryTelemetry`], what the webhook actors report to (metrics, and the operator's
//! alerts of [`crate::alerts`]).
//!
//! It only installs and counts; what is traced, and in which spans, is the business of the
//! code that traces. Standard output is not touched: it carries only the `listening on`
//! line.

use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::alerts::Alerts;

pub mod metrics;

/// The subscriber could not be installed (one is already).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the tracing subscriber: {0}")]
pub struct TelemetryError(Box<dyn std::error::Error + Send + Sync>);

/// Installs the global tracing subscriber: formatted events on standard error, filtered
/// by `RUST_LOG` (`info` when it is unset or unreadable). Call once, before anything
/// traces.
pub fn init() -> Result<(), TelemetryError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(TelemetryError)
}

/// What the webhook actors report to: tries and auto-disables counted, and each
/// auto-disable alerted when `--alert-url` is set.
pub struct DeliveryTelemetry {
    pub metrics: Arc<metrics::Metrics>,
    pub alerts: Option<Alerts>,
}

impl actors::DeliveryObserver for DeliveryTelemetry {
    fn try_finished(&self, success: bool, latency: Duration) {
        self.metrics.try_finished(success, latency);
    }

    fn webhook_auto_disabled(&self, disabled: &actors::AutoDisabled) {
        self.metrics.webhook_auto_disabled();
        if let Some(alerts) = &self.alerts {
            alerts.webhook_disabled(disabled);
        }
    }
}
