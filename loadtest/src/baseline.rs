//! `--baseline`: the loopback HTTP ceiling of this machine, measured in the same run.
//!
//! A bare reqwest loop hits the same receiver (under `/baseline`, so the pair table is
//! untouched) with as many concurrent requests as the daemon may run deliveries at once
//! ([`concurrency`]: healthy hooks × `--max-in-flight-per-hook`, at most the daemon's
//! `--max-in-flight`) and as many requests as Piston delivered, within a time limit.
//! Piston's deliveries/s divided by this loop's requests/s is how close the daemon
//! comes to what the hardware allows at the same concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;

use super::LoadtestError;

/// Time allowed for one baseline request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most delivery tries the daemon may run at once for `healthy_hooks` hooks: each
/// hook runs at most `max_in_flight_per_hook`, all of them at most `max_in_flight`
/// (the daemon's flags of those names). The baseline loop runs that many requests at
/// once.
pub(crate) fn concurrency(
    healthy_hooks: usize,
    max_in_flight_per_hook: u32,
    max_in_flight: u32,
) -> usize {
    healthy_hooks
        .saturating_mul(max_in_flight_per_hook as usize)
        .min(max_in_flight as usize)
        .max(1)
}

/// What the loop did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BaselineRun {
    pub concurrency: usize,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// POSTs `body` to `url` `requests` times from `concurrency` tasks, stopping at
/// `time_limit`.
pub(crate) async fn run(
    url: String,
    body: Bytes,
    concurrency: usize,
    requests: u64,
    time_limit: Duration,
) -> Result<BaselineRun, LoadtestError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(|source| LoadtestError::Http {
            what: "building the baseline client".into(),
            source,
        })?;
    let start = Instant::now();
    let deadline = start + time_limit;
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (next, ok, errors) = (Arc::clone(&next), Arc::clone(&ok), Arc::clone(&errors));
        tasks.spawn(async move {
            // At most `requests` iterations across all tasks, and never past the deadline.
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || Instant::now() >= deadline {
                    return;
                }
                let sent = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Event-ID", format!("baseline-{i}"))
                    .header("X-Hook-ID", "baseline")
                    .timeout(REQUEST_TIMEOUT)
                    .body(body.clone())
                    .send()
                    .await;
                let good = match sent {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a baseline task failed");
        }
    }
    let (ok, errors) = (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    Ok(BaselineRun {
        concurrency: concurrency.max(1),
        requests: ok + errors,
        ok,
        errors,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests;
