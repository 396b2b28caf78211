//! The retention rule: which records below a retention cut the log may forget.
//!
//! Call events and delivery attempts are forgotten once older than the retention
//! period, except an event still owed to a webhook (its delivery needs its payload, and
//! replay rebuilds the pending set from it); an issued token, and its revocation, are
//! forgotten once the token has expired; configuration history (accounts, keys, webhooks, disables) is kept forever.
//! Like [`index`](crate::index), this is the daemon's meaning of records handed to the
//! event log, which knows no event semantics: the log calls [`RetentionRule::may_forget`]
//! for each record at or below the cut. Choosing the cut (how old is old) and running
//! the prune belong to the daemon's housekeeping; this module does no I/O.

use std::collections::HashSet;

use eventlog::{Event, Record};

/// What may be forgotten, given the deliveries still owed and the retention cutoff.
#[derive(Debug, Clone)]
pub struct RetentionRule {
    /// Sequences of the accepted events that still have a delivery pending
    /// ([`Registry::pending_event_seqs`](crate::Registry::pending_event_seqs)).
    pending: HashSet<u64>,
    /// Unix ms: what is older than this has outlived the retention period.
    cutoff_ms: u64,
}

impl RetentionRule {
    /// The rule for a prune that runs now, with these deliveries still owed.
    pub fn new(pending: HashSet<u64>, cutoff_ms: u64) -> Self {
        RetentionRule { pending, cutoff_ms }
    }

    /// Whether `record` (already known to lie below the cut) may be removed.
    pub fn may_forget(&self, record: &Record) -> bool {
        match &record.event {
            // An event still owed to a webhook stays until it is delivered.
            Event::EventAccepted { .. } => !self.pending.contains(&record.seq),
            Event::DeliveryAttempted(_) => true,
            Event::TokenIssued {
                expires_at,
                expires_at_ms,
                ..
            } => eventlog::token_expiry_ms(*expires_at, *expires_at_ms) < self.cutoff_ms,
            Event::TokenRevoked { expires_at_ms, .. } => *expires_at_ms < self.cutoff_ms,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
