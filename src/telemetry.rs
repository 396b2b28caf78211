//! Telemetry setup: the tracing subscriber every command of the binary logs through
//! (standard error, `RUST_LOG` filter, `info` by default). Metrics will be set up here
//! too.
//!
//! It only installs; what is traced, and in which spans, is the business of the code that
//! traces. Standard output is not touched: it carries only the `listening on` line.

use tracing_subscriber::EnvFilter;

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
