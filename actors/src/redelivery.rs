//! Resend and recover: delivering logged events to a webhook again, streamed from the log.
//!
//! A `RedeliveryRequested` record names a range of log sequences and a webhook; the
//! registry keeps it as a [`Redelivery`] (a cursor: where the next page starts) until a
//! `RedeliveryAdvanced` record moves the cursor past the range's end. The webhook actor
//! loads one [`Page`] at a time ([`next_page`]: at most [`PAGE_EVENTS`] events, or
//! [`PAGE_RECORDS`] records read), delivers it like any other work (per-call order,
//! fairness, breaker), and logs the advance once every delivery of the page is finished.
//! Memory holds one page per webhook, whatever the window; after a crash the page is
//! made again (at-least-once), skipping what was delivered meanwhile when the request
//! asked only for undelivered events.
//!
//! Which events a webhook owes ([`Selector`]): the accepted events it matches with its
//! configuration as it is now (its account's own events, and its subaccounts' when it
//! includes them), and when `undelivered_only` those without a successful attempt to it
//! (the `DELIVERED` index). Must not: decide anything about a try (that is the actor's).

use std::sync::Arc;

use eventlog::{AccountId, Event, EventLog, LogError, Record, WebhookId};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::index::{delivered_key, DELIVERED};
use crate::matching::HookMatcher;
use crate::registry::{AcceptedEvent, PendingDelivery, Registry, Webhook};

/// Redeliveries one webhook may have queued; the API refuses more until some finish.
pub const MAX_REDELIVERIES_PER_HOOK: usize = 64;

/// The most events one page holds: what a webhook actor keeps in memory for a redelivery.
pub const PAGE_EVENTS: usize = 256;

/// The most records one page reads: a window of events the hook does not match ends the
/// page early (with nothing to deliver) instead of one read walking the whole window.
pub const PAGE_RECORDS: usize = 20_000;

/// One unfinished redelivery of one webhook (registry state, kept in snapshots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redelivery {
    /// Sequence of its `RedeliveryRequested` record: its identity.
    pub request_seq: u64,
    /// Where the next page starts.
    pub next_seq: u64,
    /// The last sequence of the range.
    pub until_seq: u64,
    /// Only events the webhook did not receive with success.
    pub undelivered_only: bool,
}

/// Which accepted events a webhook owes.
#[derive(Debug, Clone)]
pub struct Selector {
    owner: AccountId,
    webhook_id: WebhookId,
    include_subaccounts: bool,
    matcher: HookMatcher,
    undelivered_only: bool,
}

impl Selector {
    /// The events `hook`, configured as it is now, matches (and did not receive, when
    /// `undelivered_only`).
    pub fn for_hook(hook: &Webhook, undelivered_only: bool) -> Selector {
        Selector {
            owner: hook.account_id.clone(),
            webhook_id: hook.id.clone(),
            include_subaccounts: hook.include_subaccounts(),
            matcher: HookMatcher::compile(&hook.doc),
            undelivered_only,
        }
    }

    /// Whether the webhook owes the accepted event at `seq`.
    fn wants(
        &self,
        log: &EventLog,
        registry: &RwLock<Registry>,
        seq: u64,
        account: &AccountId,
        hook_event: &str,
        payload: &Map<String, Value>,
    ) -> Result<bool, LogError> {
        let reaches = *account == self.owner
            || (self.include_subaccounts && registry.read().is_in_subtree(&self.owner, account));
        if !reaches {
            return Ok(false);
        }
        if !self.matcher.accepts(hook_event, payload) {
            return Ok(false);
        }
        if !self.undelivered_only {
            return Ok(true);
        }
        let key = delivered_key(&self.owner, &self.webhook_id, seq);
        Ok(log.scan_index(DELIVERED, &key, None, true, 1)?.is_empty())
    }
}

/// A page of a redelivery: the deliveries to make, and where the next page starts.
#[derive(Debug)]
pub struct Page {
    /// The redelivery's request record.
    pub request_seq: u64,
    pub deliveries: Vec<PendingDelivery>,
    pub next_seq: u64,
}

/// Reads the next page of `redelivery` for the webhook `selector` describes, starting
/// its deliveries at `now` (Unix ms). Blocking (reads the log): run it off the runtime.
pub fn next_page(
    log: &EventLog,
    registry: &RwLock<Registry>,
    selector: &Selector,
    redelivery: &Redelivery,
    now: u64,
) -> Result<Page, LogError> {
    let mut deliveries = Vec::new();
    let next_seq = walk(
        log,
        registry,
        selector,
        redelivery.next_seq,
        redelivery.until_seq,
        PAGE_EVENTS,
        PAGE_RECORDS,
        |record| {
            if let Some(event) = accepted_event(record) {
                deliveries.push(PendingDelivery {
                    event: Arc::new(event),
                    webhook_id: selector.webhook_id.clone(),
                    tries_done: 0,
                    next_try_at_ms: now,
                });
            }
        },
    )?;
    Ok(Page {
        request_seq: redelivery.request_seq,
        deliveries,
        next_seq,
    })
}

/// How many events of `from_seq..=until_seq` the webhook owes: one streaming pass over
/// the range (memory does not grow with it). Blocking: run it off the runtime.
pub fn count(
    log: &EventLog,
    registry: &RwLock<Registry>,
    selector: &Selector,
    from_seq: u64,
    until_seq: u64,
) -> Result<u64, LogError> {
    let mut n = 0u64;
    walk(
        log,
        registry,
        selector,
        from_seq,
        until_seq,
        usize::MAX,
        usize::MAX,
        |_| n += 1,
    )?;
    Ok(n)
}

/// Visits the owed events of `from_seq..=until_seq` in log order, stopping after
/// `max_events` of them or `max_records` records read. Returns where to go on from
/// (`until_seq + 1` once the range is done).
#[allow(clippy::too_many_arguments)]
fn walk(
    log: &EventLog,
    registry: &RwLock<Registry>,
    selector: &Selector,
    from_seq: u64,
    until_seq: u64,
    max_events: usize,
    max_records: usize,
    mut visit: impl FnMut(&Record),
) -> Result<u64, LogError> {
    let done = until_seq.saturating_add(1);
    let mut events = 0usize;
    for (read, record) in log.iter_from(from_seq).enumerate() {
        let record = record?;
        if record.seq > until_seq {
            return Ok(done);
        }
        if read == max_records {
            return Ok(record.seq);
        }
        let Event::EventAccepted {
            account_id,
            hook_event,
            payload,
            ..
        } = &record.event
        else {
            continue;
        };
        let empty = Map::new();
        let payload_map = payload.as_object().unwrap_or(&empty);
        if selector.wants(
            log,
            registry,
            record.seq,
            account_id,
            hook_event,
            payload_map,
        )? {
            visit(&record);
            events += 1;
            if events == max_events {
                return Ok(record.seq.saturating_add(1).min(done));
            }
        }
    }
    Ok(done)
}

/// The accepted event a record holds, as the registry keeps one for delivery.
fn accepted_event(record: &Record) -> Option<AcceptedEvent> {
    let Event::EventAccepted {
        event_id,
        account_id,
        hook_event,
        payload,
    } = &record.event
    else {
        return None;
    };
    Some(AcceptedEvent {
        seq: record.seq,
        event_id: event_id.clone(),
        account_id: account_id.clone(),
        hook_event: hook_event.clone(),
        payload: payload.as_object().cloned().unwrap_or_default(),
        accepted_ms: record.time_ms,
    })
}

/// The first record at or after `seq` (pruned sequences are skipped).
fn record_from(log: &EventLog, seq: u64) -> Result<Option<Record>, LogError> {
    log.iter_from(seq).next().transpose()
}

/// The lowest sequence whose record was appended at or after `time_ms` (Unix ms), or
/// `None` when every record is older. Binary search over the log (append times only grow
/// with the sequence, as the single writer stamps them): O(log n) reads.
pub fn first_seq_at_or_after(log: &EventLog, time_ms: u64) -> Result<Option<u64>, LogError> {
    let last = log.last_seq();
    let (mut lo, mut hi) = (1u64, last.saturating_add(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match record_from(log, mid)? {
            Some(record) if record.time_ms >= time_ms => hi = mid,
            Some(record) => lo = record.seq.saturating_add(1),
            None => hi = mid,
        }
    }
    if lo > last {
        return Ok(None);
    }
    Ok(record_from(log, lo)?.map(|r| r.seq))
}

/// The sequence range of the records appended within `since_ms..=until_ms`, if any.
pub fn seq_range(
    log: &EventLog,
    since_ms: u64,
    until_ms: u64,
) -> Result<Option<(u64, u64)>, LogError> {
    let Some(from) = first_seq_at_or_after(log, since_ms)? else {
        return Ok(None);
    };
    let until = match first_seq_at_or_after(log, until_ms.saturating_add(1))? {
        Some(after) => after.saturating_sub(1),
        None => log.last_seq(),
    };
    Ok((from <= until).then_some((from, until)))
}

#[cfg(test)]
mod tests;
