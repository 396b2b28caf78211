//! Kazoo's call events from RabbitMQ (`--amqp-url`), beside HTTP ingest.
//!
//! It runs just past 500 lines because the consume loop, its batching and the ordered
//! acknowledgements are one protocol with one set of guarantees (below); the wire
//! mapping and the broker topology already live apart (`mapping`, `topology`).
//!
//! The consumer declares a durable queue (`--amqp-queue`) with a dead-letter queue
//! (`--amqp-dead-letter`), binds it to Kazoo's topic exchange `callevt` with
//! `call.EVENT_NAME.*` for the events we deliver, and consumes with a bounded prefetch.
//! Deliveries are taken in batches (what arrives within 5 ms, up to a quarter of the
//! prefetch), mapped by [`mapping`] and appended durably through [`Ingest::accept`];
//! up to four batches are appended at once (the log's writer commits them together),
//! and each is acknowledged, in arrival order, with one `basic.ack(multiple)` up to its
//! last tag once its append has returned. So:
//!
//! - a message is acked only once its event is in the log (or it carried no account id,
//!   which Kazoo drops too): a crash before the ack redelivers it, and its stable
//!   `event_id` makes the redelivery a no-op;
//! - a malformed message is rejected without requeue, which dead-letters it, with a
//!   log line: never acked silently, never redelivered forever;
//! - if the broker goes away, the unacked messages go back to the durable queue and the
//!   consumer reconnects with backoff (100 ms doubling to 5 s); the API and HTTP ingest
//!   are not affected.
//!
//! What becomes of each message is counted in the daemon's metrics
//! (`piston_amqp_messages_total{outcome}`).
//!
//! What it declares on the broker is in [`topology`], shared with the load tool.
//! `docs/amqp.md` describes the topology and the mapping for operators.

pub mod mapping;
pub mod topology;

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::LogError;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::ingest::{IncomingEvent, Ingest};
use crate::telemetry::metrics::{AmqpOutcome, Metrics};
use mapping::Mapped;
use topology::broker_label;

/// The first reconnect delay; it doubles up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a batch waits for more deliveries after its first one.
pub const BATCH_WAIT: Duration = Duration::from_millis(5);
/// Batches being appended at once; the next batch is collected and mapped while the
/// earlier ones wait for their group commit.
const APPENDS_IN_FLIGHT: usize = 4;
/// How long the batch collector sleeps between takes of what has arrived.
const COLLECT_NAP: Duration = Duration::from_millis(1);
/// How long connecting (TCP, TLS, AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the counters are logged while they change.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Our consumer tag.
const CONSUMER_TAG: &str = "piston-webhooks";

/// What the consumer needs from the configuration (`ServeConfig::amqp_settings`).
#[derive(Clone)]
pub struct AmqpSettings {
    /// The broker URI; it may hold a password, so it is never logged.
    pub url: String,
    pub queue: String,
    pub dead_letter: String,
    pub prefetch: u16,
    pub batch_wait: Duration,
    /// Larger messages are dead-lettered (`--max-body-bytes`, as for HTTP ingest).
    pub max_message_bytes: usize,
}

impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("broker", &broker_label(&self.url))
            .field("queue", &self.queue)
            .field("dead_letter", &self.dead_letter)
            .field("prefetch", &self.prefetch)
            .field("batch_wait", &self.batch_wait)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

/// What the consumer has done since it started. The outcomes are the daemon's
/// `piston_amqp_messages_total` series (handles on them).
#[derive(Debug, Default)]
struct Counters {
    received: Counter,
    accepted: Counter,
    duplicates: Counter,
    dropped_no_account: Counter,
    dead_lettered: Counter,
    reconnects: Counter,
}

/// A copy of the consumer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Messages taken from the queue (redeliveries count again).
    pub received: u64,
    /// Events appended to the log.
    pub accepted: u64,
    /// Events already in the log (redeliveries), acked without appending.
    pub duplicates: u64,
    /// Well-formed events without an account id, acked and dropped as Kazoo does.
    pub dropped_no_account: u64,
    /// Malformed messages rejected to the dead-letter queue.
    pub dead_lettered: u64,
    /// Sessions that ended on an error and were retried.
    pub reconnects: u64,
}

impl Counters {
    /// Counters whose outcomes count into `metrics`.
    fn registered(metrics: &Metrics) -> Counters {
        Counters {
            accepted: metrics.amqp_messages(AmqpOutcome::Accepted),
            duplicates: metrics.amqp_messages(AmqpOutcome::Duplicate),
            dropped_no_account: metrics.amqp_messages(AmqpOutcome::Dropped),
            dead_lettered: metrics.amqp_messages(AmqpOutcome::DeadLettered),
            ..Counters::default()
        }
    }

    fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &Counter| c.get();
        CounterSnapshot {
            received: get(&self.received),
            accepted: get(&self.accepted),
            duplicates: get(&self.duplicates),
            dropped_no_account: get(&self.dropped_no_account),
            dead_lettered: get(&self.dead_lettered),
            reconnects: get(&self.reconnects),
        }
    }

    fn log(&self, message: &'static str) {
        let s = self.snapshot();
        tracing::info!(
            received = s.received,
            accepted = s.accepted,
            duplicates = s.duplicates,
            dropped_no_account = s.dropped_no_account,
            dead_lettered = s.dead_lettered,
            reconnects = s.reconnects,
            "{message}"
        );
    }
}

/// Why a session with the broker ended (other than a shutdown).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("connecting took more than {0:?}")]
    ConnectTimeout(Duration),
    #[error("the broker cancelled our consumer")]
    Cancelled,
    #[error("event log: {0}")]
    Log(#[from] LogError),
}

/// The running consumer task.
pub struct AmqpConsumer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl AmqpConsumer {
    /// Starts consuming in the background; connection failures are retried forever
    /// (with backoff) until [`AmqpConsumer::stop`].
    pub fn spawn(settings: AmqpSettings, ingest: Ingest, metrics: &Metrics) -> AmqpConsumer {
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::registered(metrics));
        let span = tracing::info_span!(
            "amqp",
            broker = %broker_label(&settings.url),
            queue = %settings.queue,
        );
        let task =
            tokio::spawn(run(settings, ingest, Arc::clone(&counters), stop_rx).instrument(span));
        AmqpConsumer {
            stop,
            task,
            counters,
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// Stops taking messages, finishes (appends and acks) the batch in hand, closes the
    /// connection (unacked prefetched messages return to the queue). Waits at most
    /// `bound`; past it the task is aborted, which loses nothing: what was not acked is
    /// redelivered, and what was appended is recognised by its event id.
    pub async fn stop(mut self, bound: Duration) -> CounterSnapshot {
        let _ = self.stop.send(true);
        if tokio::time::timeout(bound, &mut self.task).await.is_err() {
            tracing::warn!(?bound, "AMQP consumer did not stop in time; aborting it");
            self.task.abort();
        }
        self.counters.snapshot()
    }
}

/// Resolves once a stop is asked (or the stopper is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn run(
    settings: AmqpSettings,
    ingest: Ingest,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let mut established = false;
        match session(&settings, &ingest, &counters, &mut stop, &mut established).await {
            Ok(()) => break,
            Err(error) => {
                if established {
                    backoff = INITIAL_BACKOFF;
                }
                Counters::add(&counters.reconnects, 1);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "AMQP session ended; reconnecting");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut stop) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    counters.log("AMQP consumer stopped");
}

/// One connection: connect, declare, consume until stopped (`Ok`) or an error.
async fn session(
    settings: &AmqpSettings,
    ingest: &Ingest,
    counters: &Counters,
    stop: &mut watch::Receiver<bool>,
    established: &mut bool,
) -> Result<(), SessionError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("{CONSUMER_TAG} {}", settings.queue).into());
    let connect = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&settings.url, properties),
    );
    let connection = tokio::select! {
        connected = connect => connected.map_err(|_| SessionError::ConnectTimeout(CONNECT_TIMEOUT))??,
        () = stopped(stop) => return Ok(()),
    };
    let result = consume(&connection, settings, ingest, counters, stop, established).await;
    // Closing returns what we hold unacked to the queue at once.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        connection.close(200, "piston-webhooks consumer closing".into()),
    )
    .await;
    result
}

async fn consume(
    connection: &Connection,
    settings: &AmqpSettings,
    ingest: &Ingest,
    counters: &Counters,
    stop: &mut watch::Receiver<bool>,
    established: &mut bool,
) -> Result<(), SessionError> {
    topology::declare_consumer_topology(connection, &settings.queue, &settings.dead_letter).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            CONSUMER_TAG.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    *established = true;
    tracing::info!(prefetch = settings.prefetch, "consuming Kazoo call events");
    let max_batch = usize::from(settings.prefetch)
        .div_ceil(APPENDS_IN_FLIGHT)
        .max(1);
    // Appends in flight, oldest first: each resolves to the tag to ack up to, and acks
    // are sent in this order, so an ack never covers a message whose append is pending.
    let mut appends = FuturesOrdered::new();
    let mut reported = Instant::now();
    let mut last_report = counters.snapshot();
    loop {
        tokio::select! {
            biased;
            () = stopped(stop) => {
                while let Some(done) = appends.next().await {
                    ack_through(&channel, done?).await?;
                }
                return Ok(());
            }
            Some(done) = appends.next(), if !appends.is_empty() => {
                ack_through(&channel, done?).await?;
            }
            first = consumer.next(), if appends.len() < APPENDS_IN_FLIGHT => {
                let batch = collect_batch(&mut consumer, first, max_batch, settings.batch_wait).await?;
                let prepared = prepare_batch(&channel, counters, settings, batch).await?;
                appends.push_back(append_batch(&channel, ingest, counters, prepared));
            }
        }
        if reported.elapsed() >= REPORT_EVERY {
            let now = counters.snapshot();
            if now != last_report {
                counters.log("AMQP consumer counters");
                last_report = now;
            }
            reported = Instant::now();
        }
    }
}

/// A batch: the first delivery, then whatever arrives within `wait`, up to `max`.
///
/// It naps ([`COLLECT_NAP`]) and then takes what is ready, rather than waking once per
/// message: lapin hands each delivery over from its I/O thread, and a wake-up per
/// message cost more CPU than the rest of the ingest.
async fn collect_batch(
    consumer: &mut lapin::Consumer,
    first: Option<Result<Delivery, lapin::Error>>,
    max: usize,
    wait: Duration,
) -> Result<Vec<Delivery>, SessionError> {
    let mut batch = match first {
        Some(Ok(delivery)) => vec![delivery],
        Some(Err(e)) => return Err(e.into()),
        None => return Err(SessionError::Cancelled),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        while batch.len() < max {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(delivery),
                Some(Some(Err(e))) => return Err(e.into()),
                Some(None) => return Err(SessionError::Cancelled),
                None => break,
            }
        }
        if batch.len() >= max || tokio::time::Instant::now() >= deadline {
            return Ok(batch);
        }
        let nap = tokio::time::Instant::now() + COLLECT_NAP;
        tokio::time::sleep_until(nap.min(deadline)).await;
    }
}

/// Acknowledges every message up to `tag` (`None`: nothing to acknowledge).
async fn ack_through(channel: &Channel, tag: Option<u64>) -> Result<(), SessionError> {
    if let Some(tag) = tag {
        channel
            .basic_ack(tag, BasicAckOptions { multiple: true })
            .await?;
    }
    Ok(())
}

/// A batch after mapping: its events, and the deliveries still to acknowledge.
struct PreparedBatch {
    events: Vec<IncomingEvent>,
    /// The delivery of each event in `events`, in the same order.
    event_deliveries: Vec<Delivery>,
    /// Tags of the deliveries not rejected (events and dropped ones).
    kept_tags: Vec<u64>,
}

/// Maps one batch; rejects its malformed messages at once and counts the dropped ones.
async fn prepare_batch(
    channel: &Channel,
    counters: &Counters,
    settings: &AmqpSettings,
    batch: Vec<Delivery>,
) -> Result<PreparedBatch, SessionError> {
    Counters::add(&counters.received, batch.len() as u64);
    let mut prepared = PreparedBatch {
        events: Vec::with_capacity(batch.len()),
        event_deliveries: Vec::with_capacity(batch.len()),
        kept_tags: Vec::with_capacity(batch.len()),
    };
    for delivery in batch {
        if delivery.data.len() > settings.max_message_bytes {
            let error = format!(
                "message of {} bytes is larger than --max-body-bytes ({})",
                delivery.data.len(),
                settings.max_message_bytes
            );
            dead_letter(channel, counters, &delivery, &error).await?;
            continue;
        }
        match mapping::map_message(&delivery.data) {
            Ok(Mapped::Event(event)) => {
                prepared.kept_tags.push(delivery.delivery_tag);
                prepared.events.push(event);
                prepared.event_deliveries.push(delivery);
            }
            Ok(Mapped::NoAccount { event_name }) => {
                Counters::add(&counters.dropped_no_account, 1);
                prepared.kept_tags.push(delivery.delivery_tag);
                tracing::debug!(
                    %event_name,
                    routing_key = delivery.routing_key.as_str(),
                    "no Account-ID in Custom-Channel-Vars; dropped as Kazoo does"
                );
            }
            Err(error) => dead_letter(channel, counters, &delivery, &error).await?,
        }
    }
    Ok(prepared)
}

/// Appends a prepared batch durably. Resolves to the tag to acknowledge up to: the
/// batch's last delivery that was not rejected (`None` when all were).
async fn append_batch(
    channel: &Channel,
    ingest: &Ingest,
    counters: &Counters,
    prepared: PreparedBatch,
) -> Result<Option<u64>, SessionError> {
    let PreparedBatch {
        events,
        event_deliveries,
        mut kept_tags,
    } = prepared;
    let mapped = events.len() as u64;
    if mapped > 0 {
        match ingest.accept(events).await {
            Ok(appended) => {
                let appended = appended as u64;
                Counters::add(&counters.accepted, appended);
                Counters::add(&counters.duplicates, mapped.saturating_sub(appended));
            }
            // An event the log cannot store would fail its whole batch at every
            // redelivery: find it, one event at a time, and dead-letter it.
            Err(LogError::Encode(reason)) => {
                tracing::warn!(%reason, "a batch could not be encoded; appending its events one by one");
                for delivery in &event_deliveries {
                    let Ok(Mapped::Event(event)) = mapping::map_message(&delivery.data) else {
                        continue;
                    };
                    match ingest.accept(vec![event]).await {
                        Ok(appended) => {
                            Counters::add(&counters.accepted, appended as u64);
                            Counters::add(&counters.duplicates, 1 - appended.min(1) as u64);
                        }
                        Err(LogError::Encode(reason)) => {
                            dead_letter(channel, counters, delivery, &reason).await?;
                            kept_tags.retain(|tag| *tag != delivery.delivery_tag);
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    // Everything kept is now durable (or dropped). A multiple ack must not name a
    // rejected tag (the broker would close the channel), hence the last kept one.
    Ok(kept_tags.into_iter().max())
}

/// Rejects a delivery without requeue: the broker moves it to the dead-letter queue.
async fn dead_letter(
    channel: &Channel,
    counters: &Counters,
    delivery: &Delivery,
    error: &(dyn std::fmt::Display + Sync),
) -> Result<(), lapin::Error> {
    channel
        .basic_reject(delivery.delivery_tag, BasicRejectOptions { requeue: false })
        .await?;
    Counters::add(&counters.dead_lettered, 1);
    tracing::warn!(
        delivery_tag = delivery.delivery_tag,
        routing_key = delivery.routing_key.as_str(),
        %error,
        "malformed message rejected to the dead-letter queue"
    );
    Ok(())
}
