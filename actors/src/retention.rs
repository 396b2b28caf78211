//! The retention rule: which records below a retention cut the log may forget.
//!
//! Call events and delivery attempts are forgotten once older than the retention
//! period, except an event still owed to a webhook (its delivery needs its payload, and
//! replay rebuilds the pending set from it); an issued token, and its revocation, are
//! forgotten once the token has expired. Configuration history is compacted, not
//! forgotten: of the updates of an account's or webhook's document, only the one that
//! holds its current document stays (every PATCH would otherwise be kept forever), and
//! the updates (and secrets) of a deleted webhook or account go; creations, deletions, key changes,
//! disables and re-enables all stay (a webhook's creation holds its id for good, so
//! ids are never reused). An unfinished resend or recover keeps its request, its
//! progress and the events it has not reached; a finished one ages out like attempts. Replaying what is left gives every live document as it is.
//! Like [`index`](crate::index), this is the daemon's meaning of records handed to the
//! event log, which knows no event semantics: the log calls [`RetentionRule::may_forget`]
//! for each record at or below the cut. Choosing the cut (how old is old) and running
//! the prune belong to the daemon's housekeeping; this module does no I/O.

use std::collections::{HashMap, HashSet};

use eventlog::{AccountId, Event, Record, WebhookId};

use crate::registry::Registry;

/// What may be forgotten, given the deliveries still owed, the current documents and
/// the retention cutoff.
#[derive(Debug, Clone)]
pub struct RetentionRule {
    /// Sequences of the accepted events that still have a delivery pending
    /// ([`Registry::pending_event_seqs`](crate::Registry::pending_event_seqs)).
    pending: HashSet<u64>,
    /// The request records of the unfinished redeliveries, and the lowest event sequence
    /// one of them still owes ([`Registry::redelivery_pins`]).
    redeliveries: (HashSet<u64>, Option<u64>),
    /// Each live account's and webhook's current-document record
    /// ([`Registry::current_document_seqs`]); `None`: configuration is not compacted.
    documents: Option<(HashMap<AccountId, u64>, HashMap<WebhookId, u64>)>,
    /// Unix ms: what is older than this has outlived the retention period.
    cutoff_ms: u64,
}

impl RetentionRule {
    /// The rule for a prune that runs now, with these deliveries still owed and no
    /// configuration compaction.
    pub fn new(pending: HashSet<u64>, cutoff_ms: u64) -> Self {
        RetentionRule {
            pending,
            redeliveries: (HashSet::new(), None),
            documents: None,
            cutoff_ms,
        }
    }

    /// The rule for a prune that runs now against `registry`: its owed deliveries and
    /// its current documents.
    pub fn for_registry(registry: &Registry, cutoff_ms: u64) -> Self {
        RetentionRule {
            pending: registry.pending_event_seqs(),
            redeliveries: registry.redelivery_pins(),
            documents: Some(registry.current_document_seqs()),
            cutoff_ms,
        }
    }

    /// A document update at `seq` is superseded: its subject is gone, or a later record
    /// holds its current document. A subject whose current record is unknown (0: from a
    /// snapshot older than this rule) keeps every update.
    fn superseded(current: Option<&u64>, seq: u64) -> bool {
        match current {
            None => true,
            Some(0) => false,
            Some(current) => *current > seq,
        }
    }

    /// Whether `record` (already known to lie below the cut) may be removed.
    pub fn may_forget(&self, record: &Record) -> bool {
        match &record.event {
            // An event still owed to a webhook stays until it is delivered, and so do the
            // events an unfinished redelivery has not reached yet.
            Event::EventAccepted { .. } => {
                !self.pending.contains(&record.seq)
                    && self.redeliveries.1.is_none_or(|floor| record.seq < floor)
            }
            // A redelivery's request and progress go once it is finished.
            Event::RedeliveryRequested { .. } => !self.redeliveries.0.contains(&record.seq),
            Event::RedeliveryAdvanced { request_seq, .. } => {
                !self.redeliveries.0.contains(request_seq)
            }
            Event::DeliveryAttempted(_) => true,
            Event::TokenIssued {
                expires_at,
                expires_at_ms,
                ..
            } => eventlog::token_expiry_ms(*expires_at, *expires_at_ms) < self.cutoff_ms,
            Event::TokenRevoked { expires_at_ms, .. } => *expires_at_ms < self.cutoff_ms,
            Event::WebhookUpdated { webhook_id, .. } => self
                .documents
                .as_ref()
                .is_some_and(|(_, hooks)| Self::superseded(hooks.get(webhook_id), record.seq)),
            // A deleted webhook's secrets are of no use to anyone; a live one keeps its
            // history (rotations are rare, and the previous secret signs during overlap).
            Event::WebhookSecretSet { webhook_id, .. } => self
                .documents
                .as_ref()
                .is_some_and(|(_, hooks)| !hooks.contains_key(webhook_id)),
            Event::AccountUpdated { account_id, .. } => {
                self.documents.as_ref().is_some_and(|(accounts, _)| {
                    Self::superseded(accounts.get(account_id), record.seq)
                })
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
