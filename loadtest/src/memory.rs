//! The daemon's memory over the run: a task reads the resident set size (`VmRSS` of
//! `/proc/PID/status`) of the daemon started here every [`SAMPLE_EVERY`], with the
//! deliveries it has pending and the events appended since setup (`GET /healthz`),
//! from the start of the load to the end of the drain, and once more at the end. The
//! report gives the series and its summary ([`summarize`]), and for `--dead-backlog`
//! the RSS as the backlog grew ([`dead_backlog`]); the chart plots them. Only the daemon
//! started here is sampled: with `--target` its process is not ours to read.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::daemon;
use crate::ingest::{self, LogMark};
use crate::Clock;

/// How often the daemon's RSS is read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MemorySample {
    /// Milliseconds since the load started.
    pub at_ms: u64,
    pub rss_kib: u64,
    /// Deliveries the daemon had pending (`None`: `/healthz` did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deliveries: Option<u64>,
    /// Events appended since setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_appended: Option<u64>,
}

/// The series in a few figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RssSummary {
    pub samples: u64,
    pub every_ms: u64,
    pub min_kib: u64,
    pub median_kib: u64,
    pub max_kib: u64,
    /// The last reading, at the end of the drain.
    pub end_kib: u64,
}

/// The summary of `samples` (in the order they were taken); `None` when there are none.
pub(crate) fn summarize(samples: &[MemorySample]) -> Option<RssSummary> {
    let end = samples.last()?;
    let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_kib).collect();
    rss.sort_unstable();
    Some(RssSummary {
        samples: rss.len() as u64,
        every_ms: u64::try_from(SAMPLE_EVERY.as_millis()).unwrap_or(u64::MAX),
        min_kib: rss[0],
        // The lower middle: a reading that was taken.
        median_kib: rss[(rss.len() - 1) / 2],
        max_kib: rss[rss.len() - 1],
        end_kib: end.rss_kib,
    })
}

/// The RSS when the backlog first reached a share of its largest size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct BacklogStep {
    /// Deliveries pending at that reading.
    pub owed: u64,
    pub rss_kib: u64,
    pub at_ms: u64,
}

/// `--dead-backlog`: the daemon's memory while one dead hook is owed more and more.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct DeadBacklog {
    /// Events posted, each owed to the one dead hook.
    pub events: u64,
    /// Deliveries pending at the end (the backlog; fewer than `events` once the daemon
    /// gave up on some after their retries).
    pub owed_at_end: Option<u64>,
    /// The first reading (the start of the load: nothing owed yet).
    pub rss_start_kib: u64,
    pub rss_max_kib: u64,
    pub rss_end_kib: u64,
    /// RSS growth from the first reading to the end, per 100,000 deliveries owed at the
    /// end (`None` when nothing was owed). It includes what ingesting the events costs
    /// by itself (memtables, caches): an ingest-only run of as many events
    /// (`--accounts 1 --hooks-per-account 0 --events N`) shows that part.
    pub kib_per_100k_owed: Option<f64>,
    /// The reading at which the backlog first reached each tenth of its largest size.
    pub steps: Vec<BacklogStep>,
}

/// The dead-backlog figures of `samples` for `events` posted; `None` without samples.
pub(crate) fn dead_backlog(events: u64, samples: &[MemorySample]) -> Option<DeadBacklog> {
    let first = samples.first()?;
    let last = samples.last()?;
    let owed_at_end = last.pending_deliveries;
    let largest = samples
        .iter()
        .filter_map(|s| s.pending_deliveries)
        .max()
        .unwrap_or(0);
    let mut steps: Vec<BacklogStep> = Vec::new();
    if largest > 0 {
        for tenth in 1..=10u64 {
            let threshold = largest.saturating_mul(tenth).div_ceil(10);
            let reached = samples
                .iter()
                .find(|s| s.pending_deliveries.is_some_and(|p| p >= threshold));
            if let Some(s) = reached {
                if steps.last().is_none_or(|l| l.at_ms != s.at_ms) {
                    steps.push(BacklogStep {
                        owed: s.pending_deliveries.unwrap_or(0),
                        rss_kib: s.rss_kib,
                        at_ms: s.at_ms,
                    });
                }
            }
        }
    }
    let grown = last.rss_kib as f64 - first.rss_kib as f64;
    Some(DeadBacklog {
        events,
        owed_at_end,
        rss_start_kib: first.rss_kib,
        rss_max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        rss_end_kib: last.rss_kib,
        kib_per_100k_owed: owed_at_end
            .filter(|&owed| owed > 0)
            .map(|owed| (grown / owed as f64 * 100_000.0 * 10.0).round() / 10.0),
        steps,
    })
}

/// What one reading reads: the process, and the daemon's `/healthz` since a mark.
#[derive(Clone)]
pub(crate) struct Probe {
    pub pid: u32,
    pub clock: Clock,
    /// Times are counted from here on the run's clock (the start of the load).
    pub origin_us: u64,
    /// The daemon's API and its log as setup left it (`None`: RSS only).
    pub log: Option<(Arc<Api>, LogMark)>,
}

impl Probe {
    /// One reading, or `None` when the process cannot be read (it is gone).
    async fn read(&self) -> Option<MemorySample> {
        let (pending_deliveries, events_appended) = match &self.log {
            Some((api, start)) => match api.health().await {
                Ok(now) => (
                    Some(now.pending),
                    Some(ingest::appended_between(*start, now)),
                ),
                Err(_) => (None, None),
            },
            None => (None, None),
        };
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        Some(MemorySample {
            at_ms: self.clock.now_us().saturating_sub(self.origin_us) / 1000,
            rss_kib: daemon::status_kib(&status, "VmRSS")?,
            pending_deliveries,
            events_appended,
        })
    }
}

/// Reads every [`SAMPLE_EVERY`] until [`Sampler::finish`].
pub(crate) struct Sampler {
    probe: Probe,
    samples: Arc<Mutex<Vec<MemorySample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling now.
    pub(crate) fn start(probe: Probe) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&samples);
        let reader = probe.clone();
        let task = tokio::spawn(async move {
            // Runs until aborted by `finish`, or dropped.
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Some(sample) = reader.read().await {
                    kept.lock().push(sample);
                }
            }
        });
        Sampler {
            probe,
            samples,
            task,
        }
    }

    /// Stops sampling, reads once more (the end) and returns the series.
    pub(crate) async fn finish(self) -> Vec<MemorySample> {
        self.task.abort();
        let mut samples = std::mem::take(&mut *self.samples.lock());
        if let Some(last) = self.probe.read().await {
            samples.push(last);
        }
        samples
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
