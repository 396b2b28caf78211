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
//!   in the same log batch as the attempt that crossed the threshold; once that batch
//!   is in the log, the context's observer is told ([`crate::observe`]).
//!
//! This file is the actor shell: messages, state, and handlers that connect pure parts
//! to the mailbox, tasks and timers. The parts: `queue` (which deliveries may start, and
//! the timers to set), `breaker` (the pause after failures in a row), `decision` (what a
//! finished try means: attempt record, retry time, auto-disable), `context` (what
//! every actor shares, and how one try is made with it) and `redeliver` (resend and
//! recover a page at a time). It runs past 500 lines because the mailbox's one `handle`
//! and the append of attempt records it drives read best in one place; everything that
//! can be pure already lives in those parts.

use std::sync::Arc;
use std::time::Duration;

use eventlog::{now_ms, Event, WebhookId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::delivery::TryResult;
use crate::hook_config::HookConfig;
use crate::kazoo_events;
use crate::observe::AutoDisabled;
use crate::redelivery::Page;
use crate::registry::{HookChange, PendingDelivery, AUTO_DISABLE_REASON};

mod breaker;
mod context;
mod decision;
mod queue;
mod redeliver;

use breaker::Breaker;
pub use breaker::BREAKER_FAILURES;
pub use context::{DeliveryContext, DeliverySettings};
use decision::{decide, AutoDisable};
use queue::{Queue, Timer};
use redeliver::{advance_if_done, load_page, on_page_loaded, retry_page_later, RedeliveryPage};

/// Messages of a webhook actor.
#[derive(Debug)]
pub enum WebhookMsg {
    /// A new delivery for this hook.
    Deliver(PendingDelivery),
    /// The hook's configuration changed (it stays enabled): the webhook as it now is.
    Reconfigure(Box<HookChange>),
    /// A scheduled retry is due.
    Due(u64),
    /// The pause after consecutive failed tries is over (see [`BREAKER_FAILURES`]).
    Resume,
    /// A try finished (from the task that ran it).
    TryDone { event_seq: u64, result: TryResult },
    /// The attempt records of these tries are in the log: each try's event sequence
    /// and when it is retried (`None`: the delivery is finished).
    Recorded(Vec<(u64, Option<u64>)>),
    /// The log refused this batch of attempt records: it is written again later (the
    /// tries are not made again: a receiver that answered is not sent the event twice),
    /// and no new try starts until it is written.
    RecordFailed(Vec<WaitingRecord>),
    /// Time to write the refused attempt records again.
    RetryRecords,
    /// A redelivery was asked for: load its first page unless one is being delivered.
    Redeliver,
    /// A redelivery page was read from the log (`None`: the read failed; tried again
    /// after a pause).
    PageLoaded(Option<Page>),
    /// The advance past the page being delivered is in the log (`false`: the append
    /// failed; written again after a pause).
    PageAdvanced(bool),
    /// Time to read or advance a redelivery page again after a failure.
    RetryPage,
    /// Shutdown: start nothing new, stop once the tries in flight are finished and
    /// logged. Deliveries not started stay pending in the log for the next start.
    Drain,
    /// The actor has had nothing to do since the given activity count: it stops if it
    /// still has nothing to do.
    IdleCheck(u64),
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
    breaker: Breaker,
    records: PendingRecords,
    /// Failure times and whether the hook is disabled (by hand, or by this actor:
    /// then nothing more starts).
    auto_disable: AutoDisable,
    /// The registry's last applied sequence when the pending deliveries were loaded:
    /// a `Deliver` for an event at or below it was already known then (pending, or
    /// finished since), so it is not taken again.
    loaded_seq: u64,
    /// Sequence of the record that gave the configuration held (at first, the loaded
    /// registry's): a change at or below it is older than what the actor has.
    config_seq: u64,
    /// The redelivery page being delivered, if any.
    redelivery: RedeliveryPage,
    /// Shutting down: nothing new starts; the actor stops when idle.
    draining: bool,
    /// Messages handled (but `IdleCheck`s): an idle check from before the latest one
    /// finds the actor has been busy since.
    activity: u64,
    /// An `IdleCheck` is on its way.
    idle_check_set: bool,
    /// `webhook{webhook_id, account_id}`: the handlers and every task the actor spawns
    /// run in it, so their logs say which hook they are about.
    span: tracing::Span,
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
            breaker: Breaker::default(),
            records: PendingRecords::default(),
            redelivery: RedeliveryPage::default(),
            auto_disable: AutoDisable::new(hook.recent_failures.clone(), hook.enabled()),
            loaded_seq: registry.last_seq(),
            config_seq: registry.last_seq(),
            draining: false,
            activity: 0,
            idle_check_set: false,
            span: tracing::info_span!("webhook", webhook_id = %hook.id, account_id = %hook.account_id),
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
        load_page(&myself, state);
        watch_idleness(&myself, state);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WebhookMsg>,
        message: WebhookMsg,
        state: &mut WebhookState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        let _in_span = span.enter();
        if let WebhookMsg::IdleCheck(seen) = message {
            state.idle_check_set = false;
            if seen == state.activity && state.is_idle() {
                myself.stop(Some("idle".to_owned()));
            } else {
                watch_idleness(&myself, state);
            }
            return Ok(());
        }
        state.activity = state.activity.wrapping_add(1);
        match message {
            WebhookMsg::Deliver(delivery) => {
                // A freshly spawned actor already loaded this delivery from the registry.
                if delivery.event.seq > state.loaded_seq {
                    let now = now_ms();
                    set_timer(&myself, state.queue.insert(delivery, now), now);
                }
            }
            // A change the registry already held when this actor loaded its hook (its
            // effect was still on the way) would take the actor back to an older state.
            WebhookMsg::Reconfigure(change) if change.seq <= state.config_seq => {}
            WebhookMsg::Reconfigure(change) => {
                state.config_seq = change.seq;
                let hook = change.webhook;
                let allow_private = state.ctx.settings.allow_private_targets;
                state.hook = Arc::new(HookConfig::new(&hook, allow_private));
                // A changed configuration (a fixed URI, a re-enable) is tried at once.
                state.breaker = Breaker::default();
                let enabled = hook.enabled();
                state.auto_disable = AutoDisable::new(hook.recent_failures, enabled);
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
                state.records.unwritable = false;
                let now = now_ms();
                for (event_seq, next_try_at_ms) in tries {
                    let timer = match next_try_at_ms {
                        Some(at) => state.queue.retry_at(event_seq, at, true, now),
                        None => {
                            state.redelivery.finished(event_seq);
                            state.queue.finish(event_seq, now)
                        }
                    };
                    set_timer(&myself, timer, now);
                }
                flush_records(&myself, state);
                advance_if_done(&myself, state);
            }
            WebhookMsg::RecordFailed(mut batch) => {
                state.records.in_flight = false;
                // The refused records go first again, before the ones that came since.
                batch.append(&mut state.records.waiting);
                state.records.waiting = batch;
                state.records.unwritable = true;
                if !state.records.failing {
                    state.records.failing = true;
                    let wait = state.ctx.settings.retry_policy().record_retry_wait();
                    myself.send_after(wait, || WebhookMsg::RetryRecords);
                }
            }
            WebhookMsg::RetryRecords => {
                state.records.failing = false;
                flush_records(&myself, state);
            }
            WebhookMsg::Redeliver => {}
            WebhookMsg::PageLoaded(page) => on_page_loaded(&myself, state, page),
            WebhookMsg::PageAdvanced(written) => {
                state.redelivery.advancing = false;
                if written {
                    state.redelivery.page = None;
                } else {
                    retry_page_later(&myself, state);
                }
            }
            WebhookMsg::RetryPage => {
                state.redelivery.failing = false;
                advance_if_done(&myself, state);
            }
            WebhookMsg::Drain => state.draining = true,
            WebhookMsg::InjectFault(why) => return Err(Box::new(WebhookError::Injected(why))),
            WebhookMsg::IdleCheck(_) => {}
        }
        if state.draining {
            if !state.queue.busy() {
                myself.stop(Some("drained".to_owned()));
            }
            return Ok(());
        }
        pump(&myself, state);
        load_page(&myself, state);
        watch_idleness(&myself, state);
        Ok(())
    }
}

/// How long a webhook actor with nothing to do lives on before it stops, in the daemon.
pub const IDLE_STOP: Duration = Duration::from_secs(60);

impl WebhookState {
    /// Nothing owed, nothing in flight, nothing waiting for the log, no redelivery.
    fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && !self.records.in_flight
            && self.records.waiting.is_empty()
            && !self.draining
            && self.redelivery.is_idle()
            && self
                .ctx
                .registry
                .read()
                .redelivery_for(&self.hook.id)
                .is_none()
    }
}

/// Sets an idle check when the actor has nothing to do (one at a time).
fn watch_idleness(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    if state.idle_check_set || !state.is_idle() {
        return;
    }
    state.idle_check_set = true;
    let seen = state.activity;
    myself.send_after(state.ctx.settings.idle_stop, move || {
        WebhookMsg::IdleCheck(seen)
    });
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
    // While the log refuses attempt records, a new try's outcome could not be recorded
    // either: nothing starts until the waiting records are written.
    if state.auto_disable.disabled() || state.records.unwritable {
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
    tokio::spawn(
        async move {
            let result = ctx.try_delivery(&hook, &delivery).await;
            // The actor may have stopped meanwhile (hook disabled or deleted): then the
            // result has no one to act on it, and the registry still holds the delivery
            // if it is still owed.
            let _ = me.cast(WebhookMsg::TryDone { event_seq, result });
        }
        .instrument(state.span.clone()),
    );
}

/// Decides what a finished try means, then logs it (and maybe the disable).
fn on_try_done(
    myself: &ActorRef<WebhookMsg>,
    state: &mut WebhookState,
    event_seq: u64,
    result: TryResult,
) {
    let Some(delivery) = state.queue.tried(event_seq) else {
        return;
    };
    let settings = &state.ctx.settings;
    let now = now_ms();
    let latency = Duration::from_millis(result.latency_ms);
    let decision = decide(
        &state.hook,
        delivery,
        result,
        now,
        settings,
        &mut state.auto_disable,
        &mut rand::rng(),
    );
    state.ctx.observer.try_finished(decision.success, latency);
    let pause = if decision.local_fault {
        None
    } else {
        state
            .breaker
            .record(decision.success, now, settings.retry_base)
    };
    if let Some(pause) = pause {
        tracing::debug!(webhook_id = %state.hook.id, failures = state.breaker.consecutive_failures(), ?pause, "webhook keeps failing; pausing its tries");
        myself.send_after(pause, || WebhookMsg::Resume);
    }
    let mut events = vec![Event::DeliveryAttempted(decision.attempt)];
    if decision.disables_hook {
        tracing::warn!(webhook_id = %state.hook.id, account_id = %state.hook.account_id, failures = state.auto_disable.failures(), "auto-disabling webhook");
        events.push(Event::WebhookAutoDisabled {
            account_id: state.hook.account_id.clone(),
            webhook_id: state.hook.id.clone(),
            reason: AUTO_DISABLE_REASON.to_owned(),
        });
        events.push(kazoo_events::webhook_disabled(&state.hook));
    }
    state
        .records
        .waiting
        .push((event_seq, decision.next_try_at_ms, events));
    flush_records(myself, state);
}

/// One finished try waiting for the log: its event sequence, when it is retried, and
/// its records (the attempt, and maybe the disable and its notification).
pub type WaitingRecord = (u64, Option<u64>, Vec<Event>);

/// Attempt records waiting for the log: one append at a time per hook, carrying every
/// try that finished meanwhile (a hook's tries run in parallel, so they bunch up).
#[derive(Debug, Default)]
struct PendingRecords {
    /// The finished tries, in the order they finished.
    waiting: Vec<WaitingRecord>,
    /// An append of earlier ones has not answered yet.
    in_flight: bool,
    /// The log refused an append: a `RetryRecords` timer is set.
    failing: bool,
    /// The log refused the last append: no new try starts until an append succeeds.
    unwritable: bool,
}

/// Appends the waiting attempt records in one go, unless an append is in flight (its
/// answer calls this again).
fn flush_records(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    if state.records.in_flight || state.records.failing || state.records.waiting.is_empty() {
        return;
    }
    state.records.in_flight = true;
    let waiting = std::mem::take(&mut state.records.waiting);
    let tries: Vec<(u64, Option<u64>)> = waiting
        .iter()
        .map(|(event_seq, next_try_at_ms, _)| (*event_seq, *next_try_at_ms))
        .collect();
    // The records are kept until the log has them: a refused append is written again
    // (never the try made again), so each is cloned for the append.
    let events: Vec<Event> = waiting
        .iter()
        .flat_map(|(_, _, records)| records.iter().cloned())
        .collect();
    let disabled = auto_disables(state, &events);
    let ctx = Arc::clone(&state.ctx);
    let me = myself.clone();
    tokio::spawn(
        async move {
            let message = match ctx.log.append_background(events).await {
                Ok(_) => {
                    // Durable now: the alert may go.
                    for disabled in &disabled {
                        ctx.observer.webhook_auto_disabled(disabled);
                    }
                    WebhookMsg::Recorded(tries)
                }
                Err(e) => {
                    tracing::error!(error = %e, tries = waiting.len(), "cannot log delivery attempts; writing them again later, no new try starts meanwhile");
                    WebhookMsg::RecordFailed(waiting)
                }
            };
            let _ = me.cast(message);
        }
        .instrument(state.span.clone()),
    );
}

/// The auto-disables among `events` (a batch of this hook's records), for the observer.
fn auto_disables(state: &WebhookState, events: &[Event]) -> Vec<AutoDisabled> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::WebhookAutoDisabled {
                account_id,
                webhook_id,
                reason,
            } => Some(AutoDisabled {
                account_id: account_id.clone(),
                webhook_id: webhook_id.clone(),
                name: state.hook.name.clone(),
                uri: state.hook.uri.clone(),
                reason: reason.clone(),
                failures: state.auto_disable.failures(),
                at_ms: state.auto_disable.last_failure_ms().unwrap_or_else(now_ms),
            }),
            _ => None,
        })
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
