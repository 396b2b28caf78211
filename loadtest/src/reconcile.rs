//! Reconciliation and the run's verdict.
//!
//! [`reconcile`] matches the `(event, hook)` pairs the run expected (every accepted
//! event × the healthy hooks of its account) against what the receiver recorded: pairs
//! received, missing, duplicated, and the pairs nobody expected, told apart: those of
//! an event whose batch timed out (it may be in the log, so its own hooks may get it)
//! and the misdirected ones (a hook that should not have had the event: another
//! account's, or an event that was refused or never sent).
//!
//! [`failures`] is the verdict: every reason the run failed, in words, from the
//! assembled report. A run passes only when every event sent was accepted, every
//! expected pair arrived once (duplicates counted until the end of the quiet window,
//! [`crate::quiet`]), nothing went where it should not, the receiver knew every request
//! and went quiet after the last expected delivery, and nothing timed out. Deciding only: it neither waits nor formats the report.

use std::collections::HashMap;

use serde::Serialize;

use crate::receiver::PairRecord;
use crate::report::Report;

/// How many misdirected pairs [`reconcile`] keeps as examples.
pub(crate) const MAX_EXAMPLES: usize = 10;

/// Expected versus received pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Reconciliation {
    /// Accepted events × the healthy hooks of their account.
    pub expected_pairs: u64,
    /// Expected pairs answered 2xx at least once.
    pub received_pairs: u64,
    /// Expected pairs never answered 2xx.
    pub missing: u64,
    /// 2xx receipts of an expected pair beyond its first.
    pub duplicates: u64,
    /// Requests answered 500 by `--receiver-error-rate` (each one a retry the daemon
    /// owed, not a duplicate).
    pub injected_500s: u64,
    /// Pairs the receiver saw that were not expected: `timed_out_pairs` plus
    /// `misdirected_pairs`.
    pub unexpected_pairs: u64,
    /// Requests of those pairs.
    pub unexpected_requests: u64,
    /// Unexpected pairs of an event whose batch timed out (it may be in the log), to
    /// one of its account's healthy hooks: consistent with the daemon having appended
    /// it; the timeout itself fails the run.
    pub timed_out_pairs: u64,
    /// Pairs to a hook that should not have had the event: a hook of another account,
    /// or an event that was refused or never sent.
    pub misdirected_pairs: u64,
    /// Requests of those pairs.
    pub misdirected_requests: u64,
    /// Up to ten misdirected pairs, as `(event index, hook index)`.
    #[serde(skip)]
    pub misdirected_keys: Vec<u64>,
}

impl Reconciliation {
    /// Every expected pair arrived, once.
    pub(crate) fn complete(&self) -> bool {
        self.missing == 0 && self.duplicates == 0
    }
}

/// What an unexpected pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unexpected {
    /// Of an event whose batch timed out, to one of its own healthy hooks.
    OfTimedOutBatch,
    /// To a hook that should not have had it.
    Misdirected,
}

/// Matches the expected pairs (unique keys) against what the receiver recorded; calls
/// `on_received` for each expected pair that was received, and `classify` for each
/// pair the receiver saw that was not expected.
pub(crate) fn reconcile(
    expected: impl IntoIterator<Item = u64>,
    records: &HashMap<u64, PairRecord>,
    classify: impl Fn(u64) -> Unexpected,
    mut on_received: impl FnMut(u64, &PairRecord),
) -> Reconciliation {
    let mut r = Reconciliation::default();
    let mut matched = std::collections::HashSet::new();
    for key in expected {
        r.expected_pairs += 1;
        let Some(record) = records.get(&key) else {
            r.missing += 1;
            continue;
        };
        matched.insert(key);
        r.injected_500s += u64::from(record.injected_errors);
        if record.ok == 0 {
            r.missing += 1;
            continue;
        }
        r.received_pairs += 1;
        r.duplicates += u64::from(record.ok - 1);
        on_received(key, record);
    }
    let mut misdirected: Vec<u64> = Vec::new();
    for (&key, record) in records {
        if matched.contains(&key) {
            continue;
        }
        let requests = u64::from(record.ok) + u64::from(record.injected_errors);
        r.unexpected_pairs += 1;
        r.unexpected_requests += requests;
        match classify(key) {
            Unexpected::OfTimedOutBatch => r.timed_out_pairs += 1,
            Unexpected::Misdirected => {
                r.misdirected_pairs += 1;
                r.misdirected_requests += requests;
                misdirected.push(key);
            }
        }
    }
    // The smallest keys: the same examples whatever the table's order.
    misdirected.sort_unstable();
    misdirected.truncate(MAX_EXAMPLES);
    r.misdirected_keys = misdirected;
    r
}

/// Every reason the run failed, in words; empty when it passed.
pub(crate) fn failures(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let amqp = report.settings.via == "amqp";
    let unit = if amqp { "messages" } else { "batches" };
    let api = &report.errors.api;
    let refused: u64 = api.http.values().sum();
    if refused > 0 {
        let statuses: Vec<String> = api.http.iter().map(|(s, n)| format!("{n} x {s}")).collect();
        out.push(format!(
            "{refused} ingest batches refused ({}): {} events not accepted",
            statuses.join(", "),
            report.events.refused
        ));
    }
    if api.transport > 0 {
        out.push(format!(
            "{} ingest {unit} failed in transport (connection refused or reset)",
            api.transport
        ));
    }
    if api.nacked > 0 || api.unroutable > 0 {
        out.push(format!(
            "{} messages nacked and {} unroutable by the broker",
            api.nacked, api.unroutable
        ));
    }
    if api.timeouts > 0 {
        out.push(format!(
            "{} ingest {unit} timed out: {} events may or may not be in the log",
            api.timeouts, report.events.timed_out
        ));
    }
    let r = &report.reconciliation;
    if r.missing > 0 {
        out.push(format!(
            "{} of {} expected deliveries missing",
            r.missing, r.expected_pairs
        ));
    }
    if r.duplicates > 0 {
        out.push(format!("{} duplicate deliveries", r.duplicates));
    }
    if r.misdirected_pairs > 0 {
        out.push(format!(
            "{} deliveries ({} requests) to a hook that should not have had them{}",
            r.misdirected_pairs,
            r.misdirected_requests,
            if report.misdirected.is_empty() {
                String::new()
            } else {
                format!(", e.g. {}", report.misdirected.join("; "))
            }
        ));
    }
    if report.errors.receiver_unidentified > 0 {
        out.push(format!(
            "{} requests the receiver could not match to an event and hook of this run",
            report.errors.receiver_unidentified
        ));
    }
    if let Some(q) = report.quiet_window.filter(|q| !q.quiet) {
        out.push(format!(
            "the receiver never went {} ms without a request after the last expected \
             delivery: {} requests in {} ms",
            q.window_ms, q.requests, q.watched_ms
        ));
    }
    if report.drain_timed_out {
        out.push("the drain timed out before every expected delivery arrived".to_owned());
    }
    if report.appended.as_ref().is_some_and(|a| a.timed_out) {
        out.push(
            "the drain timed out before the daemon's log held every accepted event".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests;
