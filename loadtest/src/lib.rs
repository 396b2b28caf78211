//! `piston-loadtest`, run as `piston-webhooks loadtest`: measures the daemon end to end
//! on this machine.
//!
//! 1. A receiver ([`receiver`]) on loopback timestamps and counts every delivery.
//! 2. A daemon: by default the `piston-webhooks` binary started as `serve` on a temp
//!    data dir ([`daemon`]); with `--target` a running one.
//! 3. Setup ([`setup`]): child accounts × webhooks through the REST API, and the plan of
//!    which hook must receive which event.
//! 4. Load ([`load`]): events in batches to `POST /v2/events` (or one by one with
//!    `--batch 1`, from `--connections` connections), paced ([`ratelimit`]); with
//!    `--via amqp`, published to RabbitMQ as Kazoo publishes call events ([`amqp`]),
//!    for the daemon's AMQP consumer. `--dead-backlog N` is a preset: one account, one
//!    dead hook, N events ([`LoadtestArgs`]).
//! 5. Appended ([`ingest`]): wait until the daemon's `/healthz` shows every accepted
//!    event in its log. Drain: wait until every expected `(event, hook)` pair arrived,
//!    or the drain timeout; then a quiet window ([`quiet`]) that catches late duplicates
//!    and misdirected deliveries. The daemon's RSS and pending deliveries are sampled
//!    from the start of the load to the end of the drain ([`memory`]).
//! 6. Optionally the baseline ([`baseline`]): the same receiver hit by a bare reqwest
//!    loop, the loopback HTTP ceiling.
//! 7. The report ([`report`]) on standard output, as text or JSON, and a chart
//!    ([`plot`]).
//!
//! Steps 3 to 6 are the phases of [`drive`], each returning its part of the report;
//! [`run`] starts and stops what they run against (receiver, broker queues, daemon) and
//! writes the report.
//!
//! Only loopback addresses are ever contacted (the broker too), and every loop is
//! bounded in count and time. A run that goes to the end prints its report and returns
//! its [`Verdict`] ([`reconcile`] decides it: refused or timed-out ingest, missing,
//! duplicate or misdirected deliveries, unknown requests and timeouts fail it; the
//! binary exits [`FAILED_RUN_EXIT_CODE`] then); a run that cannot go to the end (the
//! daemon does not start, setup fails) is an error.
//!
//! This crate is apart from the daemon's so that the daemon does not link what only the
//! load tool needs (an HTTP server of its own, histograms, a chart). It uses the
//! daemon's library for what they share: the AMQP topology and Kazoo mapping
//! ([`piston_webhooks::amqp`]) and the clock.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod amqp;
mod api;
mod args;
mod baseline;
mod daemon;
mod drive;
mod ingest;
mod load;
mod memory;
mod plot;
mod progress;
mod quiet;
mod ratelimit;
mod receiver;
mod reconcile;
mod report;
mod setup;

pub use args::{LoadtestArgs, Via};
pub use daemon::DAEMON_EXE_ENV;

use drive::RunContext;
use report::Report;

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

/// How a run that went to the end turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every event accepted, every expected delivery once, nothing else.
    Passed,
    /// The report's `failures` say why.
    Failed,
}

/// The exit code of a run that went to the end and failed (a run that could not go to
/// the end exits 1).
pub const FAILED_RUN_EXIT_CODE: u8 = 3;

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

/// The broker side of a `--via amqp` run: the publisher and the run's own queues.
pub(crate) struct AmqpRun {
    pub publisher: Arc<amqp::Publisher>,
    pub queue: String,
    pub dead_letter: String,
}

impl AmqpRun {
    /// Connects to the broker and declares the run's queues (named after `tag`) before
    /// the daemon consumes from them.
    async fn start(args: &LoadtestArgs, tag: &str) -> Result<AmqpRun, LoadtestError> {
        let publisher = amqp::Publisher::connect(
            &args.amqp_url,
            args.concurrency.max(1),
            args.amqp_persistent,
        )
        .await?;
        let (queue, dead_letter) = amqp::queue_names(tag);
        if let Err(e) = publisher.declare_queues(&queue, &dead_letter).await {
            let _ = publisher.delete_queues(&[&queue, &dead_letter]).await;
            publisher.close().await;
            return Err(e);
        }
        Ok(AmqpRun {
            publisher: Arc::new(publisher),
            queue,
            dead_letter,
        })
    }

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

    /// Cleans up (once the daemon that would declare the queues again is gone) and
    /// returns the broker's part of the report.
    async fn finish(&self, args: &LoadtestArgs) -> report::AmqpRun {
        let (left_in_queue, dead_lettered) = self.clean_up().await;
        report::AmqpRun {
            broker: amqp::broker_label(&args.amqp_url),
            queue: self.queue.clone(),
            dead_letter: self.dead_letter.clone(),
            prefetch: args.amqp_prefetch,
            persistent: args.amqp_persistent,
            left_in_queue,
            dead_lettered,
        }
    }
}

/// Runs the load test, prints its report on standard output and returns its verdict.
pub async fn run(args: LoadtestArgs) -> Result<Verdict, LoadtestError> {
    let args = args.resolved();
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
        Via::Amqp => Some(AmqpRun::start(&args, &tag).await?),
    };
    let (own, base, key) = match start_daemon(&args, amqp_run.as_ref()).await {
        Ok(started) => started,
        Err(e) => {
            if let Some(run) = &amqp_run {
                run.clean_up().await;
            }
            return Err(e);
        }
    };
    let outcome = drive::drive(&RunContext {
        args: &args,
        tag: &tag,
        clock,
        receiver: &state,
        receiver_addr: receiver.addr,
        base: &base,
        key: &key,
        own: own.as_ref(),
        amqp: amqp_run.as_ref(),
    })
    .await;
    if let Some(own) = own {
        stop_daemon(own, outcome.is_err(), args.keep_data_dir).await;
    }
    drop(receiver);
    // The daemon is gone (it would declare them again): delete the run's queues.
    let amqp_report = match &amqp_run {
        Some(run) => Some(run.finish(&args).await),
        None => None,
    };
    let mut report = outcome?;
    report.amqp = amqp_report;
    write_report(&args, &report)?;
    Ok(if report.passed {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}

/// The daemon to drive: with `--target`, the running one (its URL and key); otherwise
/// one started here, returned with its URL and its master key (`--master-api-key`, or
/// random).
async fn start_daemon(
    args: &LoadtestArgs,
    amqp_run: Option<&AmqpRun>,
) -> Result<(Option<daemon::OwnDaemon>, String, String), LoadtestError> {
    match (&args.target, &args.master_api_key) {
        (Some(target), Some(key)) => Ok((None, target.as_str().to_owned(), key.clone())),
        (Some(_), None) => Err(LoadtestError::Invalid(
            "--target needs --master-api-key".into(),
        )),
        (None, given) => {
            let key = given
                .clone()
                .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
            let own = daemon::OwnDaemon::start(&daemon::DaemonOptions {
                master_api_key: key.clone(),
                max_in_flight_per_hook: args.max_in_flight_per_hook,
                max_in_flight: args.max_in_flight,
                retry_base_ms: args.retry_base_ms,
                failure_threshold: args.failure_threshold,
                amqp: amqp_run.map(|run| daemon::AmqpFlags {
                    url: args.amqp_url.clone(),
                    queue: run.queue.clone(),
                    dead_letter: run.dead_letter.clone(),
                    prefetch: args.amqp_prefetch,
                }),
            })
            .await?;
            let base = own.base.clone();
            Ok((Some(own), base, key))
        }
    }
}

/// Stops the daemon started here. After a failed run, shows the end of its log first
/// (the temp dir goes with the daemon); with `keep_data_dir`, says where its data is.
async fn stop_daemon(own: daemon::OwnDaemon, run_failed: bool, keep_data_dir: bool) {
    if run_failed {
        let log = std::fs::read_to_string(own.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if !tail.is_empty() {
            eprintln!("piston-webhooks loadtest: the daemon's log ends with:\n{tail}");
        }
    }
    if let Some(dir) = own.stop(keep_data_dir).await {
        eprintln!(
            "piston-webhooks loadtest: the daemon's data dir is kept in {}; audit it with \
             `piston-webhooks log replay --data-dir {}`",
            dir.display(),
            dir.join("data").display()
        );
    }
}

/// Writes the chart (`--plot`), then the report on standard output (`--json`: one JSON
/// object).
fn write_report(args: &LoadtestArgs, report: &Report) -> Result<(), LoadtestError> {
    if let Some(path) = &args.plot {
        let title = format!(
            "piston-webhooks loadtest: {} events x {} hooks",
            report.events.accepted, report.settings.hooks
        );
        plot::write(path, &report.per_second, &report.memory_series, &title)?;
    }
    let text = if args.json {
        serde_json::to_string(report).map_err(|e| LoadtestError::Setup(e.to_string()))? + "\n"
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
