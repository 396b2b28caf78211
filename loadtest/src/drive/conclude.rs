//! Phases 4 and 5 and the report: the receipts reconciled against the plan
//! ([`crate::reconcile`]) with the latencies and the per-second series, the baseline
//! (`--baseline`), and the [`Report`] assembled from every phase's part with its
//! verdict. Nothing here waits on the daemon.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::drain::Drained;
use super::{Loaded, RunContext, SetUp};
use crate::reconcile::{self, Reconciliation, Unexpected};
use crate::report::{self, Latency, Report, Second, SeriesBuilder, Throughput};
use crate::setup::Plan;
use crate::{baseline, load, memory, receiver, LoadtestError, Via};

/// The reconciliation's part of the report.
pub(super) struct Reconciled {
    reconciliation: Reconciliation,
    /// Misdirected pairs, named.
    misdirected: Vec<String>,
    /// Expected pairs received, from the first send to the last first receipt.
    deliveries: Throughput,
    latency: Latency,
    latency_from_accept: Latency,
    delivered_before_accept: u64,
    ingest: Latency,
    per_second: Vec<Second>,
}

/// Phase 4: every expected pair of the accepted events against what the receiver
/// recorded, with the latencies from the send and from the accept, the ingest round
/// trips and the per-second series.
pub(super) fn reconcile_deliveries(
    run: &RunContext<'_>,
    plan: &Plan,
    loaded: &Loaded,
) -> Result<Reconciled, LoadtestError> {
    let (state, outcome) = (&loaded.state, &loaded.outcome);
    let records = run.receiver.take_records();
    let mut latency = report::new_histogram(3)?;
    let mut from_accept = report::new_histogram(3)?;
    let mut delivered_before_accept = 0u64;
    let mut ingest = report::new_histogram(3)?;
    let mut series = SeriesBuilder::new(outcome.start_us)?;
    for batch in &outcome.accepts {
        series.accepted(batch.accepted_us, batch.events);
        ingest.saturating_record(batch.accepted_us.saturating_sub(batch.sent_us).max(1));
    }
    let mut last_receipt_us = outcome.start_us;
    let expected_pairs = state.accepted_events().flat_map(|event| {
        let event32 = u32::try_from(event).unwrap_or(u32::MAX);
        plan.expected_hooks(event)
            .iter()
            .map(move |&hook| receiver::pair_key(event32, hook))
    });
    // An unexpected pair is of a timed-out batch when its event may be in the log and
    // the hook is one of its account's healthy hooks; anything else is misdirected.
    let classify = |key: u64| {
        let event = u64::from(receiver::event_of(key));
        if state.status(event) == load::UNCERTAIN
            && plan.expected_hooks(event).contains(&receiver::hook_of(key))
        {
            Unexpected::OfTimedOutBatch
        } else {
            Unexpected::Misdirected
        }
    };
    let reconciliation = reconcile::reconcile(expected_pairs, &records, classify, |key, record| {
        let event = u64::from(receiver::event_of(key));
        let latency_us = record
            .first_ok_us
            .saturating_sub(state.sent_us(event))
            .max(1);
        latency.saturating_record(latency_us);
        let accepted_us = state.accepted_us(event);
        if record.first_ok_us < accepted_us {
            delivered_before_accept += 1;
        }
        from_accept.saturating_record(record.first_ok_us.saturating_sub(accepted_us).max(1));
        series.delivered(record.first_ok_us, latency_us);
        last_receipt_us = last_receipt_us.max(record.first_ok_us);
    });
    Ok(Reconciled {
        misdirected: name_pairs(plan, &reconciliation.misdirected_keys),
        deliveries: Throughput::new(
            reconciliation.received_pairs,
            last_receipt_us.saturating_sub(outcome.start_us),
        ),
        reconciliation,
        latency: Latency::from_histogram(&latency),
        latency_from_accept: Latency::from_histogram(&from_accept),
        delivered_before_accept,
        ingest: Latency::from_histogram(&ingest),
        per_second: series.build(),
    })
}

/// `event N (account A) -> hook ID (account B)` for each pair key.
fn name_pairs(plan: &Plan, keys: &[u64]) -> Vec<String> {
    keys.iter()
        .map(|&key| {
            let event = u64::from(receiver::event_of(key));
            let hook = plan.hooks.get(receiver::hook_of(key) as usize);
            format!(
                "event {event} (account {}) -> hook {} (account {})",
                plan.account_of(event),
                hook.map_or("?", |h| h.id.as_str()),
                hook.map_or_else(|| "?".to_owned(), |h| h.account.to_string()),
            )
        })
        .collect()
}

/// Phase 5 (`--baseline`): the same receiver hit by a bare reqwest loop at the daemon's
/// delivery concurrency, and Piston's deliveries/s as a ratio of it.
pub(super) async fn measure_baseline(
    run: &RunContext<'_>,
    plan: &Plan,
    reconciled: &Reconciled,
) -> Result<Option<report::Baseline>, LoadtestError> {
    let args = run.args;
    if !args.baseline {
        return Ok(None);
    }
    // The loop runs as many requests at once as the daemon may run tries.
    let concurrency = baseline::concurrency(
        plan.healthy_hooks(),
        args.max_in_flight_per_hook,
        args.max_in_flight,
    );
    let mut sample = String::new();
    load::write_event(&mut sample, plan, 0);
    let requests = reconciled.reconciliation.received_pairs.max(1_000);
    let measured = baseline::run(
        format!("http://{}/baseline", run.receiver_addr),
        Bytes::from(sample),
        concurrency,
        requests,
        Duration::from_secs_f64(args.drain_timeout),
    )
    .await?;
    let per_second = Throughput::new(
        measured.ok,
        u64::try_from(measured.elapsed.as_micros()).unwrap_or(u64::MAX),
    )
    .per_second;
    Ok(Some(report::Baseline {
        concurrency: measured.concurrency,
        daemon_concurrency: concurrency,
        daemon_max_in_flight: args.max_in_flight,
        daemon_max_in_flight_per_hook: args.max_in_flight_per_hook,
        healthy_hooks: plan.healthy_hooks() as u64,
        requests: measured.requests,
        ok: measured.ok,
        errors: measured.errors,
        seconds: (measured.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        per_second,
        ratio: if per_second > 0.0 {
            (reconciled.deliveries.per_second / per_second * 1000.0).round() / 1000.0
        } else {
            0.0
        },
    }))
}

/// The report from the phases' parts (its `amqp` part is added once the queues are
/// deleted).
pub(super) fn assemble(
    run: &RunContext<'_>,
    setup: &SetUp,
    loaded: Loaded,
    drained: Drained,
    reconciled: Reconciled,
    baseline: Option<report::Baseline>,
) -> Report {
    let args = run.args;
    let complete = reconciled.reconciliation.complete()
        && !drained.timed_out
        && !drained.appended.as_ref().is_some_and(|a| a.timed_out);
    let mut report = Report {
        settings: report::Settings {
            target: match &args.target {
                Some(url) => url.to_string(),
                None => "own daemon".to_owned(),
            },
            via: args.via.name(),
            accounts: args.accounts,
            hooks_per_account: args.hooks_per_account,
            hooks: setup.plan.hooks.len() as u64,
            dead_hooks: args.dead_hooks,
            events: args.events,
            batch: args.batch,
            rate: args.rate,
            concurrency: args.senders(),
            connections: args.connections,
            dead_backlog: args.dead_backlog,
            duration_s: args.duration,
            receiver_delay_ms: args.receiver_delay_ms,
            receiver_error_rate: args.receiver_error_rate,
            quiet_window_ms: args.quiet_window_ms,
            max_in_flight_per_hook: args.max_in_flight_per_hook,
            max_in_flight: args.max_in_flight,
            setup_seconds: (setup.seconds * 1000.0).round() / 1000.0,
        },
        events: loaded.events(),
        deliveries: reconciled.deliveries,
        latency_ms: reconciled.latency,
        latency_measured_from: match args.via {
            Via::Http => "send of the POST /v2/events carrying the event",
            Via::Amqp => "publish of the AMQP batch carrying the event",
        },
        latency_from_accept_ms: reconciled.latency_from_accept,
        delivered_before_accept: reconciled.delivered_before_accept,
        ingest_ms: reconciled.ingest,
        appended: drained.appended,
        amqp: None,
        reconciliation: reconciled.reconciliation,
        misdirected: reconciled.misdirected,
        complete,
        passed: false,
        failures: Vec::new(),
        drain_timed_out: drained.timed_out,
        quiet_window: drained.quiet_window,
        errors: report::Errors {
            api: loaded.outcome.errors,
            receiver_unidentified: run.receiver.unidentified.load(Ordering::Relaxed),
        },
        daemon: drained.daemon,
        dead_backlog: args
            .dead_backlog
            .and_then(|events| memory::dead_backlog(events, &drained.memory_series)),
        memory_series: drained.memory_series,
        loadtest_cpu_seconds: drained.loadtest_cpu_seconds,
        baseline,
        per_second: reconciled.per_second,
    };
    report.failures = reconcile::failures(&report);
    report.passed = report.failures.is_empty();
    report
}
