//! The human-readable report: one line per part, the words following how the events
//! were sent (`POST /v2/events` or RabbitMQ). Only formats; decides nothing.

use std::fmt::Write as _;

use super::Report;

impl Report {
    /// The human-readable report.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let e = &self.events;
        let r = &self.reconciliation;
        let l = &self.latency_ms;
        let amqp = s.via == "amqp";
        let _ = writeln!(
            out,
            "Piston Webhooks load test ({}, events via {})",
            s.target,
            if amqp { "RabbitMQ" } else { "POST /v2/events" }
        );
        let rate = if s.rate > 0.0 {
            format!("{} events/s", s.rate)
        } else {
            "as fast as possible".to_owned()
        };
        let _ = writeln!(
            out,
            "  setup        {} accounts x {} hooks = {} webhooks ({} dead) in {:.2} s",
            s.accounts, s.hooks_per_account, s.hooks, s.dead_hooks, s.setup_seconds
        );
        let batches = if s.batch == 1 && !amqp {
            "single events ({\"data\": EVENT})".to_owned()
        } else {
            format!("batches of {}", s.batch)
        };
        let senders = match s.connections {
            Some(n) => format!("{n} connections, one request at a time on each"),
            None => format!("{} senders", s.concurrency),
        };
        let _ = writeln!(
            out,
            "  load         {batches}, {senders}, {}{}{}",
            rate,
            s.duration_s
                .map(|d| format!(", for at most {d} s"))
                .unwrap_or_default(),
            if s.receiver_delay_ms > 0 || s.receiver_error_rate > 0.0 {
                format!(
                    "; receiver delay {} ms, error rate {}",
                    s.receiver_delay_ms, s.receiver_error_rate
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  events       {} sent, {} {} in {:.2} s: {:.0} events/s {}{}{}",
            e.sent,
            e.accepted,
            if amqp {
                "confirmed by the broker"
            } else {
                "accepted"
            },
            e.load_seconds,
            e.accepted_per_second,
            if amqp { "confirmed" } else { "accepted" },
            if e.stopped_by_duration {
                " (stopped by --duration)"
            } else {
                ""
            },
            if e.refused > 0 || e.timed_out > 0 {
                format!(
                    "; {} refused, {} timed out (may be in the log)",
                    e.refused, e.timed_out
                )
            } else {
                String::new()
            }
        );
        if let Some(a) = &self.appended {
            let _ = writeln!(
                out,
                "  appended     {} events in {:.2} s: {:.0} events/s appended (counted through /healthz, {:.0} ms after the last {}){}",
                a.events,
                a.seconds,
                a.per_second,
                a.after_last_accept_ms,
                if amqp { "confirm" } else { "202" },
                if a.timed_out {
                    " (timed out)"
                } else {
                    ""
                }
            );
            if let Some(end) = a.events_at_end.filter(|&n| n > e.accepted) {
                let _ = writeln!(
                    out,
                    "               WARNING: {end} events counted after the drain, {} more than accepted ({}another publisher on callevt? records not accounted for?): the appended figure may be early",
                    end - e.accepted,
                    if e.timed_out > 0 {
                        "events of the timed-out batches? "
                    } else {
                        ""
                    }
                );
            }
        }
        let _ = writeln!(
            out,
            "  deliveries   {} in {:.2} s: {:.0} deliveries/s",
            self.deliveries.count, self.deliveries.seconds, self.deliveries.per_second
        );
        let _ = writeln!(
            out,
            "  latency      send->receipt ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (mean {:.2}, {} pairs)",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean, l.count
        );
        let a = &self.latency_from_accept_ms;
        let _ = writeln!(
            out,
            "               {}->receipt ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} pairs arrived before their {})",
            if amqp { "confirm" } else { "202" },
            a.p50,
            a.p90,
            a.p99,
            a.p999,
            a.max,
            self.delivered_before_accept,
            if amqp { "confirm" } else { "202" },
        );
        let i = &self.ingest_ms;
        let _ = writeln!(
            out,
            "  ingest       {} ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  ({} batches)",
            if amqp {
                "publish->confirm"
            } else {
                "POST /v2/events round trip"
            },
            i.p50,
            i.p90,
            i.p99,
            i.max,
            i.count
        );
        let _ = writeln!(
            out,
            "  reconcile    expected {}, received {}, missing {}, duplicates {}, injected 500s retried {}, misdirected {}, of timed-out batches {}: {}{}",
            r.expected_pairs,
            r.received_pairs,
            r.missing,
            r.duplicates,
            r.injected_500s,
            r.misdirected_pairs,
            r.timed_out_pairs,
            if self.complete { "COMPLETE" } else { "INCOMPLETE" },
            if self.drain_timed_out {
                " (drain timed out)"
            } else {
                ""
            }
        );
        if let Some(q) = &self.quiet_window {
            let _ = writeln!(
                out,
                "  quiet        watched {} ms after the last expected delivery for a {} ms window without requests: {} requests{}",
                q.watched_ms,
                q.window_ms,
                q.requests,
                if q.quiet { "" } else { " (NEVER QUIET)" }
            );
        }
        for example in &self.misdirected {
            let _ = writeln!(out, "               misdirected: {example}");
        }
        let api = &self.errors.api;
        let statuses = if api.http.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = api.http.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            format!(" ({})", list.join(", "))
        };
        let _ = writeln!(
            out,
            "  errors       {}: {} HTTP errors{}, {} timeouts, {} transport errors{}; receiver: {} unidentified requests",
            if amqp { "AMQP (messages)" } else { "API" },
            api.http.values().sum::<u64>(),
            statuses,
            api.timeouts,
            api.transport,
            if api.nacked > 0 || api.unroutable > 0 {
                format!(", {} nacked, {} unroutable", api.nacked, api.unroutable)
            } else {
                String::new()
            },
            self.errors.receiver_unidentified
        );
        if let Some(a) = &self.amqp {
            let count = |n: Option<u32>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "  amqp         broker {}, {} messages, queue {} (prefetch {}): {} left in the queue, {} dead-lettered; queues deleted{}",
                a.broker,
                if a.persistent { "persistent" } else { "transient" },
                a.queue,
                a.prefetch
                    .map_or_else(|| "default".to_owned(), |p| p.to_string()),
                count(a.left_in_queue),
                count(a.dead_lettered),
                if a.left_in_queue.is_some() && a.dead_lettered.is_some() {
                    ""
                } else {
                    " (not all: see the warnings)"
                }
            );
        }
        if let Some(d) = &self.daemon {
            let _ = writeln!(
                out,
                "  daemon       pid {}, RSS {:.1} MiB at the end{}{}",
                d.pid,
                mib(d.rss_kib),
                d.peak_rss_kib
                    .map(|p| format!(" (peak {:.1} MiB)", mib(p)))
                    .unwrap_or_default(),
                d.cpu_seconds
                    .map(|c| format!(", {c:.1} CPU s"))
                    .unwrap_or_default()
            );
            if let Some(r) = &d.sampled {
                let _ = writeln!(
                    out,
                    "               RSS every {} ms from the load's start ({} samples): min {:.1}, median {:.1}, max {:.1}, end {:.1} MiB",
                    r.every_ms,
                    r.samples,
                    mib(r.min_kib),
                    mib(r.median_kib),
                    mib(r.max_kib),
                    mib(r.end_kib)
                );
            }
        }
        if let Some(d) = &self.dead_backlog {
            let _ = writeln!(
                out,
                "  dead backlog one dead hook owed {} events: {} owed at the end; RSS {:.1} MiB at the start, {:.1} at the end (max {:.1}){}",
                d.events,
                d.owed_at_end
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                mib(d.rss_start_kib),
                mib(d.rss_end_kib),
                mib(d.rss_max_kib),
                d.kib_per_100k_owed
                    .map(|k| format!(": {:+.2} MiB per 100,000 owed", k / 1024.0))
                    .unwrap_or_default()
            );
            let steps: Vec<String> = d
                .steps
                .iter()
                .map(|s| format!("{} owed {:.1} MiB", s.owed, mib(s.rss_kib)))
                .collect();
            if !steps.is_empty() {
                let _ = writeln!(out, "               as it grew: {}", steps.join(", "));
            }
        }
        if let Some(c) = self.loadtest_cpu_seconds {
            let _ = writeln!(
                out,
                "  load tool    {c:.1} CPU s (senders and receiver, same machine)"
            );
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                out,
                "  baseline     bare reqwest loop, {} concurrent: {} requests ({} errors) in {:.2} s: {:.0} requests/s; Piston's deliveries/s = {:.3} x baseline",
                b.concurrency, b.requests, b.errors, b.seconds, b.per_second, b.ratio
            );
            let _ = writeln!(
                out,
                "               the daemon ran at most {} tries at once: {} healthy hooks x --max-in-flight-per-hook {}, at most --max-in-flight {}",
                b.daemon_concurrency,
                b.healthy_hooks,
                b.daemon_max_in_flight_per_hook,
                b.daemon_max_in_flight
            );
        }
        if self.passed {
            let _ = writeln!(out, "  verdict      PASSED");
        } else {
            let _ = writeln!(out, "  verdict      FAILED:");
            for failure in &self.failures {
                let _ = writeln!(out, "               - {failure}");
            }
        }
        out
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
