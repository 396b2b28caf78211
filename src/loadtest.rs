//! `piston-webhooks loadtest`: measures the daemon end to end on this machine.
//!
//! 1. A receiver ([`receiver`]) on loopback timestamps and counts every delivery.
//! 2. A daemon: by default this binary started as `serve` on a temp data dir
//!    ([`daemon`]); with `--target` a running one.
//! 3. Setup ([`setup`]): child accounts × webhooks through the REST API, and the plan of
//!    which hook must receive which event.
//! 4. Load ([`load`]): events in batches to `POST /v2/events`, paced ([`ratelimit`]);
//!    with `--via amqp`, published to RabbitMQ as Kazoo publishes call events
//!    ([`amqp`]), for the daemon's AMQP consumer.
//! 5. Appended ([`ingest`]): wait until the daemon's `/healthz` shows every accepted
//!    event in its log. Drain: wait until every expected `(event, hook)` pair arrived,
//!    or the drain timeout.
//! 6. Optionally the baseline ([`baseline`]): the same receiver hit by a bare reqwest
//!    loop, the loopback HTTP ceiling.
//! 7. The report ([`report`]) on standard output, as text or JSON, and a chart
//!    ([`plot`]).
//!
//! Only loopback addresses are ever contacted (the broker too), and every loop is bounded in count and
//! time. A run that completes exits 0, even with missing deliveries (the report shows
//! them); a setup failure is an error.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod amqp;
mod api;
mod baseline;
mod daemon;
mod ingest;
mod load;
mod plot;
mod ratelimit;
mod receiver;
mod report;
mod setup;

use report::{Latency, Report, SeriesBuilder, Throughput};

/// How the load reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /v2/events`.
    Http,
    /// Kazoo call events published to RabbitMQ (`callevt`), consumed by the daemon.
    Amqp,
}

impl Via {
    fn name(self) -> &'static str {
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
    /// confirms are awaited).
    #[arg(long, default_value_t = 100)]
    pub batch: u64,

    /// Events per second (token bucket); 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// Concurrent `POST /v2/events` requests (with AMQP: publishing channels).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,

    /// Stop sending after this many seconds, even if events are left.
    #[arg(long)]
    pub duration: Option<f64>,

    /// After the load, wait at most this many seconds for the deliveries.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout: f64,

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

    /// Delivery tries per hook at once: passed to the daemon started here, and sets the
    /// baseline's concurrency.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight_per_hook: u32,

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

    /// Write a throughput and latency chart to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the daemon did not start: {0}")]
    Daemon(String),
    #[error("{what}: HTTP {status}: {body}")]
    Api {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("RabbitMQ: {0}")]
    Amqp(String),
    #[error("writing the chart {path}: {message}")]
    Plot { path: String, message: String },
}

/// Microseconds since the run started: the one clock of every timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
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
    fn validate(&self) -> Result<(), LoadtestError> {
        let bad = |m: &str| Err(LoadtestError::Invalid(m.to_owned()));
        if let Some(target) = &self.target {
            if !matches!(target.scheme(), "http" | "https") || !is_loopback_host(target) {
                return bad("--target must be an http URL on a loopback address");
            }
        }
        if self.receiver_listen.is_some_and(|a| !a.ip().is_loopback()) {
            return bad("--receiver-listen must be a loopback address");
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
        let seconds = |v: f64| v.is_finite() && v > 0.0 && v <= 86_400.0;
        if self.duration.is_some_and(|d| !seconds(d)) {
            return bad("--duration must be more than 0 and at most 86400 seconds");
        }
        if !seconds(self.drain_timeout) || !seconds(self.request_timeout) {
            return bad("--drain-timeout and --request-timeout must be more than 0 and at most 86400 seconds");
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
        if self.receiver_delay_ms > 60_000 {
            return bad("--receiver-delay-ms must be at most 60000");
        }
        Ok(())
    }
}

/// A loopback port nothing listens on: bind one, note it, let it go.
fn closed_port() -> Result<u16, LoadtestError> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| {
        LoadtestError::Io {
            context: "finding a closed port for the dead hooks".into(),
            source,
        }
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| LoadtestError::Io {
            context: "finding a closed port for the dead hooks".into(),
            source,
        })?
        .port();
    drop(listener);
    Ok(port)
}

/// The broker side of a `--via amqp` run.
struct AmqpRun {
    publisher: Arc<amqp::Publisher>,
    queue: String,
    dead_letter: String,
}

impl AmqpRun {
    /// Deletes the run's queues and closes the connection; returns the messages left in
    /// the queue and in the dead-letter queue (`None`: not deleted).
    async fn clean_up(&self) -> (Option<u32>, Option<u32>) {
        let deleted = self
            .publisher
            .delete_queues(&[&self.queue, &self.dead_letter])
            .await;
        self.publisher.close().await;
        (
            deleted.first().and_then(|(_, n)| *n),
            deleted.get(1).and_then(|(_, n)| *n),
        )
    }
}

/// Runs the load test and prints its report on standard output.
pub async fn run(args: LoadtestArgs) -> Result<(), LoadtestError> {
    args.validate()?;
    let clock = Clock::new();

    let state = Arc::new(receiver::ReceiverState::new(
        clock,
        receiver::Behaviour {
            delay: Duration::from_millis(args.receiver_delay_ms),
            error_rate: args.receiver_error_rate,
            max_injected_per_pair: setup::HOOK_RETRIES,
        },
    ));
    let listen = args
        .receiver_listen
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    let receiver = receiver::start(listen, Arc::clone(&state))
        .await
        .map_err(|source| LoadtestError::Io {
            context: format!("starting the receiver on {listen}"),
            source,
        })?;
    tracing::debug!(addr = %receiver.addr, "receiver listening");

    // The run's tag: in event ids, account names and AMQP queue names.
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let amqp_run = match args.via {
        Via::Http => None,
        Via::Amqp => {
            let publisher = amqp::Publisher::connect(
                &args.amqp_url,
                args.concurrency.max(1),
                args.amqp_persistent,
            )
            .await?;
            let (queue, dead_letter) = amqp::queue_names(&tag);
            if let Err(e) = publisher.declare_queues(&queue, &dead_letter).await {
                let _ = publisher.delete_queues(&[&queue, &dead_letter]).await;
                publisher.close().await;
                return Err(e);
            }
            Some(AmqpRun {
                publisher: Arc::new(publisher),
                queue,
                dead_letter,
            })
        }
    };
    let (own, base, key) = match (&args.target, &args.master_api_key) {
        (Some(target), Some(key)) => (None, target.as_str().to_owned(), key.clone()),
        (Some(_), None) => {
            return Err(LoadtestError::Invalid(
                "--target needs --master-api-key".into(),
            ))
        }
        (None, given) => {
            let key = given
                .clone()
                .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
            let own = daemon::OwnDaemon::start(&daemon::DaemonOptions {
                master_api_key: key.clone(),
                max_in_flight_per_hook: args.max_in_flight_per_hook,
                retry_base_ms: args.retry_base_ms,
                failure_threshold: args.failure_threshold,
                amqp: amqp_run.as_ref().map(|run| daemon::AmqpFlags {
                    url: args.amqp_url.clone(),
                    queue: run.queue.clone(),
                    dead_letter: run.dead_letter.clone(),
                    prefetch: args.amqp_prefetch,
                }),
            })
            .await;
            let own = match own {
                Ok(own) => own,
                Err(e) => {
                    if let Some(run) = &amqp_run {
                        run.clean_up().await;
                    }
                    return Err(e);
                }
            };
            let base = own.base.clone();
            (Some(own), base, key)
        }
    };
    let outcome = drive(
        &args,
        &tag,
        clock,
        &state,
        receiver.addr,
        &base,
        &key,
        own.as_ref(),
        amqp_run.as_ref(),
    )
    .await;
    if let Some(own) = own {
        if outcome.is_err() {
            // The temp dir goes with the daemon: show the end of its log now.
            let log = std::fs::read_to_string(own.log_path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            if !tail.is_empty() {
                eprintln!("piston-webhooks loadtest: the daemon's log ends with:\n{tail}");
            }
        }
        if let Some(dir) = own.stop(args.keep_data_dir).await {
            eprintln!(
                "piston-webhooks loadtest: the daemon's data dir is kept in {}; audit it with \
                 `piston-webhooks log replay --data-dir {}`",
                dir.display(),
                dir.join("data").display()
            );
        }
    }
    drop(receiver);
    // The daemon is gone (it would declare them again): delete the run's queues.
    let amqp_report = match &amqp_run {
        Some(run) => {
            let (left_in_queue, dead_lettered) = run.clean_up().await;
            Some(report::AmqpRun {
                broker: amqp::broker_label(&args.amqp_url),
                queue: run.queue.clone(),
                dead_letter: run.dead_letter.clone(),
                prefetch: args.amqp_prefetch,
                persistent: args.amqp_persistent,
                left_in_queue,
                dead_lettered,
            })
        }
        None => None,
    };
    let mut report = outcome?;
    report.amqp = amqp_report;
    if let Some(path) = &args.plot {
        let title = format!(
            "piston-webhooks loadtest: {} events x {} hooks",
            report.events.accepted, report.settings.hooks
        );
        plot::write(path, &report.per_second, &title)?;
    }
    let text = if args.json {
        serde_json::to_string(&report).map_err(|e| LoadtestError::Setup(e.to_string()))? + "\n"
    } else {
        report.to_text()
    };
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| LoadtestError::Io {
            context: "writing the report".into(),
            source,
        })
}

/// Setup, load, drain, memory, baseline: everything between the daemon's start and stop.
#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &LoadtestArgs,
    tag: &str,
    clock: Clock,
    state: &Arc<receiver::ReceiverState>,
    receiver_addr: SocketAddr,
    base: &str,
    key: &str,
    own: Option<&daemon::OwnDaemon>,
    amqp_run: Option<&AmqpRun>,
) -> Result<Report, LoadtestError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency.max(8))
        .tcp_nodelay(true)
        .build()
        .map_err(|source| LoadtestError::Http {
            what: "building the API client".into(),
            source,
        })?;
    let (api, master) = api::Api::login(http, base, key).await?;
    let api = Arc::new(api);
    if let Some(run) = amqp_run {
        // The daemon declares and binds its queue once it serves: publish only then.
        run.publisher.wait_for_consumer(&run.queue).await?;
    }

    // Setup.
    let setup_started = Instant::now();
    let opts = setup::SetupOptions {
        accounts: args.accounts,
        hooks_per_account: args.hooks_per_account,
        dead_hooks: args.dead_hooks,
        receiver: receiver_addr,
        dead_port: closed_port()?,
    };
    let plan = Arc::new(setup::create(&api, &master, &opts, tag).await?);
    let mut identity = plan.identity(args.events);
    if amqp_run.is_some() {
        identity.derived_ids = Some(amqp::derived_ids(&plan, args.events)?);
    }
    state.set_identity(identity);
    // The log as setup left it, to count the events appended (own daemon only: a
    // running one may log other things meanwhile).
    let log_mark = match own {
        Some(_) => Some(ingest::settled_mark(&api).await?),
        None => None,
    };
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    tracing::debug!(
        accounts = plan.accounts.len(),
        hooks = plan.hooks.len(),
        seconds = setup_seconds,
        "setup done"
    );

    // Load, with a progress bar.
    let load_state = Arc::new(load::LoadState::new(args.events));
    let per_event: u64 = (0..u64::from(args.accounts).min(args.events))
        .map(|a| plan.expected_hooks(a).len() as u64)
        .sum::<u64>()
        / u64::from(args.accounts).min(args.events).max(1);
    let progress = Progress::start(
        args.events.saturating_mul(per_event.max(1)),
        Arc::clone(&load_state),
        Arc::clone(state),
    );
    let config = load::LoadConfig {
        events: args.events,
        batch: args.batch,
        rate: (args.rate > 0.0).then_some(args.rate),
        concurrency: args.concurrency,
        duration: args.duration.map(Duration::from_secs_f64),
        request_timeout: Duration::from_secs_f64(args.request_timeout),
    };
    let sink = match amqp_run {
        Some(run) => load::Sink::Amqp(Arc::clone(&run.publisher)),
        None => load::Sink::Http(Arc::clone(&api)),
    };
    let outcome = load::run(
        sink,
        Arc::clone(&plan),
        config,
        Arc::clone(&load_state),
        clock,
    )
    .await;

    // Drain: until every expected pair arrived (then a short settle, to catch late
    // duplicates), or the drain timeout.
    let expected: u64 = load_state
        .accepted_events()
        .map(|e| plan.expected_hooks(e).len() as u64)
        .sum();
    progress.set_length(expected);
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    // Appended: until `/healthz` shows every accepted event in the log.
    let mut appended = match log_mark {
        Some(start) => {
            let seen =
                ingest::wait_appended(&api, clock, start, outcome.accepted, drain_deadline).await;
            let window = seen.at_us.saturating_sub(outcome.start_us);
            let rate = Throughput::new(seen.events, window);
            Some(report::Appended {
                events: seen.events,
                seconds: rate.seconds,
                per_second: rate.per_second,
                after_last_accept_ms: (seen.at_us.saturating_sub(outcome.end_us) as f64 / 1000.0
                    * 10.0)
                    .round()
                    / 10.0,
                exact: true,
                timed_out: seen.timed_out,
                polls: seen.polls,
                events_at_end: None,
            })
        }
        None => None,
    };
    let mut drain_timed_out = false;
    loop {
        if state.unique_ok.load(Ordering::Relaxed) >= expected {
            let settle = Duration::from_millis(500)
                .min(drain_deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(settle).await;
            break;
        }
        if Instant::now() >= drain_deadline {
            drain_timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.finish();
    // Counted again once the deliveries are done: more than were accepted means
    // events from elsewhere (another publisher on `callevt`) or records the count does
    // not know of.
    if let (Some(a), Some(start)) = (appended.as_mut(), log_mark) {
        if let Ok(end) = api.health().await {
            a.events_at_end = Some(ingest::appended_between(start, end));
        }
    }
    let daemon_memory = own.and_then(daemon::OwnDaemon::memory);
    let loadtest_cpu_seconds = daemon::cpu_seconds("self");

    // Reconcile.
    let records = state.take_records();
    let mut latency = report::new_histogram(3)?;
    let mut from_accept = report::new_histogram(3)?;
    let mut delivered_before_accept = 0u64;
    let mut ingest = report::new_histogram(3)?;
    let mut series = SeriesBuilder::new(outcome.start_us)?;
    for batch in &outcome.accepts {
        series.accepted(batch.accepted_us, batch.events);
        ingest.saturating_record(batch.accepted_us.saturating_sub(batch.sent_us).max(1));
    }
    let mut last_receipt_us = outcome.start_us;
    let expected_pairs = load_state.accepted_events().flat_map(|event| {
        let event32 = u32::try_from(event).unwrap_or(u32::MAX);
        plan.expected_hooks(event)
            .iter()
            .map(move |&hook| receiver::pair_key(event32, hook))
    });
    let reconciliation = report::reconcile(expected_pairs, &records, |key, record| {
        let event = u64::from(receiver::event_of(key));
        let latency_us = record
            .first_ok_us
            .saturating_sub(load_state.sent_us(event))
            .max(1);
        latency.saturating_record(latency_us);
        let accepted_us = load_state.accepted_us(event);
        if record.first_ok_us < accepted_us {
            delivered_before_accept += 1;
        }
        from_accept.saturating_record(record.first_ok_us.saturating_sub(accepted_us).max(1));
        series.delivered(record.first_ok_us, latency_us);
        last_receipt_us = last_receipt_us.max(record.first_ok_us);
    });
    drop(records);

    // Baseline.
    let deliveries = Throughput::new(
        reconciliation.received_pairs,
        last_receipt_us.saturating_sub(outcome.start_us),
    );
    let baseline = if args.baseline {
        let concurrency = baseline::concurrency(plan.healthy_hooks(), args.max_in_flight_per_hook);
        let mut sample = String::new();
        load::write_event(&mut sample, &plan, 0);
        let requests = reconciliation.received_pairs.max(1_000);
        let run = baseline::run(
            format!("http://{receiver_addr}/baseline"),
            Bytes::from(sample),
            concurrency,
            requests,
            Duration::from_secs_f64(args.drain_timeout),
        )
        .await?;
        let per_second = Throughput::new(
            run.ok,
            u64::try_from(run.elapsed.as_micros()).unwrap_or(u64::MAX),
        )
        .per_second;
        Some(report::Baseline {
            concurrency: run.concurrency,
            requests: run.requests,
            ok: run.ok,
            errors: run.errors,
            seconds: (run.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            per_second,
            ratio: if per_second > 0.0 {
                (deliveries.per_second / per_second * 1000.0).round() / 1000.0
            } else {
                0.0
            },
        })
    } else {
        None
    };

    // Against a running daemon, leave it as it was: delete what setup created.
    if own.is_none() {
        for account in &plan.accounts {
            if let Err(e) = api.delete_account(account).await {
                tracing::warn!(error = %e, "cannot delete a load-test account");
            }
        }
    }

    let accepted_window = outcome.end_us.saturating_sub(outcome.start_us);
    let complete = reconciliation.complete()
        && !drain_timed_out
        && !appended.as_ref().is_some_and(|a| a.timed_out);
    Ok(Report {
        settings: report::Settings {
            target: match &args.target {
                Some(url) => url.to_string(),
                None => "own daemon".to_owned(),
            },
            via: args.via.name(),
            accounts: args.accounts,
            hooks_per_account: args.hooks_per_account,
            hooks: plan.hooks.len() as u64,
            dead_hooks: args.dead_hooks,
            events: args.events,
            batch: args.batch,
            rate: args.rate,
            concurrency: args.concurrency,
            duration_s: args.duration,
            receiver_delay_ms: args.receiver_delay_ms,
            receiver_error_rate: args.receiver_error_rate,
            max_in_flight_per_hook: args.max_in_flight_per_hook,
            setup_seconds: (setup_seconds * 1000.0).round() / 1000.0,
        },
        events: report::Events {
            sent: outcome.sent,
            accepted: outcome.accepted,
            accepted_per_second: Throughput::new(outcome.accepted, accepted_window).per_second,
            load_seconds: Throughput::new(outcome.accepted, accepted_window).seconds,
            stopped_by_duration: outcome.stopped_by_duration,
        },
        deliveries,
        latency_ms: Latency::from_histogram(&latency),
        latency_measured_from: match args.via {
            Via::Http => "send of the POST /v2/events carrying the event",
            Via::Amqp => "publish of the AMQP batch carrying the event",
        },
        latency_from_accept_ms: Latency::from_histogram(&from_accept),
        delivered_before_accept,
        ingest_ms: Latency::from_histogram(&ingest),
        appended,
        amqp: None,
        reconciliation,
        complete,
        drain_timed_out,
        errors: report::Errors {
            api: outcome.errors,
            receiver_unidentified: state.unidentified.load(Ordering::Relaxed),
        },
        daemon: daemon_memory,
        loadtest_cpu_seconds,
        baseline,
        per_second: series.build(),
    })
}

/// The live progress bar on standard error (hidden when it is not a terminal).
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
    receiver: Arc<receiver::ReceiverState>,
}

impl Progress {
    fn start(
        expected_pairs: u64,
        load: Arc<load::LoadState>,
        receiver: Arc<receiver::ReceiverState>,
    ) -> Progress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(expected_pairs), target);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} deliveries | {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let shown = bar.clone();
        let counted = Arc::clone(&receiver);
        let ticker = tokio::spawn(async move {
            // Runs until aborted by `finish`; rates over the last second.
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            let mut history: std::collections::VecDeque<(Instant, u64, u64)> =
                std::collections::VecDeque::with_capacity(8);
            loop {
                interval.tick().await;
                let now = Instant::now();
                let accepted = load.accepted.load(Ordering::Relaxed);
                let delivered = counted.unique_ok.load(Ordering::Relaxed);
                history.push_back((now, accepted, delivered));
                while history.len() > 5 {
                    history.pop_front();
                }
                let (events_rate, deliveries_rate) = match history.front() {
                    Some(&(t, a, d)) if now > t => {
                        let secs = now.duration_since(t).as_secs_f64();
                        (
                            accepted.saturating_sub(a) as f64 / secs,
                            delivered.saturating_sub(d) as f64 / secs,
                        )
                    }
                    _ => (0.0, 0.0),
                };
                shown.set_position(delivered);
                shown.set_message(format!(
                    "events {accepted} ({events_rate:.0}/s) | deliveries/s {deliveries_rate:.0}"
                ));
            }
        });
        Progress {
            bar,
            ticker,
            receiver,
        }
    }

    fn set_length(&self, expected_pairs: u64) {
        self.bar.set_length(expected_pairs);
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar
            .set_position(self.receiver.unique_ok.load(Ordering::Relaxed));
        self.bar.finish();
    }
}
