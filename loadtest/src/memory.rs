//! The daemon's memory over the run: a task reads the resident set size (`VmRSS` of
//! `/proc/PID/status`) of the daemon started here every [`SAMPLE_EVERY`], from the
//! start of the load to the end of the drain, and once more at the end. The report
//! gives the series and its summary ([`summarize`]), the chart plots it. Only the
//! daemon started here is sampled: with `--target` its process is not ours to read.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::daemon;
use crate::Clock;

/// How often the daemon's RSS is read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MemorySample {
    /// Milliseconds since the load started.
    pub at_ms: u64,
    pub rss_kib: u64,
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

/// Reads a process's RSS every [`SAMPLE_EVERY`] until [`Sampler::finish`].
pub(crate) struct Sampler {
    pid: u32,
    clock: Clock,
    origin_us: u64,
    samples: Arc<Mutex<Vec<MemorySample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling process `pid` now; times are counted from `origin_us` on the
    /// run's clock (the start of the load).
    pub(crate) fn start(pid: u32, clock: Clock, origin_us: u64) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            // Runs until aborted by `finish`.
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Some(sample) = read(pid, clock, origin_us) {
                    kept.lock().push(sample);
                }
            }
        });
        Sampler {
            pid,
            clock,
            origin_us,
            samples,
            task,
        }
    }

    /// Stops sampling, reads once more (the end) and returns the series.
    pub(crate) fn finish(self) -> Vec<MemorySample> {
        self.task.abort();
        let mut samples = std::mem::take(&mut *self.samples.lock());
        if let Some(last) = read(self.pid, self.clock, self.origin_us) {
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

/// One reading of `pid`'s RSS, or `None` when it cannot be read (the process is gone).
fn read(pid: u32, clock: Clock, origin_us: u64) -> Option<MemorySample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(MemorySample {
        at_ms: clock.now_us().saturating_sub(origin_us) / 1000,
        rss_kib: daemon::status_kib(&status, "VmRSS")?,
    })
}

#[cfg(test)]
mod tests;
