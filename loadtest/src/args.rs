//! The load tool's options ([`LoadtestArgs`]) and their checks: every address it may
//! contact is on loopback, every count and duration is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::amqp;
use crate::LoadtestError;

/// How the load reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /v2/events`.
    Http,
    /// Kazoo call events published to RabbitMQ (`callevt`), consumed by the daemon.
    Amqp,
}

impl Via {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Via::Http => "http",
            Via::Amqp => "amqp",
        }
    }
}

/// Options of `piston-webhooks loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Drive the daemon running at this URL (loopback only) instead of starting one.
    /// Needs `--master-api-key` and `--receiver-listen`; the daemon must allow private
    /// targets and reach the receiver's address.
    #[arg(long, requires_all = ["master_api_key", "receiver_listen"])]
    pub target: Option<url::Url>,

    /// The master API key of `--target` (or of the daemon started here; random when not
    /// given).
    #[arg(long, hide_env_values = true)]
    pub master_api_key: Option<String>,

    /// The receiver's address (loopback only; default 127.0.0.1 on a free port).
    #[arg(long)]
    pub receiver_listen: Option<SocketAddr>,

    /// Child accounts to create.
    #[arg(long, default_value_t = 10)]
    pub accounts: u32,

    /// Webhooks per account; each one matches every event of its account. 0 measures
    /// ingest alone.
    #[arg(long, default_value_t = 10)]
    pub hooks_per_account: u32,

    /// How the events reach the daemon: `http` (`POST /v2/events`) or `amqp` (published
    /// to RabbitMQ's `callevt` as Kazoo does; the daemon started here consumes them).
    #[arg(long, value_enum, default_value_t = Via::Http)]
    pub via: Via,

    /// The broker of `--via amqp` (loopback only).
    #[arg(long, default_value = amqp::DEFAULT_URL)]
    pub amqp_url: String,

    /// Publish persistent messages (`delivery_mode` 2: the broker confirms once it wrote
    /// them to disk) instead of transient ones, as Kazoo publishes call events.
    #[arg(long)]
    pub amqp_persistent: bool,

    /// `--amqp-prefetch` of the daemon started for `--via amqp` (default: its own).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub amqp_prefetch: Option<u16>,

    /// Events to send.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,

    /// Events per `POST /v2/events` (with AMQP: messages published before their
    /// confirms are awaited). 1 is single-event ingest: each POST carries one event as
    /// `{"data": EVENT}`, as a producer of single messages sends it (see --connections).
    #[arg(long, default_value_t = 100)]
    pub batch: u64,

    /// Events per second (token bucket); 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// Concurrent `POST /v2/events` requests, sharing a pool of connections (with AMQP:
    /// publishing channels).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,

    /// Send over this many HTTP connections at once instead of --concurrency: each
    /// sender owns one keep-alive connection and posts one request at a time on it.
    /// With `--batch 1`, e.g. `--batch 1 --connections 32` measures single-event ingest
    /// (events/s) from 32 connections. HTTP only.
    #[arg(long, conflicts_with = "concurrency")]
    pub connections: Option<usize>,

    /// Stop sending after this many seconds, even if events are left.
    #[arg(long)]
    pub duration: Option<f64>,

    /// After the load, wait at most this many seconds for the deliveries.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout: f64,

    /// Once every expected delivery arrived, watch the receiver until it got no request
    /// for this long (each request restarts the window; at most 10 windows), so late
    /// duplicates and misdirected deliveries are counted. 0: no watch.
    #[arg(long, default_value_t = 2000)]
    pub quiet_window_ms: u64,

    /// Whole-request timeout of one `POST /v2/events`, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,

    /// The receiver waits this long before answering each request.
    #[arg(long, default_value_t = 0)]
    pub receiver_delay_ms: u64,

    /// Share of deliveries the receiver answers 500 (at most `retries` times per event
    /// and hook, so the daemon's retries recover every one), e.g. 0.1.
    #[arg(long, default_value_t = 0.0)]
    pub receiver_error_rate: f64,

    /// Hooks (among accounts × hooks-per-account) that point at a closed port.
    #[arg(long, default_value_t = 0)]
    pub dead_hooks: u32,

    /// Memory under a dead receiver's backlog: one account with one hook pointing at a
    /// closed port, N events posted to it (so it is owed N deliveries), the daemon's RSS
    /// and pending deliveries sampled as the backlog grows. Sets --accounts 1
    /// --hooks-per-account 1 --dead-hooks 1 --events N; the hook is never auto-disabled
    /// (--failure-threshold, default 1,000,000). Not with --target: the daemon's memory
    /// is read from its process.
    #[arg(long, conflicts_with_all = ["events", "accounts", "hooks_per_account", "dead_hooks", "target"])]
    pub dead_backlog: Option<u64>,

    /// Delivery tries per hook at once: passed to the daemon started here (with
    /// `--target`, say what it runs with), and sets the baseline's concurrency.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight_per_hook: u32,

    /// Delivery tries at once across all hooks: passed to the daemon started here (with
    /// `--target`, say what it runs with). The baseline runs as many requests at once as
    /// the daemon may run tries: healthy hooks × --max-in-flight-per-hook, at most this.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: u32,

    /// `--retry-base-ms` of the daemon started here.
    #[arg(long, default_value_t = 100)]
    pub retry_base_ms: u64,

    /// `--failure-threshold` of the daemon started here (high, so that injected errors
    /// and dead hooks do not auto-disable hooks mid-run).
    #[arg(long, default_value_t = 1_000_000)]
    pub failure_threshold: u32,

    /// Also measure the loopback HTTP ceiling with a bare reqwest loop.
    #[arg(long)]
    pub baseline: bool,

    /// Keep the data dir (and log) of the daemon started here, to audit its event log
    /// afterwards with `piston-webhooks log`; its path is printed on standard error.
    #[arg(long)]
    pub keep_data_dir: bool,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Write a chart to this SVG file: throughput and p99 latency per second, and for
    /// the daemon started here its RSS and pending deliveries every 500 ms.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl LoadtestArgs {
    /// The options with the presets of `--dead-backlog` applied.
    pub(crate) fn resolved(mut self) -> LoadtestArgs {
        if let Some(events) = self.dead_backlog {
            self.accounts = 1;
            self.hooks_per_account = 1;
            self.dead_hooks = 1;
            self.events = events;
        }
        self
    }

    /// How many tasks send at once: `--connections`, else `--concurrency`.
    pub(crate) fn senders(&self) -> usize {
        self.connections.unwrap_or(self.concurrency)
    }

    pub(crate) fn validate(&self) -> Result<(), LoadtestError> {
        let bad = |m: &str| Err(LoadtestError::Invalid(m.to_owned()));
        if let Some(target) = &self.target {
            if !matches!(target.scheme(), "http" | "https") || !is_loopback_host(target) {
                return bad("--target must be an http URL on a loopback address");
            }
        }
        if self.receiver_listen.is_some_and(|a| !a.ip().is_loopback()) {
            return bad("--receiver-listen must be a loopback address");
        }
        if self.dead_backlog.is_some() && self.target.is_some() {
            return bad("--dead-backlog reads the memory of the daemon started here: no --target");
        }
        if self.dead_backlog.is_some_and(|n| n == 0 || n > 50_000_000) {
            return bad("--dead-backlog must be 1 to 50,000,000");
        }
        if self.accounts == 0 {
            return bad("--accounts must be at least 1");
        }
        if self.via == Via::Amqp {
            if self.target.is_some() {
                return bad("--via amqp starts its own daemon: it does not take --target");
            }
            if !amqp::is_loopback_broker(&self.amqp_url) {
                return bad("--amqp-url must be an AMQP URI of a loopback broker");
            }
        }
        if u64::from(self.accounts) * u64::from(self.hooks_per_account) > 1_000_000 {
            return bad("at most 1,000,000 webhooks");
        }
        if self.events == 0 || self.events > 50_000_000 {
            return bad("--events must be 1 to 50,000,000");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return bad("--batch must be 1 to 10,000");
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return bad("--rate must be 0 (unlimited) or a positive number");
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return bad("--concurrency must be 1 to 256");
        }
        if let Some(connections) = self.connections {
            if connections == 0 || connections > 1024 {
                return bad("--connections must be 1 to 1024");
            }
            if self.via != Via::Http {
                return bad("--connections is for --via http (AMQP takes --concurrency channels)");
            }
        }
        let seconds = |v: f64| v.is_finite() && v > 0.0 && v <= 86_400.0;
        if self.duration.is_some_and(|d| !seconds(d)) {
            return bad("--duration must be more than 0 and at most 86400 seconds");
        }
        if !seconds(self.drain_timeout) || !seconds(self.request_timeout) {
            return bad("--drain-timeout and --request-timeout must be more than 0 and at most 86400 seconds");
        }
        if self.quiet_window_ms > 600_000 {
            return bad("--quiet-window-ms must be at most 600000");
        }
        if !(0.0..1.0).contains(&self.receiver_error_rate) {
            return bad("--receiver-error-rate must be at least 0 and below 1");
        }
        if u64::from(self.dead_hooks) > u64::from(self.accounts) * u64::from(self.hooks_per_account)
        {
            return bad("--dead-hooks cannot exceed accounts x hooks-per-account");
        }
        if self.max_in_flight_per_hook == 0 {
            return bad("--max-in-flight-per-hook must be at least 1");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 4096 {
            return bad("--max-in-flight must be 1 to 4096");
        }
        if self.receiver_delay_ms > 60_000 {
            return bad("--receiver-delay-ms must be at most 60000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
