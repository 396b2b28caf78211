//! `Router`: the parent of every `WebhookActor`. It turns registry effects into actor
//! work: deliveries go to the hook's actor (spawned on demand, so idle hooks cost no
//! actor), configuration changes reconfigure or stop it.
//!
//! Supervision is ours: a child that fails is restarted by [`RestartPolicy`] (at most
//! `max_restarts` within `window`, with exponential backoff); past that the hook stays
//! down until its configuration changes, and its deliveries stay pending in the registry.
//! A restarted child reloads its pending deliveries from the registry, so nothing owed
//! is lost (tries that were in flight are made again: at-least-once).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::WebhookId;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::registry::{Effect, HookChange};
use crate::webhook::{DeliveryContext, WebhookActor, WebhookArgs, WebhookMsg};

/// How failed children are restarted.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// Restarts allowed within `window` before giving up.
    pub max_restarts: usize,
    pub window: Duration,
    /// Delay before the first restart; doubles with each restart in the window.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RestartPolicy {
    /// The delay before restart number `n` (1-based) within the window.
    pub fn delay(&self, n: usize) -> Duration {
        let factor = 1u32 << u32::try_from(n.saturating_sub(1).min(16)).unwrap_or(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Messages of the router.
#[derive(Debug)]
pub enum RouterMsg {
    /// Effects of committed records, in log order.
    Effects(Vec<Effect>),
    /// Restart a failed child (sent by the restart policy's timer).
    Respawn(WebhookId),
    /// The actor currently running a hook, if any.
    ChildOf(WebhookId, RpcReplyPort<Option<ActorRef<WebhookMsg>>>),
    /// How many times a hook's actor has been restarted after failing.
    RestartCount(WebhookId, RpcReplyPort<usize>),
    /// Shutdown: drain every child (tries in flight finish and are logged, nothing new
    /// starts) and answer once all have stopped. New deliveries stay pending in the log.
    Drain(RpcReplyPort<()>),
    /// Start an actor for every hook with deliveries owed from before the start, if the
    /// router was started without (the daemon asks once its API is up, so a backlog
    /// never stands between a restart and the operator).
    ResumePending,
    /// Fault injection: the handler returns this error, so the router fails and the
    /// projection's supervisor restarts it. Used by tests and chaos drills.
    InjectFault(String),
}

/// Why the router's handler failed.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("injected fault: {0}")]
    Injected(String),
}

/// Start-up arguments of the router.
pub struct RouterArgs {
    pub ctx: Arc<DeliveryContext>,
    pub policy: RestartPolicy,
    /// Start actors for the deliveries owed from before at once (otherwise on
    /// [`RouterMsg::ResumePending`]).
    pub resume_pending: bool,
}

/// The router's state: its children and their restart history.
pub struct RouterState {
    ctx: Arc<DeliveryContext>,
    policy: RestartPolicy,
    children: HashMap<WebhookId, ActorRef<WebhookMsg>>,
    by_actor: HashMap<ActorId, WebhookId>,
    restarts: HashMap<WebhookId, VecDeque<Instant>>,
    restart_totals: HashMap<WebhookId, usize>,
    given_up: HashSet<WebhookId>,
    /// Set by `Drain`: answered when the last child stops.
    draining: Option<RpcReplyPort<()>>,
    /// Set by `Drain` for good: no child is started any more.
    shutting_down: bool,
    /// Resume the deliveries owed from before the start as the router starts
    /// ([`RouterArgs::resume_pending`]); otherwise on [`RouterMsg::ResumePending`].
    resume_at_start: bool,
    /// The deliveries owed from before the start have been resumed.
    resumed: bool,
}

/// The router actor.
pub struct Router;

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        Ok(RouterState {
            ctx: args.ctx,
            policy: args.policy,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: HashMap::new(),
            restart_totals: HashMap::new(),
            given_up: HashSet::new(),
            draining: None,
            shutting_down: false,
            resume_at_start: args.resume_pending,
            resumed: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        if state.resume_at_start && !state.resumed {
            resume_pending(&myself, state).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        message: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Effects(effects) => {
                for effect in effects {
                    match effect {
                        Effect::Deliver(delivery) => {
                            let id = delivery.webhook_id.clone();
                            match state.children.get(&id) {
                                Some(child) => {
                                    if child.cast(WebhookMsg::Deliver(delivery)).is_err() {
                                        forget_child(state, &id);
                                        spawn_child(&myself, state, id).await;
                                    }
                                }
                                // A new actor loads this delivery from the registry.
                                None => spawn_child(&myself, state, id).await,
                            }
                        }
                        Effect::HookChanged(change) => {
                            let id = change.webhook.id.clone();
                            let was_given_up = fresh_start(state, &id);
                            let owed = was_given_up && change.owes_deliveries;
                            hook_changed(state, change);
                            if owed {
                                spawn_child(&myself, state, id).await;
                            }
                        }
                        Effect::HookRemoved(id) => {
                            fresh_start(state, &id);
                            stop_child(state, &id);
                        }
                        Effect::Redeliver(id) => match state.children.get(&id) {
                            Some(child) => {
                                if child.cast(WebhookMsg::Redeliver).is_err() {
                                    forget_child(state, &id);
                                    spawn_child(&myself, state, id).await;
                                }
                            }
                            // A new actor starts the redelivery from the registry.
                            None => spawn_child(&myself, state, id).await,
                        },
                    }
                }
            }
            RouterMsg::Respawn(id) => {
                if !state.children.contains_key(&id) {
                    spawn_child(&myself, state, id).await;
                }
            }
            RouterMsg::ChildOf(id, reply) => {
                let _ = reply.send(state.children.get(&id).cloned());
            }
            RouterMsg::RestartCount(id, reply) => {
                let _ = reply.send(state.restart_totals.get(&id).copied().unwrap_or(0));
            }
            RouterMsg::ResumePending => {
                if !state.resumed {
                    resume_pending(&myself, state).await;
                }
            }
            RouterMsg::InjectFault(why) => return Err(Box::new(RouterError::Injected(why))),
            RouterMsg::Drain(reply) => {
                tracing::info!(children = state.children.len(), "draining webhook actors");
                for child in state.children.values() {
                    let _ = child.cast(WebhookMsg::Drain);
                }
                state.draining = Some(reply);
                state.shutting_down = true;
                answer_drain_when_idle(state);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RouterMsg>,
        event: SupervisionEvent,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        // Overrides ractor's default, which would stop the router when a child dies.
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(id) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                state.children.remove(&id);
                let now = Instant::now();
                let history = state.restarts.entry(id.clone()).or_default();
                while history
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > state.policy.window)
                {
                    history.pop_front();
                }
                history.push_back(now);
                let n = history.len();
                if n > state.policy.max_restarts {
                    tracing::error!(webhook_id = %id, %error, restarts = n - 1, "webhook actor keeps failing; not restarting it until its configuration changes");
                    state.given_up.insert(id);
                } else {
                    let delay = state.policy.delay(n);
                    tracing::warn!(webhook_id = %id, %error, ?delay, "webhook actor failed; restarting");
                    *state.restart_totals.entry(id.clone()).or_default() += 1;
                    myself.send_after(delay, move || RouterMsg::Respawn(id));
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(id) = state.by_actor.remove(&cell.get_id()) {
                    if state
                        .children
                        .get(&id)
                        .is_some_and(|c| c.get_id() == cell.get_id())
                    {
                        state.children.remove(&id);
                        // An actor that stopped while work was still owed (an idle stop
                        // that crossed a new delivery in its mailbox) is replaced; a
                        // disabled or deleted hook owes nothing, and a drain starts none.
                        let owed = state.ctx.registry.read().has_pending(&id);
                        if owed {
                            spawn_child(&myself, state, id).await;
                        }
                    }
                }
            }
            _ => {}
        }
        answer_drain_when_idle(state);
        Ok(())
    }
}

/// Resumes every delivery still owed after replay: one actor per hook with work.
async fn resume_pending(myself: &ActorRef<RouterMsg>, state: &mut RouterState) {
    state.resumed = true;
    let owed: Vec<WebhookId> = {
        let registry = state.ctx.registry.read();
        registry
            .webhooks()
            .filter(|h| h.enabled() && registry.has_pending(&h.id))
            .map(|h| h.id.clone())
            .collect()
    };
    tracing::info!(hooks = owed.len(), "resuming pending deliveries");
    for id in owed {
        spawn_child(myself, state, id).await;
    }
}

/// Answers a pending `Drain` once no child is left.
fn answer_drain_when_idle(state: &mut RouterState) {
    if state.children.is_empty() {
        if let Some(reply) = state.draining.take() {
            let _ = reply.send(());
        }
    }
}

/// A changed configuration gets a fresh start: restart history forgotten if the router
/// had given up on the hook (its held deliveries may resume). Returns whether it had.
fn fresh_start(state: &mut RouterState, id: &WebhookId) -> bool {
    let was_given_up = state.given_up.remove(id);
    if was_given_up {
        state.restarts.remove(id);
    }
    was_given_up
}

/// Hands the hook's actor its new configuration, or stops it when the hook is disabled.
fn hook_changed(state: &mut RouterState, change: Box<HookChange>) {
    let id = change.webhook.id.clone();
    if change.webhook.enabled() {
        if let Some(child) = state.children.get(&id) {
            let _ = child.cast(WebhookMsg::Reconfigure(change));
        }
    } else {
        stop_child(state, &id);
    }
}

/// Stops the hook's actor, if one runs (the hook was disabled or deleted).
fn stop_child(state: &mut RouterState, id: &WebhookId) {
    if let Some(child) = state.children.get(id) {
        child.stop(Some("webhook disabled or deleted".to_owned()));
        forget_child(state, id);
    }
}

fn forget_child(state: &mut RouterState, id: &WebhookId) {
    if let Some(child) = state.children.remove(id) {
        state.by_actor.remove(&child.get_id());
    }
}

/// Spawns the actor of an enabled hook, linked to the router.
async fn spawn_child(myself: &ActorRef<RouterMsg>, state: &mut RouterState, id: WebhookId) {
    if state.given_up.contains(&id) || state.children.contains_key(&id) {
        return;
    }
    if state.shutting_down {
        return; // shutting down: the delivery stays pending in the log
    }
    let enabled = state
        .ctx
        .registry
        .read()
        .webhook(&id)
        .is_some_and(|h| h.enabled());
    if !enabled {
        return;
    }
    let args = WebhookArgs {
        webhook_id: id.clone(),
        ctx: Arc::clone(&state.ctx),
    };
    match Actor::spawn_linked(None, WebhookActor, args, myself.get_cell()).await {
        Ok((child, _handle)) => {
            state.by_actor.insert(child.get_id(), id.clone());
            state.children.insert(id, child);
        }
        Err(e) => tracing::error!(webhook_id = %id, error = %e, "cannot start webhook actor"),
    }
}

#[cfg(test)]
mod tests;
