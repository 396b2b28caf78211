//! One run against a started daemon, in phases, each returning its part of the report:
//!
//! 1. [`set_up`]: log in, wait for the daemon's AMQP consumer (`--via amqp`), create
//!    the accounts and webhooks, tell the receiver which event and hook each delivery
//!    is, and mark the daemon's log; returns [`SetUp`] (the plan, and the setup time of
//!    the report's settings).
//! 2. [`send_events`]: send the events, with a progress bar; returns [`Loaded`] (what was sent
//!    and accepted: the report's events and API errors).
//! 3. [`drain()`] (`drive/drain.rs`): wait until the daemon appended every accepted
//!    event and every expected delivery arrived, or the drain timeout; watch the quiet
//!    window for late duplicates; then read the daemon's memory (sampled since the
//!    load started, [`crate::memory`]) and the CPU used;
//!    returns [`drain::Drained`].
//! 4. [`reconcile_deliveries`] (`drive/conclude.rs`): match the expected `(event,
//!    hook)` pairs against the receipts ([`crate::reconcile`], which also tells the
//!    pairs of timed-out batches from misdirected ones), with the latency histograms
//!    and the per-second series; returns [`conclude::Reconciled`].
//! 5. [`measure_baseline`]: with `--baseline`, the bare reqwest ceiling on the same
//!    receiver.
//!
//! [`drive`] runs them in this order, deletes what setup created on a running daemon,
//! and assembles the [`Report`] with its verdict ([`assemble`]). Starting and stopping
//! the receiver, the broker's queues and the daemon is [`crate::run`]'s business, not
//! this module's.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::Api;
use crate::daemon::OwnDaemon;
use crate::ingest::LogMark;
use crate::load::{LoadOutcome, LoadState};
use crate::memory::{Probe, Sampler};
use crate::progress::Progress;
use crate::receiver::ReceiverState;
use crate::report::{self, Report, Throughput};
use crate::setup::Plan;
use crate::{amqp, ingest, load, setup, AmqpRun, Clock, LoadtestArgs, LoadtestError};

mod conclude;
mod drain;

use conclude::{assemble, measure_baseline, reconcile_deliveries};
use drain::drain;

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
    // The daemon's RSS from the start of the load to the end of the drain.
    let sampler = run.own.map(|own| {
        Sampler::start(Probe {
            pid: own.pid,
            clock: run.clock,
            origin_us: run.clock.now_us(),
            log: setup.log_mark.map(|mark| (Arc::clone(&setup.api), mark)),
        })
    });
    let (loaded, progress) = send_events(run, &setup).await?;
    let drained = drain(run, &setup, &loaded, progress, sampler).await;
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
async fn send_events(
    run: &RunContext<'_>,
    setup: &SetUp,
) -> Result<(Loaded, Progress), LoadtestError> {
    let args = run.args;
    let sink = match (run.amqp, args.connections) {
        (Some(amqp_run), _) => load::Sink::Amqp(Arc::clone(&amqp_run.publisher)),
        (None, None) => load::Sink::Http(vec![Arc::clone(&setup.api)]),
        // A client, so a connection, of its own for every sender.
        (None, Some(connections)) => load::Sink::Http(
            (0..connections)
                .map(|_| setup.api.with_own_connection().map(Arc::new))
                .collect::<Result<_, _>>()?,
        ),
    };
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
        concurrency: args.senders(),
        duration: args.duration.map(Duration::from_secs_f64),
        request_timeout: Duration::from_secs_f64(args.request_timeout),
    };
    let outcome = load::run(
        sink,
        Arc::clone(&setup.plan),
        config,
        Arc::clone(&state),
        run.clock,
    )
    .await;
    Ok((Loaded { state, outcome }, progress))
}
