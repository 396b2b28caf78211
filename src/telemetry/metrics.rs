//! The daemon's metrics (`GET /metrics`, docs/metrics.md): every family registered here,
//! in one [`Metrics`] per daemon (no global registry: daemons in one process stay apart).
//!
//! Counting sites get cheap handles (a [`Counter`] or [`Histogram`] is an `Arc` inside)
//! or, in the lower crates, an observer: the log's [`WriteObserver`]
//! ([`Metrics::log_observer`]) and the actors' `DeliveryObserver` (`telemetry`). Gauges
//! of state (pending deliveries, webhooks by state, the log's last sequence) are set
//! from [`ScrapeFigures`] when scraped. Labels are bounded: never an account or webhook
//! id.

use std::sync::Arc;
use std::time::Duration;

use eventlog::{WriteObserver, WriteStats};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of the exposition (the Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Delivery latency buckets, in seconds: 1 ms to 30 s (the default request timeout is
/// 10 s).
pub const DELIVERY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Group commit buckets, in seconds: 100 µs (a synced write on fast storage) to 1 s.
pub const LOG_APPEND_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// One label, its value from a fixed set.
type Label = [(&'static str, &'static str); 1];

/// Where an accepted event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Http,
    Amqp,
}

/// What the RabbitMQ consumer did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmqpOutcome {
    /// Its event was appended to the log.
    Accepted,
    /// Its event was already in the log (a redelivery): acked, not appended.
    Duplicate,
    /// No account id: acked and dropped, as Kazoo does.
    Dropped,
    /// Malformed: rejected to the dead-letter queue.
    DeadLettered,
}

impl AmqpOutcome {
    const ALL: [AmqpOutcome; 4] = [
        AmqpOutcome::Accepted,
        AmqpOutcome::Duplicate,
        AmqpOutcome::Dropped,
        AmqpOutcome::DeadLettered,
    ];

    fn label(self) -> &'static str {
        match self {
            AmqpOutcome::Accepted => "accepted",
            AmqpOutcome::Duplicate => "duplicate",
            AmqpOutcome::Dropped => "dropped",
            AmqpOutcome::DeadLettered => "dead_lettered",
        }
    }
}

/// State read when scraped, under short locks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeFigures {
    pub pending_deliveries: u64,
    pub webhooks: actors::WebhookStates,
    pub log_last_seq: u64,
}

/// One daemon's metrics: the registry and a handle on every series.
pub struct Metrics {
    registry: Registry,
    events_accepted: Family<Label, Counter>,
    /// `piston_deliveries_total{result="success"}` and `{result="failure"}`.
    tries_succeeded: Counter,
    tries_failed: Counter,
    delivery_duration: Histogram,
    pending_deliveries: Gauge,
    webhooks: Family<Label, Gauge>,
    auto_disabled: Counter,
    log_appends: Counter,
    log_append_duration: Histogram,
    log_last_seq: Gauge,
    amqp_messages: Family<Label, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, every labelled series created (so each shows from the
    /// first scrape, at zero).
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let events_accepted = Family::<Label, Counter>::default();
        registry.register(
            "piston_events_accepted",
            "Events appended to the log from producers, by source (http or amqp); retries of an event already accepted are not counted",
            events_accepted.clone(),
        );
        for source in ["http", "amqp"] {
            events_accepted.get_or_create_owned(&[("source", source)]);
        }
        let deliveries = Family::<Label, Counter>::default();
        registry.register(
            "piston_deliveries",
            "Delivery tries finished, by result (success or failure)",
            deliveries.clone(),
        );
        let tries_succeeded = deliveries.get_or_create_owned(&[("result", "success")]);
        let tries_failed = deliveries.get_or_create_owned(&[("result", "failure")]);
        let delivery_duration = Histogram::new(DELIVERY_BUCKETS);
        registry.register(
            "piston_delivery_duration_seconds",
            "Wall time of one delivery try, from sending to the end of the response body",
            delivery_duration.clone(),
        );
        let pending_deliveries = Gauge::default();
        registry.register(
            "piston_pending_deliveries",
            "Deliveries owed (not finished yet), retries waiting included",
            pending_deliveries.clone(),
        );
        let webhooks = Family::<Label, Gauge>::default();
        registry.register(
            "piston_webhooks",
            "Webhooks by state (enabled, disabled by hand, auto_disabled)",
            webhooks.clone(),
        );
        for state in ["enabled", "disabled", "auto_disabled"] {
            webhooks.get_or_create_owned(&[("state", state)]);
        }
        let auto_disabled = Counter::default();
        registry.register(
            "piston_webhooks_auto_disabled",
            "Webhooks auto-disabled since the start, counted once the disable is in the log",
            auto_disabled.clone(),
        );
        let log_appends = Counter::default();
        registry.register(
            "piston_log_appends",
            "Records appended to the event log since the start",
            log_appends.clone(),
        );
        let log_append_duration = Histogram::new(LOG_APPEND_BUCKETS);
        registry.register(
            "piston_log_append_duration_seconds",
            "Time of one durable group commit of the event log (encode and synced write)",
            log_append_duration.clone(),
        );
        let log_last_seq = Gauge::default();
        registry.register(
            "piston_log_last_seq",
            "Sequence of the last record in the event log",
            log_last_seq.clone(),
        );
        let amqp_messages = Family::<Label, Counter>::default();
        registry.register(
            "piston_amqp_messages",
            "RabbitMQ messages handled, by outcome (accepted, duplicate, dropped, dead_lettered)",
            amqp_messages.clone(),
        );
        for outcome in AmqpOutcome::ALL {
            amqp_messages.get_or_create_owned(&[("outcome", outcome.label())]);
        }
        Metrics {
            registry,
            events_accepted,
            tries_succeeded,
            tries_failed,
            delivery_duration,
            pending_deliveries,
            webhooks,
            auto_disabled,
            log_appends,
            log_append_duration,
            log_last_seq,
            amqp_messages,
        }
    }

    /// The counter of events accepted from `source`.
    pub fn events_accepted(&self, source: Source) -> Counter {
        let label = match source {
            Source::Http => "http",
            Source::Amqp => "amqp",
        };
        self.events_accepted
            .get_or_create_owned(&[("source", label)])
    }

    /// The counter of RabbitMQ messages with `outcome`.
    pub fn amqp_messages(&self, outcome: AmqpOutcome) -> Counter {
        self.amqp_messages
            .get_or_create_owned(&[("outcome", outcome.label())])
    }

    /// Counts one finished delivery try.
    pub fn try_finished(&self, success: bool, latency: Duration) {
        if success {
            self.tries_succeeded.inc();
        } else {
            self.tries_failed.inc();
        }
        self.delivery_duration.observe(latency.as_secs_f64());
    }

    /// Counts one auto-disable (once it is in the log).
    pub fn webhook_auto_disabled(&self) {
        self.auto_disabled.inc();
    }

    /// The observer the event log calls on its writer thread after each group commit.
    pub fn log_observer(self: &Arc<Self>) -> WriteObserver {
        let metrics = Arc::clone(self);
        Arc::new(move |stats: &WriteStats| {
            metrics.log_appends.inc_by(stats.records);
            metrics
                .log_append_duration
                .observe(stats.duration.as_secs_f64());
            metrics.log_last_seq.set(gauge_value(stats.last_seq));
        })
    }

    /// The exposition, with the state gauges set from `figures`.
    pub fn render(&self, figures: &ScrapeFigures) -> String {
        self.pending_deliveries
            .set(gauge_value(figures.pending_deliveries));
        self.log_last_seq.set(gauge_value(figures.log_last_seq));
        let states = figures.webhooks;
        for (state, count) in [
            ("enabled", states.enabled),
            ("disabled", states.disabled),
            ("auto_disabled", states.auto_disabled),
        ] {
            self.webhooks
                .get_or_create(&[("state", state)])
                .set(gauge_value(count));
        }
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug of the crate.
        if let Err(e) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
