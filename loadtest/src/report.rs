//! The final report: reconciliation of expected and received `(event, hook)` pairs
//! (computed by [`super::reconcile`]) and the verdict, latency percentiles (hdrhistogram), throughput, events appended by the daemon,
//! per-second series, errors, the daemon's memory and the baseline; as one JSON object
//! (its serde layout is the `--json` format) or as text ([`text`]).

use hdrhistogram::Histogram;
use serde::Serialize;

use super::load::ApiErrors;
use super::memory::{DeadBacklog, MemorySample, RssSummary};
use super::quiet::QuietWindow;
use super::reconcile::Reconciliation;
use super::LoadtestError;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99_9")]
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// A latency histogram in microseconds, from 1 µs to one hour.
pub(crate) fn new_histogram(sigfig: u8) -> Result<Histogram<u64>, LoadtestError> {
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig)
        .map_err(|e| LoadtestError::Setup(format!("latency histogram: {e}")))
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: round3(h.mean() / 1000.0),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One second of the run, counted from the start of the load.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Second {
    pub second: u64,
    pub events_accepted: u64,
    pub deliveries: u64,
    /// p99 latency of the deliveries received in that second (ms); 0 when none.
    pub p99_ms: f64,
}

/// Builds per-second series: accepted events, first receipts, and their p99 latency.
#[derive(Debug)]
pub(crate) struct SeriesBuilder {
    start_us: u64,
    empty: Histogram<u64>,
    accepted: Vec<u64>,
    deliveries: Vec<u64>,
    latency: Vec<Histogram<u64>>,
}

impl SeriesBuilder {
    pub(crate) fn new(start_us: u64) -> Result<SeriesBuilder, LoadtestError> {
        Ok(SeriesBuilder {
            start_us,
            empty: new_histogram(2)?,
            accepted: Vec::new(),
            deliveries: Vec::new(),
            latency: Vec::new(),
        })
    }

    fn slot(&mut self, at_us: u64) -> usize {
        let second = usize::try_from(at_us.saturating_sub(self.start_us) / 1_000_000)
            .unwrap_or(usize::MAX)
            .min(100_000);
        if self.accepted.len() <= second {
            self.accepted.resize(second + 1, 0);
            self.deliveries.resize(second + 1, 0);
            self.latency.resize(second + 1, self.empty.clone());
        }
        second
    }

    pub(crate) fn accepted(&mut self, at_us: u64, events: u64) {
        let s = self.slot(at_us);
        self.accepted[s] += events;
    }

    pub(crate) fn delivered(&mut self, at_us: u64, latency_us: u64) {
        let s = self.slot(at_us);
        self.deliveries[s] += 1;
        self.latency[s].saturating_record(latency_us.max(1));
    }

    pub(crate) fn build(self) -> Vec<Second> {
        (0..self.accepted.len())
            .map(|s| Second {
                second: s as u64,
                events_accepted: self.accepted[s],
                deliveries: self.deliveries[s],
                p99_ms: if self.latency[s].is_empty() {
                    0.0
                } else {
                    round3(self.latency[s].value_at_quantile(0.99) as f64 / 1000.0)
                },
            })
            .collect()
    }
}

/// A count over a time window, and the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Throughput {
    pub count: u64,
    pub seconds: f64,
    pub per_second: f64,
}

impl Throughput {
    pub(crate) fn new(count: u64, window_us: u64) -> Throughput {
        let seconds = window_us as f64 / 1e6;
        Throughput {
            count,
            seconds: round3(seconds),
            per_second: if seconds > 0.0 {
                round1(count as f64 / seconds)
            } else {
                0.0
            },
        }
    }
}

/// The run's settings, as the report shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Settings {
    /// `own daemon` or the `--target` URL.
    pub target: String,
    /// How the events were sent: `http` (`POST /v2/events`) or `amqp` (RabbitMQ).
    pub via: &'static str,
    pub accounts: u32,
    pub hooks_per_account: u32,
    pub hooks: u64,
    pub dead_hooks: u32,
    pub events: u64,
    pub batch: u64,
    /// 0 = as fast as possible.
    pub rate: f64,
    /// Senders at once (`--concurrency`, or `--connections`).
    pub concurrency: usize,
    /// `--connections`: each sender had an HTTP connection of its own.
    pub connections: Option<usize>,
    /// `--dead-backlog N`: one account, one dead hook, N events.
    pub dead_backlog: Option<u64>,
    pub duration_s: Option<f64>,
    pub receiver_delay_ms: u64,
    pub receiver_error_rate: f64,
    pub quiet_window_ms: u64,
    pub max_in_flight_per_hook: u32,
    pub max_in_flight: u32,
    pub setup_seconds: f64,
}

/// The events side.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Events {
    pub sent: u64,
    pub accepted: u64,
    /// Events of refused batches (another status than 202, or a failed connection; with
    /// AMQP, nacked or unroutable messages).
    pub refused: u64,
    /// Events of batches that got no answer in time (they may or may not be in the log).
    pub timed_out: u64,
    /// Accepted events over the time from the first send to the last answer.
    pub accepted_per_second: f64,
    pub load_seconds: f64,
    pub stopped_by_duration: bool,
}

/// Events the daemon appended to its log, counted through `GET /healthz` (see
/// `loadtest/ingest.rs`); only for the daemon the load test started. The count is exact
/// by construction (the difference of two reads of the daemon's own count); what could
/// still make it misleading, events from elsewhere, shows in `events_at_end`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Appended {
    /// Events appended when every accepted event was seen appended (or at the deadline).
    pub events: u64,
    /// From the first send to that `/healthz` answer.
    pub seconds: f64,
    pub per_second: f64,
    /// How long after the last accept (202, or broker confirm) that answer came.
    pub after_last_accept_ms: f64,
    /// The drain timeout passed before every accepted event was seen appended.
    pub timed_out: bool,
    /// `/healthz` reads made after the load (every 10 ms).
    pub polls: u64,
    /// Events counted the same way after the drain. More than were accepted: events
    /// from elsewhere (another publisher on `callevt`, or records of the daemon's own
    /// the count does not know of), so `events` may have been reached early.
    pub events_at_end: Option<u64>,
}

/// The RabbitMQ side of `--via amqp`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct AmqpRun {
    /// `host:port (vhost V)`, without the credentials.
    pub broker: String,
    pub queue: String,
    pub dead_letter: String,
    /// `--amqp-prefetch` passed to the daemon (`None`: its default).
    pub prefetch: Option<u16>,
    /// Messages were published persistent (`--amqp-persistent`), else transient as
    /// Kazoo publishes call events.
    pub persistent: bool,
    /// Messages in the queue when it was deleted, after the daemon stopped (not
    /// consumed, or unacked when it was killed); `None` if it could not be deleted.
    pub left_in_queue: Option<u32>,
    /// Messages the daemon dead-lettered (malformed); `None` if the queue could not be
    /// deleted.
    pub dead_lettered: Option<u32>,
}

/// Errors seen.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Errors {
    /// `POST /v2/events` failures (batches), or AMQP publish failures (messages).
    pub api: ApiErrors,
    /// Receiver requests that named no known event and hook.
    pub receiver_unidentified: u64,
}

/// The daemon's memory at the end of the drain.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct DaemonMemory {
    pub pid: u32,
    pub rss_kib: u64,
    pub peak_rss_kib: Option<u64>,
    /// User + system CPU the daemon used since it started.
    pub cpu_seconds: Option<f64>,
    /// The RSS sampled from the start of the load to the end (the series is
    /// `memory_series`).
    pub sampled: Option<RssSummary>,
}

/// The bare-reqwest ceiling.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Baseline {
    /// Requests the loop ran at once: `daemon_concurrency`.
    pub concurrency: usize,
    /// The most delivery tries the daemon may run at once in this run: healthy hooks ×
    /// its `--max-in-flight-per-hook`, at most its `--max-in-flight`.
    pub daemon_concurrency: usize,
    pub daemon_max_in_flight: u32,
    pub daemon_max_in_flight_per_hook: u32,
    pub healthy_hooks: u64,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    /// Piston's deliveries/s divided by the baseline's requests/s.
    pub ratio: f64,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub settings: Settings,
    pub events: Events,
    /// Expected pairs received, over the time from the first send to the last first
    /// receipt.
    pub deliveries: Throughput,
    /// From the moment the POST carrying the event was sent to the first 2xx receipt.
    pub latency_ms: Latency,
    pub latency_measured_from: &'static str,
    /// From the moment the 202 of the event's batch came back to the first 2xx receipt
    /// (0 for deliveries that arrived before the 202).
    pub latency_from_accept_ms: Latency,
    /// Pairs delivered before the 202 of their batch came back.
    pub delivered_before_accept: u64,
    /// Round trip of the accepted `POST /v2/events` (durable ingest, as the client sees
    /// it), per batch; with AMQP, from the publish of a batch to its last confirm.
    pub ingest_ms: Latency,
    /// Events the daemon appended, and how fast (`None` with `--target`).
    pub appended: Option<Appended>,
    /// The broker and queues (`--via amqp` only).
    pub amqp: Option<AmqpRun>,
    pub reconciliation: Reconciliation,
    /// Up to ten misdirected deliveries, named: `event N (account A) -> hook ID
    /// (account B)`.
    pub misdirected: Vec<String>,
    /// Every expected pair arrived once, before the drain timeout.
    pub complete: bool,
    /// Nothing failed: `failures` is empty.
    pub passed: bool,
    /// Why the run failed ([`super::reconcile::failures`]): refused or timed-out
    /// ingest, missing, duplicate or misdirected deliveries, unknown requests, timeouts.
    pub failures: Vec<String>,
    pub drain_timed_out: bool,
    /// The receiver watched after the last expected delivery (`None`: the drain timed
    /// out, or no hook could reach the receiver).
    pub quiet_window: Option<QuietWindow>,
    pub errors: Errors,
    pub daemon: Option<DaemonMemory>,
    /// User + system CPU this load-test process (receiver, senders) used until the end
    /// of the drain: it shares the machine with the daemon.
    pub loadtest_cpu_seconds: Option<f64>,
    pub baseline: Option<Baseline>,
    pub per_second: Vec<Second>,
    /// `--dead-backlog`: the daemon's RSS as the dead hook's backlog grew.
    pub dead_backlog: Option<DeadBacklog>,
    /// The daemon's RSS, pending deliveries and events appended every 500 ms from the
    /// start of the load, and at the end (own daemon only).
    pub memory_series: Vec<MemorySample>,
}

mod text;

#[cfg(test)]
mod tests;
