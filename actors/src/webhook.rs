//! `WebhookActor`: one per webhook with work to do, holding its configuration, its
//! deliveries in flight and its failure counts.
//!
//! The actor never sleeps or blocks. HTTP tries and log appends run in spawned tasks that
//! report back by message; retries are timers (`send_after`). Guarantees it keeps:
//!
//! - **Bounded concurrency**: at most `max_in_flight_per_hook` tries at once.
//! - **Per-call order**: a delivery whose event has a `call_id` starts only when every
//!   earlier delivery (by log sequence) of the same call to this hook is finished, so
//!   `channel_create` reaches a receiver before `channel_answer` of the same call.
//!   Changes of one document (`object` events with the same `type` and `id`) are
//!   ordered the same way. Deliveries of other calls and documents, and of events with
//!   neither, go concurrently.
//! - **Append before act**: the outcome of a try (and a retry's schedule) takes effect
//!   only once its `DeliveryAttempted` record is in the log; until then, later events of
//!   the same call keep waiting. The actor has one attempt append in flight at a time
//!   (`EventLog::append_background`); the tries that finish meanwhile go in the next.
//! - **Circuit breaker**: after 3 failed tries in a row the hook pauses for one retry
//!   base, then tries one delivery at a time until one succeeds ([`BREAKER_FAILURES`]).
//! - **Auto-disable**: `failure_threshold` failed tries within `failure_window` disable
//!   the hook (`WebhookAutoDisabled`) and publish a `webhook_disabled` notification event
//!   in the same log batch as the attempt that crossed the threshold.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use eventlog::{now_ms, Attempt, AttemptResult, Event, EventLog, WebhookId};
use parking_lot::RwLock;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::delivery::{
    build_payload, build_request_to, send_try, DeliveryHeaders, RetryPolicy, TryResult,
};
use crate::hook_config::{HookConfig, TargetError};
use crate::kazoo_events;
use crate::registry::{PendingDelivery, Registry, Webhook, AUTO_DISABLE_REASON};

mod breaker;
mod queue;

use breaker::Breaker;
pub use breaker::BREAKER_FAILURES;
use queue::{Queue, Timer};

/// Delivery settings from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_base: Duration,
    pub request_timeout: Duration,
    pub failure_threshold: u32,
    pub failure_window: Duration,
    pub max_in_flight_per_hook: usize,
    /// Tries in flight across all webhooks: more only adds contention on 2 cores.
    pub max_in_flight_total: usize,
    pub max_response_body: usize,
    pub allow_private_targets: bool,
}

impl DeliverySettings {
    /// The retry policy these settings give every hook.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.retry_base)
    }
}

/// What every webhook actor shares.
pub struct DeliveryContext {
    pub client: reqwest::Client,
    pub log: EventLog,
    pub registry: Arc<RwLock<Registry>>,
    pub settings: DeliverySettings,
    /// Permits for tries in flight across all webhooks.
    tries: tokio::sync::Semaphore,
}

impl DeliveryContext {
    pub fn new(
        client: reqwest::Client,
        log: EventLog,
        registry: Arc<RwLock<Registry>>,
        settings: DeliverySettings,
    ) -> Self {
        let permits = settings
            .max_in_flight_total
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        DeliveryContext {
            client,
            log,
            registry,
            settings,
            tries: tokio::sync::Semaphore::new(permits),
        }
    }
}

/// Messages of a webhook actor.
#[derive(Debug)]
pub enum WebhookMsg {
    /// A new delivery for this hook.
    Deliver(PendingDelivery),
    /// The hook's configuration changed (it stays enabled): the webhook as it now is.
    Reconfigure(Box<Webhook>),
    /// A scheduled retry is due.
    Due(u64),
    /// The pause after consecutive failed tries is over (see [`BREAKER_FAILURES`]).
    Resume,
    /// A try finished (from the task that ran it).
    TryDone { event_seq: u64, result: TryResult },
    /// The attempt records of these tries are in the log: each try's event sequence
    /// and when it is retried (`None`: the delivery is finished).
    Recorded(Vec<(u64, Option<u64>)>),
    /// These tries' attempt records could not be appended; they will be made again.
    RecordFailed(Vec<u64>),
    /// Shutdown: start nothing new, stop once the tries in flight are finished and
    /// logged. Deliveries not started stay pending in the log for the next start.
    Drain,
    /// Fault injection: the handler returns this error, so the actor fails and its
    /// supervisor's restart policy applies. Used by tests and chaos drills.
    InjectFault(String),
}

/// The actor's state.
pub struct WebhookState {
    /// The hook's configuration, read once per configuration and shared with the tries
    /// in flight.
    hook: Arc<HookConfig>,
    ctx: Arc<DeliveryContext>,
    queue: Queue,
    failures: VecDeque<u64>,
    breaker: Breaker,
    records: PendingRecords,
    /// Set when this actor disabled the hook: nothing more starts.
    disabled: bool,
    /// The registry's last applied sequence when the pending deliveries were loaded:
    /// a `Deliver` for an event at or below it was already known then (pending, or
    /// finished since), so it is not taken again.
    loaded_seq: u64,
    /// Shutting down: nothing new starts; the actor stops when idle.
    draining: bool,
}

/// The webhook actor (stateless handler; the state is [`WebhookState`]).
pub struct WebhookActor;

/// Start-up arguments: which hook, and the shared context.
pub struct WebhookArgs {
    pub webhook_id: WebhookId,
    pub ctx: Arc<DeliveryContext>,
}

/// Why an actor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {0} does not exist")]
    Missing(WebhookId),
    #[error("injected fault: {0}")]
    Injected(String),
}

impl Actor for WebhookActor {
    type Msg = WebhookMsg;
    type State = WebhookState;
    type Arguments = WebhookArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WebhookMsg>,
        args: WebhookArgs,
    ) -> Result<WebhookState, ActorProcessingErr> {
        // Everything the actor needs is in the registry: config, failure times and the
        // pending deliveries (which is how a restarted actor resumes its work).
        let registry = args.ctx.registry.read();
        let hook = registry
            .webhook(&args.webhook_id)
            .ok_or_else(|| WebhookError::Missing(args.webhook_id.clone()))?;
        let pending = registry.pending_for(&args.webhook_id);
        let state = WebhookState {
            hook: Arc::new(HookConfig::new(
                hook,
                args.ctx.settings.allow_private_targets,
            )),
            ctx: Arc::clone(&args.ctx),
            queue: Queue::default(),
            failures: hook.recent_failures.clone(),
            breaker: Breaker::default(),
            records: PendingRecords::default(),
            disabled: !hook.enabled(),
            loaded_seq: registry.last_seq(),
            draining: false,
        };
        drop(registry);
        let mut state = state;
        let now = now_ms();
        for delivery in pending {
            set_timer(&myself, state.queue.insert(delivery, now), now);
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<WebhookMsg>,
        state: &mut WebhookState,
    ) -> Result<(), ActorProcessingErr> {
        pump(&myself, state);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WebhookMsg>,
        message: WebhookMsg,
        state: &mut WebhookState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WebhookMsg::Deliver(delivery) => {
                // A freshly spawned actor already loaded this delivery from the registry.
                if delivery.event.seq > state.loaded_seq {
                    let now = now_ms();
                    set_timer(&myself, state.queue.insert(delivery, now), now);
                }
            }
            WebhookMsg::Reconfigure(hook) => {
                let allow_private = state.ctx.settings.allow_private_targets;
                state.hook = Arc::new(HookConfig::new(&hook, allow_private));
                // A changed configuration (a fixed URI, a re-enable) is tried at once.
                state.breaker = Breaker::default();
                state.disabled = !hook.enabled();
                state.failures = hook.recent_failures;
            }
            WebhookMsg::Due(seq) => {
                let now = now_ms();
                set_timer(&myself, state.queue.due(seq, now), now);
            }
            WebhookMsg::Resume => {}
            WebhookMsg::TryDone { event_seq, result } => {
                on_try_done(&myself, state, event_seq, result);
            }
            WebhookMsg::Recorded(tries) => {
                state.records.in_flight = false;
                let now = now_ms();
                for (event_seq, next_try_at_ms) in tries {
                    let timer = match next_try_at_ms {
                        Some(at) => state.queue.retry_at(event_seq, at, true, now),
                        None => state.queue.finish(event_seq, now),
                    };
                    set_timer(&myself, timer, now);
                }
                flush_records(&myself, state);
            }
            WebhookMsg::RecordFailed(event_seqs) => {
                state.records.in_flight = false;
                let now = now_ms();
                let at = now + millis(state.ctx.settings.retry_base);
                for event_seq in event_seqs {
                    set_timer(
                        &myself,
                        state.queue.retry_at(event_seq, at, false, now),
                        now,
                    );
                }
                flush_records(&myself, state);
            }
            WebhookMsg::Drain => state.draining = true,
            WebhookMsg::InjectFault(why) => return Err(Box::new(WebhookError::Injected(why))),
        }
        if state.draining {
            if !state.queue.busy() {
                myself.stop(Some("drained".to_owned()));
            }
            return Ok(());
        }
        pump(&myself, state);
        Ok(())
    }
}

/// Sets a timer the queue asked for: `Due` when the delivery's time comes.
fn set_timer(myself: &ActorRef<WebhookMsg>, timer: Option<Timer>, now: u64) {
    if let Some(timer) = timer {
        let seq = timer.seq;
        myself.send_after(timer.wait(now), move || WebhookMsg::Due(seq));
    }
}

/// Starts the deliveries that may start now, up to the in-flight bound.
fn pump(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    if state.disabled {
        return;
    }
    let configured = state.ctx.settings.max_in_flight_per_hook.max(1);
    let max = state.breaker.allowed_in_flight(now_ms(), configured);
    while let Some(delivery) = state.queue.next_to_start(max) {
        start_try(myself, state, delivery);
    }
}

/// Spawns one HTTP try; its result comes back as `TryDone`.
fn start_try(myself: &ActorRef<WebhookMsg>, state: &WebhookState, delivery: PendingDelivery) {
    let event_seq = delivery.event.seq;
    let ctx = Arc::clone(&state.ctx);
    let hook = Arc::clone(&state.hook);
    let me = myself.clone();
    tokio::spawn(async move {
        let result = try_once(&ctx, &hook, &delivery).await;
        // The actor may have stopped meanwhile (hook disabled or deleted): then the
        // result has no one to act on it, and the registry still holds the delivery if
        // it is still owed.
        let _ = me.cast(WebhookMsg::TryDone { event_seq, result });
    });
}

/// One try: the request built from the hook's configuration and the event, sent once a
/// global permit allows.
async fn try_once(
    ctx: &DeliveryContext,
    hook: &HookConfig,
    delivery: &PendingDelivery,
) -> TryResult {
    let url = match &hook.target {
        Ok(url) => url.clone(),
        Err(e) => return local_failure(e.to_string()),
    };
    let event = &delivery.event;
    let payload = build_payload(
        &event.payload,
        &event.hook_event,
        hook.custom_data.as_ref(),
        hook.kind(),
    );
    let request = match build_request_to(url, hook.verb, hook.format, payload) {
        Ok(r) => r,
        Err(e) => return local_failure(TargetError::Malformed(e).to_string()),
    };
    let headers = DeliveryHeaders::new(
        hook.id.as_str(),
        hook.account_id.as_str(),
        event.event_id.as_str(),
    );
    // Waits for a global permit: the semaphore is never closed, so this only fails if it
    // were, and then the try goes ahead unthrottled.
    let _permit = ctx.tries.acquire().await.ok();
    send_try(
        &ctx.client,
        &request,
        &headers,
        ctx.settings.request_timeout,
        ctx.settings.max_response_body,
    )
    .await
}

/// A try refused before any connection. It counts as a failed try (so a hook that can
/// never be reached is eventually auto-disabled) and is retried like a transport error.
fn local_failure(client_error: String) -> TryResult {
    TryResult::no_answer(client_error, 0)
}

/// Decides what a finished try means, then logs it (and maybe the disable).
fn on_try_done(
    myself: &ActorRef<WebhookMsg>,
    state: &mut WebhookState,
    event_seq: u64,
    result: TryResult,
) {
    let Some(delivery) = state.queue.tried(event_seq).cloned() else {
        return;
    };
    let settings = &state.ctx.settings;
    let now = now_ms();
    let tries_done = delivery.tries_done + 1;
    let retries_left = RetryPolicy::retries_left(state.hook.retries, tries_done);
    let success = result.outcome.is_success();
    let next_try_at_ms = settings.retry_policy().next_try_at(
        &result.outcome,
        tries_done,
        retries_left,
        now,
        &mut rand::rng(),
    );
    let reason = if success {
        None
    } else if result.client_error.is_some() {
        Some("http client error".to_owned())
    } else {
        Some("bad response code".to_owned())
    };
    let attempt = Attempt {
        event_seq,
        event_id: delivery.event.event_id.clone(),
        webhook_id: state.hook.id.clone(),
        account_id: state.hook.account_id.clone(),
        hook_event: delivery.event.hook_event.clone(),
        uri: state.hook.uri().to_owned(),
        method: state.hook.http_verb.clone(),
        result: if success {
            AttemptResult::Success
        } else {
            AttemptResult::Failure
        },
        reason,
        client_error: result.client_error.clone(),
        response_code: result.response_code,
        response_body: result.response_body.clone(),
        retries_left,
        latency_ms: result.latency_ms,
        next_try_at_ms,
    };
    let mut events = vec![Event::DeliveryAttempted(attempt)];
    if let Some(pause) = state.breaker.record(success, now, settings.retry_base) {
        tracing::debug!(webhook_id = %state.hook.id, failures = state.breaker.consecutive_failures(), ?pause, "webhook keeps failing; pausing its tries");
        myself.send_after(pause, || WebhookMsg::Resume);
    }
    if !success {
        state.failures.push_back(now);
        let window_start = now.saturating_sub(millis(settings.failure_window));
        while state.failures.front().is_some_and(|t| *t < window_start) {
            state.failures.pop_front();
        }
        let threshold = usize::try_from(settings.failure_threshold).unwrap_or(usize::MAX);
        if !state.disabled && state.failures.len() >= threshold {
            state.disabled = true;
            tracing::warn!(webhook_id = %state.hook.id, account_id = %state.hook.account_id, failures = state.failures.len(), "auto-disabling webhook");
            events.push(Event::WebhookAutoDisabled {
                account_id: state.hook.account_id.clone(),
                webhook_id: state.hook.id.clone(),
                reason: AUTO_DISABLE_REASON.to_owned(),
            });
            events.push(kazoo_events::webhook_disabled(&state.hook));
        }
    }
    state
        .records
        .waiting
        .push((event_seq, next_try_at_ms, events));
    flush_records(myself, state);
}

/// Attempt records waiting for the log: one append at a time per hook, carrying every
/// try that finished meanwhile (a hook's tries run in parallel, so they bunch up).
#[derive(Debug, Default)]
struct PendingRecords {
    /// Each try's event sequence, retry time and records, in the order they finished.
    waiting: Vec<(u64, Option<u64>, Vec<Event>)>,
    /// An append of earlier ones has not answered yet.
    in_flight: bool,
}

/// Appends the waiting attempt records in one go, unless an append is in flight (its
/// answer calls this again).
fn flush_records(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    if state.records.in_flight || state.records.waiting.is_empty() {
        return;
    }
    state.records.in_flight = true;
    let waiting = std::mem::take(&mut state.records.waiting);
    let mut tries = Vec::with_capacity(waiting.len());
    let mut events = Vec::with_capacity(waiting.len());
    for (event_seq, next_try_at_ms, records) in waiting {
        tries.push((event_seq, next_try_at_ms));
        events.extend(records);
    }
    let log = state.ctx.log.clone();
    let me = myself.clone();
    tokio::spawn(async move {
        let message = match log.append_background(events).await {
            Ok(_) => WebhookMsg::Recorded(tries),
            Err(e) => {
                let event_seqs: Vec<u64> = tries.into_iter().map(|(seq, _)| seq).collect();
                tracing::error!(error = %e, ?event_seqs, "could not log delivery attempts; they will be tried again");
                WebhookMsg::RecordFailed(event_seqs)
            }
        };
        let _ = me.cast(message);
    });
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
