//! The actor's side of resend and recover (see `crate::redelivery`): one page of a
//! redelivery at a time is read from the log, delivered like any other work, and once
//! every delivery of it is finished the cursor's advance is logged before the next page
//! is read. Nothing of a redelivery is read while the hook is disabled, draining, or
//! unable to log its attempts.

use std::collections::HashSet;
use std::sync::Arc;

use eventlog::{now_ms, Event};
use ractor::ActorRef;
use tracing::Instrument;

use super::{set_timer, WebhookMsg, WebhookState};
use crate::redelivery::{next_page, Page, Selector};

/// The redelivery page an actor is delivering.
#[derive(Debug, Default)]
pub(super) struct RedeliveryPage {
    /// A page is being read from the log.
    loading: bool,
    /// The page being delivered.
    pub(super) page: Option<PageInFlight>,
    /// The advance past the page is being appended.
    pub(super) advancing: bool,
    /// A read or an advance failed: a `RetryPage` timer is set.
    pub(super) failing: bool,
}

#[derive(Debug)]
pub(super) struct PageInFlight {
    request_seq: u64,
    next_seq: u64,
    /// The events of the page whose deliveries are not finished yet.
    outstanding: HashSet<u64>,
}

impl RedeliveryPage {
    /// Nothing of a redelivery read, delivered or being logged.
    pub(super) fn is_idle(&self) -> bool {
        !self.loading && self.page.is_none() && !self.advancing
    }

    /// The delivery of event `seq` is finished (delivered, or failed for good).
    pub(super) fn finished(&mut self, seq: u64) {
        if let Some(page) = &mut self.page {
            page.outstanding.remove(&seq);
        }
    }
}

/// Reads the next page of the hook's first redelivery, when there is one and nothing of
/// a redelivery is under way.
pub(super) fn load_page(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    let r = &state.redelivery;
    if !r.is_idle() || r.failing || state.draining || state.records.unwritable {
        return;
    }
    if state.auto_disable.disabled() {
        return;
    }
    // The log applies a record to the registry before its append returns, so after a
    // `PageAdvanced` the registry's cursor is already past the page just delivered.
    let (redelivery, selector) = {
        let registry = state.ctx.registry.read();
        let Some(redelivery) = registry.redelivery_for(&state.hook.id).cloned() else {
            return;
        };
        let Some(hook) = registry.webhook(&state.hook.id) else {
            return;
        };
        let selector = Selector::for_hook(hook, redelivery.undelivered_only);
        (redelivery, selector)
    };
    state.redelivery.loading = true;
    let ctx = Arc::clone(&state.ctx);
    let me = myself.clone();
    tokio::spawn(
        async move {
            let read = tokio::task::spawn_blocking(move || {
                next_page(&ctx.log, &ctx.registry, &selector, &redelivery, now_ms())
            })
            .await;
            let page = match read {
                Ok(Ok(page)) => Some(page),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot read a redelivery page; trying again later");
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "redelivery page reader failed; trying again later");
                    None
                }
            };
            let _ = me.cast(WebhookMsg::PageLoaded(page));
        }
        .instrument(state.span.clone()),
    );
}

/// A page was read: its deliveries join the queue (a delivery already held is not taken
/// twice), and an empty page advances at once.
pub(super) fn on_page_loaded(
    myself: &ActorRef<WebhookMsg>,
    state: &mut WebhookState,
    page: Option<Page>,
) {
    state.redelivery.loading = false;
    let Some(page) = page else {
        retry_page_later(myself, state);
        return;
    };
    let now = now_ms();
    let mut outstanding = HashSet::with_capacity(page.deliveries.len());
    for delivery in page.deliveries {
        let seq = delivery.event.seq;
        if state.queue.contains(seq) {
            continue;
        }
        outstanding.insert(seq);
        set_timer(myself, state.queue.insert(delivery, now), now);
    }
    tracing::debug!(
        request_seq = page.request_seq,
        deliveries = outstanding.len(),
        next_seq = page.next_seq,
        "redelivery page loaded"
    );
    state.redelivery.page = Some(PageInFlight {
        request_seq: page.request_seq,
        next_seq: page.next_seq,
        outstanding,
    });
    advance_if_done(myself, state);
}

/// Logs the advance past the page being delivered once all its deliveries are finished.
pub(super) fn advance_if_done(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    let r = &state.redelivery;
    if r.advancing || r.failing {
        return;
    }
    let Some(page) = &r.page else {
        return;
    };
    if !page.outstanding.is_empty() {
        return;
    }
    let (request_seq, next_seq) = (page.request_seq, page.next_seq);
    state.redelivery.advancing = true;
    let log = state.ctx.log.clone();
    let event = Event::RedeliveryAdvanced {
        webhook_id: state.hook.id.clone(),
        request_seq,
        next_seq,
    };
    let me = myself.clone();
    tokio::spawn(
        async move {
            let written = match log.append_background(vec![event]).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot log a redelivery's progress; writing it again later");
                    false
                }
            };
            let _ = me.cast(WebhookMsg::PageAdvanced(written));
        }
        .instrument(state.span.clone()),
    );
}

/// A read or an advance failed: try again after the record retry wait.
pub(super) fn retry_page_later(myself: &ActorRef<WebhookMsg>, state: &mut WebhookState) {
    if state.redelivery.failing {
        return;
    }
    state.redelivery.failing = true;
    let wait = state.ctx.settings.retry_policy().record_retry_wait();
    myself.send_after(wait, || WebhookMsg::RetryPage);
}
