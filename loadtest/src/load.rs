//! The load: `--events` events in batches of `--batch` to `POST /v2/events` (or, with
//! `--via amqp`, published to RabbitMQ: [`super::amqp`]), from `--concurrency` tasks
//! sharing one client (or `--connections` tasks with a connection each), paced by a
//! token bucket at `--rate`, stopped by `--duration`. With `--batch 1` each POST
//! carries its event alone, `{"data": EVENT}` ([`request_body`]).
//!
//! Each event's send time (when the POST carrying it started) and accept time (when its
//! 202 came back; with AMQP, when the broker's confirm came back) are kept by event
//! index. The main latency is measured from the send,
//! because a delivery may reach the receiver before the 202 that acknowledges its batch
//! is back; the report also gives it from the 202, and the POST round trip itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinSet;

use super::amqp::{self, PublishOutcome, Publisher};
use super::api::{Api, PostOutcome};
use super::ratelimit::TokenBucket;
use super::setup::Plan;
use super::Clock;

/// Event states.
pub(crate) const NOT_SENT: u8 = 0;
pub(crate) const IN_FLIGHT: u8 = 1;
pub(crate) const ACCEPTED: u8 = 2;
pub(crate) const REFUSED: u8 = 3;
/// Timed out: may or may not be in the log.
pub(crate) const UNCERTAIN: u8 = 4;

/// How to send.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    pub events: u64,
    pub batch: u64,
    /// Events per second; `None` = as fast as possible.
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub duration: Option<Duration>,
    pub request_timeout: Duration,
}

/// Where the events go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// `POST /v2/events`; sender `i` uses client `i % len` (one client shared by all,
    /// or one per connection).
    Http(Vec<Arc<Api>>),
    /// RabbitMQ's `callevt`, for the daemon's AMQP consumer.
    Amqp(Arc<Publisher>),
}

/// API failures while sending: batches for HTTP, messages for AMQP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ApiErrors {
    /// Batches answered with another status than 202, by status.
    pub http: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub transport: u64,
    /// AMQP messages the broker refused (`basic.nack`).
    #[serde(skip_serializing_if = "is_zero")]
    pub nacked: u64,
    /// AMQP messages no queue was bound for (returned).
    #[serde(skip_serializing_if = "is_zero")]
    pub unroutable: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-event and live state, shared with the receiver's progress and the report.
pub(crate) struct LoadState {
    sent_us: Vec<AtomicU64>,
    accepted_us: Vec<AtomicU64>,
    status: Vec<AtomicU8>,
    /// Events sent so far (live).
    pub sent: AtomicU64,
    /// Events accepted so far (live).
    pub accepted: AtomicU64,
    errors: Mutex<ApiErrors>,
    accepts: Mutex<Vec<AcceptedBatch>>,
}

/// One accepted batch: when it was sent, when its 202 came back, how many events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcceptedBatch {
    pub sent_us: u64,
    pub accepted_us: u64,
    pub events: u64,
}

impl LoadState {
    pub(crate) fn new(events: u64) -> LoadState {
        let n = usize::try_from(events).unwrap_or(0);
        LoadState {
            sent_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            accepted_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            status: (0..n).map(|_| AtomicU8::new(NOT_SENT)).collect(),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            errors: Mutex::new(ApiErrors::default()),
            accepts: Mutex::new(Vec::new()),
        }
    }

    /// When event `n` was sent (µs on the run's clock).
    pub(crate) fn sent_us(&self, event: u64) -> u64 {
        usize::try_from(event)
            .ok()
            .and_then(|i| self.sent_us.get(i))
            .map_or(0, |t| t.load(Ordering::Relaxed))
    }

    /// When the 202 of event `n`'s batch came back (µs on the run's clock).
    pub(crate) fn accepted_us(&self, event: u64) -> u64 {
        usize::try_from(event)
            .ok()
            .and_then(|i| self.accepted_us.get(i))
            .map_or(0, |t| t.load(Ordering::Relaxed))
    }

    /// The state of event `n` ([`NOT_SENT`], [`IN_FLIGHT`], [`ACCEPTED`], [`REFUSED`] or
    /// [`UNCERTAIN`]).
    pub(crate) fn status(&self, event: u64) -> u8 {
        usize::try_from(event)
            .ok()
            .and_then(|i| self.status.get(i))
            .map_or(NOT_SENT, |s| s.load(Ordering::Relaxed))
    }

    /// How many events are in `state`.
    pub(crate) fn count(&self, state: u8) -> u64 {
        self.status
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) == state)
            .count() as u64
    }

    /// The indices of the accepted events.
    pub(crate) fn accepted_events(&self) -> impl Iterator<Item = u64> + '_ {
        self.status
            .iter()
            .enumerate()
            .filter(|(_, s)| s.load(Ordering::Relaxed) == ACCEPTED)
            .map(|(i, _)| i as u64)
    }

    /// Sets the state of events `lo..hi`, and the time they were sent (`IN_FLIGHT`) or
    /// accepted (`ACCEPTED`).
    fn mark(&self, lo: u64, hi: u64, state: u8, at_us: u64) {
        let times = match state {
            IN_FLIGHT => Some(&self.sent_us),
            ACCEPTED => Some(&self.accepted_us),
            _ => None,
        };
        for event in lo..hi {
            let Ok(i) = usize::try_from(event) else {
                continue;
            };
            if let Some(slot) = times.and_then(|t| t.get(i)) {
                slot.store(at_us, Ordering::Relaxed);
            }
            if let Some(slot) = self.status.get(i) {
                slot.store(state, Ordering::Relaxed);
            }
        }
    }

    /// Records the answer to the POST of events `lo..hi` sent at `sent_us`.
    fn record_post(&self, lo: u64, hi: u64, outcome: PostOutcome, sent_us: u64, at: u64) {
        match outcome {
            PostOutcome::Accepted => {
                self.mark(lo, hi, ACCEPTED, at);
                self.accepted.fetch_add(hi - lo, Ordering::Relaxed);
                self.accepts.lock().push(AcceptedBatch {
                    sent_us,
                    accepted_us: at,
                    events: hi - lo,
                });
            }
            PostOutcome::Refused(status) => {
                self.mark(lo, hi, REFUSED, at);
                *self.errors.lock().http.entry(status).or_insert(0) += 1;
            }
            PostOutcome::Timeout => {
                self.mark(lo, hi, UNCERTAIN, at);
                self.errors.lock().timeouts += 1;
            }
            PostOutcome::Transport => {
                self.mark(lo, hi, REFUSED, at);
                self.errors.lock().transport += 1;
            }
        }
    }

    /// Records the broker's answers to the messages of events `lo..`, published at
    /// `sent_us`, one by one.
    fn record_published(&self, lo: u64, outcomes: &[PublishOutcome], sent_us: u64, at: u64) {
        let mut confirmed = 0u64;
        let mut errors = ApiErrors::default();
        for (event, outcome) in (lo..).zip(outcomes) {
            let state = match outcome {
                PublishOutcome::Confirmed => {
                    confirmed += 1;
                    ACCEPTED
                }
                PublishOutcome::Nacked => {
                    errors.nacked += 1;
                    REFUSED
                }
                PublishOutcome::Unroutable => {
                    errors.unroutable += 1;
                    REFUSED
                }
                PublishOutcome::Timeout => {
                    errors.timeouts += 1;
                    UNCERTAIN
                }
                PublishOutcome::Failed => {
                    errors.transport += 1;
                    UNCERTAIN
                }
            };
            self.mark(event, event + 1, state, at);
        }
        if confirmed > 0 {
            self.accepted.fetch_add(confirmed, Ordering::Relaxed);
            self.accepts.lock().push(AcceptedBatch {
                sent_us,
                accepted_us: at,
                events: confirmed,
            });
        }
        if errors != ApiErrors::default() {
            let mut all = self.errors.lock();
            all.nacked += errors.nacked;
            all.unroutable += errors.unroutable;
            all.timeouts += errors.timeouts;
            all.transport += errors.transport;
        }
    }
}

/// What the load phase did.
#[derive(Debug, Clone)]
pub(crate) struct LoadOutcome {
    pub start_us: u64,
    /// When the last batch was answered.
    pub end_us: u64,
    pub sent: u64,
    pub accepted: u64,
    pub errors: ApiErrors,
    pub accepts: Vec<AcceptedBatch>,
    /// Whether `--duration` ended the load before every event was sent.
    pub stopped_by_duration: bool,
}

/// Appends event `n` of `account_id` to `out` as a JSON object.
pub(crate) fn write_event(out: &mut String, plan: &Plan, event: u64) {
    let account_id = plan.account_id_of(event);
    let direction = Plan::direction_of(event);
    let id = plan.event_id(event);
    // Ids and account ids are [A-Za-z0-9_-]: nothing to escape.
    let _ = write!(
        out,
        concat!(
            r#"{{"event_id":"{id}","hook_event":"channel_create","account_id":"{account}","#,
            r#""call_id":"{id}","call_direction":"{direction}","caller_id_name":"Load Test","#,
            r#""caller_id_number":"+1555{n:07}","callee_id_number":"+1666{n:07}","#,
            r#""from":"{n}@loadtest.invalid","to":"2000@loadtest.invalid","#,
            r#""request":"2000@loadtest.invalid","is_internal_leg":false,"#,
            r#""custom_channel_vars":{{"loadtest":"{tag}"}}}}"#
        ),
        id = id,
        account = account_id,
        direction = direction,
        n = event % 10_000_000,
        tag = plan.tag,
    );
}

/// The body of the POST of events `lo..hi`: `{"data": EVENT}` for a single event when
/// `single`, else `{"data": [...]}`.
pub(crate) fn request_body(plan: &Plan, lo: u64, hi: u64, single: bool) -> String {
    if single && hi == lo + 1 {
        let mut body = String::with_capacity(16 + 420);
        body.push_str(r#"{"data":"#);
        write_event(&mut body, plan, lo);
        body.push('}');
        body
    } else {
        batch_body(plan, lo, hi)
    }
}

/// The `{"data":[...]}` body of events `lo..hi`.
pub(crate) fn batch_body(plan: &Plan, lo: u64, hi: u64) -> String {
    let mut body = String::with_capacity(16 + 420 * (hi.saturating_sub(lo) as usize));
    body.push_str(r#"{"data":["#);
    for event in lo..hi {
        if event > lo {
            body.push(',');
        }
        write_event(&mut body, plan, event);
    }
    body.push_str("]}");
    body
}

/// Sends the load; returns once every task is done (all sent, or the duration is over).
pub(crate) async fn run(
    sink: Sink,
    plan: Arc<Plan>,
    config: LoadConfig,
    state: Arc<LoadState>,
    clock: Clock,
) -> LoadOutcome {
    let start = Instant::now();
    let start_us = clock.now_us();
    let deadline = config.duration.map(|d| start + d);
    let batch = config.batch.max(1);
    let batches = config.events.div_ceil(batch);
    let bucket = config
        .rate
        .map(|rate| Arc::new(Mutex::new(TokenBucket::new(rate, batch as f64, start))));
    let next = Arc::new(AtomicU64::new(0));
    let last_answer_us = Arc::new(AtomicU64::new(start_us));
    let mut tasks = JoinSet::new();
    for sender in 0..config.concurrency.max(1) {
        let (sink, plan, state, next, bucket, last) = (
            sink.clone(),
            Arc::clone(&plan),
            Arc::clone(&state),
            Arc::clone(&next),
            bucket.clone(),
            Arc::clone(&last_answer_us),
        );
        let (events, timeout) = (config.events, config.request_timeout);
        tasks.spawn(async move {
            // At most `batches` iterations across all tasks, each bounded by `timeout`.
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches || deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let (lo, hi) = (b * batch, ((b + 1) * batch).min(events));
                if let Some(bucket) = &bucket {
                    let wait = bucket.lock().take((hi - lo) as f64, Instant::now());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                }
                match &sink {
                    Sink::Http(apis) => {
                        let Some(api) = apis.get(sender % apis.len().max(1)) else {
                            return;
                        };
                        let body = request_body(&plan, lo, hi, batch == 1);
                        let sent_us = clock.now_us();
                        state.mark(lo, hi, IN_FLIGHT, sent_us);
                        state.sent.fetch_add(hi - lo, Ordering::Relaxed);
                        let outcome = api.post_events(body, timeout).await;
                        let at = clock.now_us();
                        last.fetch_max(at, Ordering::Relaxed);
                        state.record_post(lo, hi, outcome, sent_us, at);
                    }
                    Sink::Amqp(publisher) => {
                        let messages = amqp::batch_messages(&plan, lo, hi);
                        let sent_us = clock.now_us();
                        state.mark(lo, hi, IN_FLIGHT, sent_us);
                        state.sent.fetch_add(hi - lo, Ordering::Relaxed);
                        let outcomes = publisher.publish(sender, &messages, timeout).await;
                        let at = clock.now_us();
                        last.fetch_max(at, Ordering::Relaxed);
                        state.record_published(lo, &outcomes, sent_us, at);
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a load task failed");
        }
    }
    let sent = state.sent.load(Ordering::Relaxed);
    LoadOutcome {
        start_us,
        end_us: last_answer_us.load(Ordering::Relaxed),
        sent,
        accepted: state.accepted.load(Ordering::Relaxed),
        errors: state.errors.lock().clone(),
        accepts: state.accepts.lock().clone(),
        stopped_by_duration: sent < config.events,
    }
}

#[cfg(test)]
mod tests;
