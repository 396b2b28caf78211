//! One run against a started daemon, in phases, each returning its part of the report:
//!
//! 1. [`set_up`]: log in, wait for the daemon's AMQP consumer (`--via amqp`), create
//!    the accounts and webhooks, tell the receiver which event and hook each delivery
//!    is, and mark the daemon's log; returns [`SetUp`] (the plan, and the setup time of
//!    the report's settings).
//! 2. [`send_events`]: send the events, with a progress bar; returns [`Loaded`] (what was sent
//!    and accepted: the report's events and API errors).
//! 3. [`drain`]: wait until the daemon appended every accepted event and every expected
//!    delivery arrived, or the drain timeout; then read the daemon's memory and the CPU
//!    used; returns [`Drained`].
//! 4. [`reconcile_deliveries`]: match the expected `(event, hook)` pairs against the
//!    receipts ([`crate::reconcile`], which also tells the pairs of timed-out batches
//!    from misdirected ones), with the latency histograms and the per-second series;
//!    returns [`Reconciled`].
//! 5. [`measure_baseline`]: with `--baseline`, the bare reqwest ceiling on the same
//!    receiver.
//!
//! [`drive`] runs them in this order, deletes what setup created on a running daemon,
//! and assembles the [`Report`] with its verdict ([`reconcile::failures`]). Starting and stopping the receiver, the broker's queues
//! and the daemon is [`crate::run`]'s business, not this module's.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::api::Api;
use crate::daemon::OwnDaemon;
use crate::ingest::LogMark;
use crate::load::{LoadOutcome, LoadState};
use crate::progress::Progress;
use crate::receiver::ReceiverState;
use crate::reconcile::{self, Reconciliation, Unexpected};
use crate::report::{self, DaemonMemory, Latency, Report, Second, SeriesBuilder, Throughput};
use crate::setup::Plan;
use crate::{
    amqp, baseline, daemon, ingest, load, receiver, setup, AmqpRun, Clock, LoadtestArgs,
    LoadtestError, Via,
};

/// What every phase of one run works with.
pub(crate) struct RunContext<'a> {
    pub args: &'a LoadtestArgs,
    /// The run's tag: in event ids, account names and AMQP queue names.
    pub tag: &'a str,
    pub clock: Clock,
    pub receiver: &'a Arc<ReceiverState>,
    pub receiver_addr: SocketAddr,
    /// The daemon's API base URL and master API key.
    pub base: &'a str,
    pub key: &'a str,
    /// The daemon started here (`None` with `--target`).
    pub own: Option<&'a OwnDaemon>,
    /// The broker side of `--via amqp`.
    pub amqp: Option<&'a AmqpRun>,
}

/// Setup, load, drain, reconcile, baseline: everything between the daemon's start and
/// stop.
pub(crate) async fn drive(run: &RunContext<'_>) -> Result<Report, LoadtestError> {
    let setup = set_up(run).await?;
    let (loaded, progress) = send_events(run, &setup).await;
    let drained = drain(run, &setup, &loaded, progress).await;
    let reconciled = reconcile_deliveries(run, &setup.plan, &loaded)?;
    let baseline = measure_baseline(run, &setup.plan, &reconciled).await?;
    // Against a running daemon, leave it as it was: delete what setup created.
    if run.own.is_none() {
        for account in &setup.plan.accounts {
            if let Err(e) = setup.api.delete_account(account).await {
                tracing::warn!(error = %e, "cannot delete a load-test account");
            }
        }
    }
    Ok(assemble(run, &setup, loaded, drained, reconciled, baseline))
}

/// What setup leaves for the later phases.
struct SetUp {
    api: Arc<Api>,
    plan: Arc<Plan>,
    /// The daemon's log as setup left it, to count the events appended (own daemon
    /// only: a running one may log other things meanwhile).
    log_mark: Option<LogMark>,
    /// How long setup took (the report's settings).
    seconds: f64,
}

/// Phase 1: the accounts and webhooks of the plan, and the receiver told of them.
async fn set_up(run: &RunContext<'_>) -> Result<SetUp, LoadtestError> {
    let args = run.args;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency.max(8))
        .tcp_nodelay(true)
        .build()
        .map_err(|source| LoadtestError::Http {
            what: "building the API client".into(),
            source,
        })?;
    let (api, master) = Api::login(http, run.base, run.key).await?;
    let api = Arc::new(api);
    if let Some(amqp_run) = run.amqp {
        // The daemon declares and binds its queue once it serves: publish only then.
        amqp_run
            .publisher
            .wait_for_consumer(&amqp_run.queue)
            .await?;
    }

    let started = Instant::now();
    let opts = setup::SetupOptions {
        accounts: args.accounts,
        hooks_per_account: args.hooks_per_account,
        dead_hooks: args.dead_hooks,
        receiver: run.receiver_addr,
        dead_port: closed_port()?,
    };
    let plan = Arc::new(setup::create(&api, &master, &opts, run.tag).await?);
    let mut identity = plan.identity(args.events);
    if run.amqp.is_some() {
        identity.derived_ids = Some(amqp::derived_ids(&plan, args.events)?);
    }
    run.receiver.set_identity(identity);
    let log_mark = match run.own {
        Some(_) => Some(ingest::settled_mark(&api).await?),
        None => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(
        accounts = plan.accounts.len(),
        hooks = plan.hooks.len(),
        seconds,
        "setup done"
    );
    Ok(SetUp {
        api,
        plan,
        log_mark,
        seconds,
    })
}

/// A loopback port nothing listens on, for the dead hooks: bind one, note it, let it go.
fn closed_port() -> Result<u16, LoadtestError> {
    let io = |source| LoadtestError::Io {
        context: "finding a closed port for the dead hooks".into(),
        source,
    };
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
    let port = listener.local_addr().map_err(io)?.port();
    drop(listener);
    Ok(port)
}

/// What the load left: each event's send and accept times, and the outcome.
struct Loaded {
    state: Arc<LoadState>,
    outcome: LoadOutcome,
}

impl Loaded {
    /// The events part of the report.
    fn events(&self) -> report::Events {
        let outcome = &self.outcome;
        let window = Throughput::new(
            outcome.accepted,
            outcome.end_us.saturating_sub(outcome.start_us),
        );
        report::Events {
            sent: outcome.sent,
            accepted: outcome.accepted,
            refused: self.state.count(load::REFUSED),
            timed_out: self.state.count(load::UNCERTAIN),
            accepted_per_second: window.per_second,
            load_seconds: window.seconds,
            stopped_by_duration: outcome.stopped_by_duration,
        }
    }
}

/// Phase 2: the events, sent as configured, with a progress bar that the drain
/// finishes.
async fn send_events(run: &RunContext<'_>, setup: &SetUp) -> (Loaded, Progress) {
    let args = run.args;
    let state = Arc::new(LoadState::new(args.events));
    let sampled = u64::from(args.accounts).min(args.events);
    let per_event: u64 = (0..sampled)
        .map(|a| setup.plan.expected_hooks(a).len() as u64)
        .sum::<u64>()
        / sampled.max(1);
    let progress = Progress::start(
        args.events.saturating_mul(per_event.max(1)),
        Arc::clone(&state),
        Arc::clone(run.receiver),
    );
    let config = load::LoadConfig {
        events: args.events,
        batch: args.batch,
        rate: (args.rate > 0.0).then_some(args.rate),
        concurrency: args.concurrency,
        duration: args.duration.map(Duration::from_secs_f64),
        request_timeout: Duration::from_secs_f64(args.request_timeout),
    };
    let sink = match run.amqp {
        Some(amqp_run) => load::Sink::Amqp(Arc::clone(&amqp_run.publisher)),
        None => load::Sink::Http(Arc::clone(&setup.api)),
    };
    let outcome = load::run(
        sink,
        Arc::clone(&setup.plan),
        config,
        Arc::clone(&state),
        run.clock,
    )
    .await;
    (Loaded { state, outcome }, progress)
}

/// The drain's part of the report.
struct Drained {
    appended: Option<report::Appended>,
    timed_out: bool,
    daemon: Option<DaemonMemory>,
    loadtest_cpu_seconds: Option<f64>,
}

/// Phase 3: until the daemon's log holds every accepted event (own daemon only) and
/// every expected pair arrived, or the drain timeout; then the memory and CPU used.
async fn drain(
    run: &RunContext<'_>,
    setup: &SetUp,
    loaded: &Loaded,
    progress: Progress,
) -> Drained {
    let expected: u64 = loaded
        .state
        .accepted_events()
        .map(|e| setup.plan.expected_hooks(e).len() as u64)
        .sum();
    progress.set_length(expected);
    let deadline = Instant::now() + Duration::from_secs_f64(run.args.drain_timeout);
    let mut appended = match setup.log_mark {
        Some(start) => {
            Some(count_appended(run, &setup.api, &loaded.outcome, start, deadline).await)
        }
        None => None,
    };
    let timed_out = !deliveries_arrived(run.receiver, expected, deadline).await;
    progress.finish();
    // Counted again once the deliveries are done: more than were accepted means
    // events from elsewhere (another publisher on `callevt`) or records the count does
    // not know of.
    if let (Some(a), Some(start)) = (appended.as_mut(), setup.log_mark) {
        if let Ok(end) = setup.api.health().await {
            a.events_at_end = Some(ingest::appended_between(start, end));
        }
    }
    Drained {
        appended,
        timed_out,
        daemon: run.own.and_then(OwnDaemon::memory),
        loadtest_cpu_seconds: daemon::cpu_seconds("self"),
    }
}

/// Waits until `/healthz` shows every accepted event in the log (or `deadline`), and
/// how fast they were appended.
async fn count_appended(
    run: &RunContext<'_>,
    api: &Api,
    outcome: &LoadOutcome,
    start: LogMark,
    deadline: Instant,
) -> report::Appended {
    let seen = ingest::wait_appended(api, run.clock, start, outcome.accepted, deadline).await;
    let rate = Throughput::new(seen.events, seen.at_us.saturating_sub(outcome.start_us));
    report::Appended {
        events: seen.events,
        seconds: rate.seconds,
        per_second: rate.per_second,
        after_last_accept_ms: (seen.at_us.saturating_sub(outcome.end_us) as f64 / 1000.0 * 10.0)
            .round()
            / 10.0,
        timed_out: seen.timed_out,
        polls: seen.polls,
        events_at_end: None,
    }
}

/// Waits until `expected` pairs arrived, then a short settle to catch late duplicates;
/// `false` when `deadline` passed first.
async fn deliveries_arrived(receiver: &ReceiverState, expected: u64, deadline: Instant) -> bool {
    loop {
        if receiver.unique_ok.load(Ordering::Relaxed) >= expected {
            let settle =
                Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(settle).await;
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The reconciliation's part of the report.
struct Reconciled {
    reconciliation: Reconciliation,
    /// Misdirected pairs, named.
    misdirected: Vec<String>,
    /// Expected pairs received, from the first send to the last first receipt.
    deliveries: Throughput,
    latency: Latency,
    latency_from_accept: Latency,
    delivered_before_accept: u64,
    ingest: Latency,
    per_second: Vec<Second>,
}

/// Phase 4: every expected pair of the accepted events against what the receiver
/// recorded, with the latencies from the send and from the accept, the ingest round
/// trips and the per-second series.
fn reconcile_deliveries(
    run: &RunContext<'_>,
    plan: &Plan,
    loaded: &Loaded,
) -> Result<Reconciled, LoadtestError> {
    let (state, outcome) = (&loaded.state, &loaded.outcome);
    let records = run.receiver.take_records();
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
    let expected_pairs = state.accepted_events().flat_map(|event| {
        let event32 = u32::try_from(event).unwrap_or(u32::MAX);
        plan.expected_hooks(event)
            .iter()
            .map(move |&hook| receiver::pair_key(event32, hook))
    });
    // An unexpected pair is of a timed-out batch when its event may be in the log and
    // the hook is one of its account's healthy hooks; anything else is misdirected.
    let classify = |key: u64| {
        let event = u64::from(receiver::event_of(key));
        if state.status(event) == load::UNCERTAIN
            && plan.expected_hooks(event).contains(&receiver::hook_of(key))
        {
            Unexpected::OfTimedOutBatch
        } else {
            Unexpected::Misdirected
        }
    };
    let reconciliation = reconcile::reconcile(expected_pairs, &records, classify, |key, record| {
        let event = u64::from(receiver::event_of(key));
        let latency_us = record
            .first_ok_us
            .saturating_sub(state.sent_us(event))
            .max(1);
        latency.saturating_record(latency_us);
        let accepted_us = state.accepted_us(event);
        if record.first_ok_us < accepted_us {
            delivered_before_accept += 1;
        }
        from_accept.saturating_record(record.first_ok_us.saturating_sub(accepted_us).max(1));
        series.delivered(record.first_ok_us, latency_us);
        last_receipt_us = last_receipt_us.max(record.first_ok_us);
    });
    Ok(Reconciled {
        misdirected: name_pairs(plan, &reconciliation.misdirected_keys),
        deliveries: Throughput::new(
            reconciliation.received_pairs,
            last_receipt_us.saturating_sub(outcome.start_us),
        ),
        reconciliation,
        latency: Latency::from_histogram(&latency),
        latency_from_accept: Latency::from_histogram(&from_accept),
        delivered_before_accept,
        ingest: Latency::from_histogram(&ingest),
        per_second: series.build(),
    })
}

/// `event N (account A) -> hook ID (account B)` for each pair key.
fn name_pairs(plan: &Plan, keys: &[u64]) -> Vec<String> {
    keys.iter()
        .map(|&key| {
            let event = u64::from(receiver::event_of(key));
            let hook = plan.hooks.get(receiver::hook_of(key) as usize);
            format!(
                "event {event} (account {}) -> hook {} (account {})",
                plan.account_of(event),
                hook.map_or("?", |h| h.id.as_str()),
                hook.map_or_else(|| "?".to_owned(), |h| h.account.to_string()),
            )
        })
        .collect()
}

/// Phase 5 (`--baseline`): the same receiver hit by a bare reqwest loop at the daemon's
/// delivery concurrency, and Piston's deliveries/s as a ratio of it.
async fn measure_baseline(
    run: &RunContext<'_>,
    plan: &Plan,
    reconciled: &Reconciled,
) -> Result<Option<report::Baseline>, LoadtestError> {
    let args = run.args;
    if !args.baseline {
        return Ok(None);
    }
    let concurrency = baseline::concurrency(plan.healthy_hooks(), args.max_in_flight_per_hook);
    let mut sample = String::new();
    load::write_event(&mut sample, plan, 0);
    let requests = reconciled.reconciliation.received_pairs.max(1_000);
    let measured = baseline::run(
        format!("http://{}/baseline", run.receiver_addr),
        Bytes::from(sample),
        concurrency,
        requests,
        Duration::from_secs_f64(args.drain_timeout),
    )
    .await?;
    let per_second = Throughput::new(
        measured.ok,
        u64::try_from(measured.elapsed.as_micros()).unwrap_or(u64::MAX),
    )
    .per_second;
    Ok(Some(report::Baseline {
        concurrency: measured.concurrency,
        requests: measured.requests,
        ok: measured.ok,
        errors: measured.errors,
        seconds: (measured.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        per_second,
        ratio: if per_second > 0.0 {
            (reconciled.deliveries.per_second / per_second * 1000.0).round() / 1000.0
        } else {
            0.0
        },
    }))
}

/// The report from the phases' parts (its `amqp` part is added once the queues are
/// deleted).
fn assemble(
    run: &RunContext<'_>,
    setup: &SetUp,
    loaded: Loaded,
    drained: Drained,
    reconciled: Reconciled,
    baseline: Option<report::Baseline>,
) -> Report {
    let args = run.args;
    let complete = reconciled.reconciliation.complete()
        && !drained.timed_out
        && !drained.appended.as_ref().is_some_and(|a| a.timed_out);
    let mut report = Report {
        settings: report::Settings {
            target: match &args.target {
                Some(url) => url.to_string(),
                None => "own daemon".to_owned(),
            },
            via: args.via.name(),
            accounts: args.accounts,
            hooks_per_account: args.hooks_per_account,
            hooks: setup.plan.hooks.len() as u64,
            dead_hooks: args.dead_hooks,
            events: args.events,
            batch: args.batch,
            rate: args.rate,
            concurrency: args.concurrency,
            duration_s: args.duration,
            receiver_delay_ms: args.receiver_delay_ms,
            receiver_error_rate: args.receiver_error_rate,
            max_in_flight_per_hook: args.max_in_flight_per_hook,
            setup_seconds: (setup.seconds * 1000.0).round() / 1000.0,
        },
        events: loaded.events(),
        deliveries: reconciled.deliveries,
        latency_ms: reconciled.latency,
        latency_measured_from: match args.via {
            Via::Http => "send of the POST /v2/events carrying the event",
            Via::Amqp => "publish of the AMQP batch carrying the event",
        },
        latency_from_accept_ms: reconciled.latency_from_accept,
        delivered_before_accept: reconciled.delivered_before_accept,
        ingest_ms: reconciled.ingest,
        appended: drained.appended,
        amqp: None,
        reconciliation: reconciled.reconciliation,
        misdirected: reconciled.misdirected,
        complete,
        passed: false,
        failures: Vec::new(),
        drain_timed_out: drained.timed_out,
        errors: report::Errors {
            api: loaded.outcome.errors,
            receiver_unidentified: run.receiver.unidentified.load(Ordering::Relaxed),
        },
        daemon: drained.daemon,
        loadtest_cpu_seconds: drained.loadtest_cpu_seconds,
        baseline,
        per_second: reconciled.per_second,
    };
    report.failures = reconcile::failures(&report);
    report.passed = report.failures.is_empty();
    report
}
