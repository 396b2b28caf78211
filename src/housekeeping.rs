//! Background housekeeping: periodic registry snapshots (so a start replays only the
//! tail of the log) and retention (call events and attempts older than the retention
//! period are pruned from the log; configuration history is kept).
//!
//! Both run on a timer in one task that never holds the registry lock for long: a
//! snapshot clones the registry under a read lock and encodes the clone elsewhere;
//! pruning runs on a blocking thread. The snapshot format
//! ([`actors::snapshot`]) and the rule of what may be forgotten
//! ([`actors::retention`]) live beside the registry; this module decides when.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventLog, LogError, PruneSummary};
use parking_lot::RwLock;
use tokio::sync::watch;

use actors::retention::RetentionRule;
use actors::{snapshot, Registry};

use crate::clock;

/// When housekeeping acts.
#[derive(Debug, Clone)]
pub struct HousekeepingSettings {
    /// How often to look.
    pub interval: Duration,
    /// Take a snapshot once this many records were applied since the last one.
    pub snapshot_every_records: u64,
    /// Call events and attempts older than this are pruned.
    pub retention: Duration,
}

/// What can go wrong in a round of housekeeping (logged; the daemon carries on).
#[derive(Debug, thiserror::Error)]
pub enum HousekeepingError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The housekeeping task's handles.
#[derive(Clone)]
pub struct Housekeeping {
    log: EventLog,
    registry: Arc<RwLock<Registry>>,
    settings: HousekeepingSettings,
    /// Sequence of the newest snapshot saved (shown by `/healthz`).
    last_snapshot: Arc<AtomicU64>,
}

impl Housekeeping {
    pub fn new(
        log: EventLog,
        registry: Arc<RwLock<Registry>>,
        settings: HousekeepingSettings,
    ) -> Self {
        Housekeeping {
            log,
            registry,
            settings,
            last_snapshot: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The newest snapshot's sequence, shared with whoever reports it.
    pub fn last_snapshot(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.last_snapshot)
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>, mut last_snapshot_seq: u64) {
        self.last_snapshot
            .fetch_max(last_snapshot_seq, Ordering::Relaxed);
        let mut last_cut = 0u64;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let applied = self.registry.read().last_seq();
            if applied.saturating_sub(last_snapshot_seq) >= self.settings.snapshot_every_records {
                match self.snapshot().await {
                    Ok(seq) => last_snapshot_seq = seq,
                    Err(e) => tracing::error!(error = %e, "snapshot failed"),
                }
            }
            match self.prune_expired(last_cut).await {
                Ok(Some(summary)) => {
                    last_cut = last_cut.max(summary.cut_seq);
                    last_snapshot_seq = last_snapshot_seq.max(summary.snapshot_seq);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "retention pruning failed"),
            }
        }
    }

    /// Saves a snapshot of the registry as it is now; returns its sequence.
    pub async fn snapshot(&self) -> Result<u64, HousekeepingError> {
        let registry = self.registry.read().clone();
        let seq = registry.last_seq();
        if seq == 0 {
            return Ok(0);
        }
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || -> Result<(), HousekeepingError> {
            let bytes = snapshot::encode(&registry)?;
            log.save_snapshot(seq, &bytes)?;
            tracing::info!(seq, bytes = bytes.len(), "snapshot saved");
            Ok(())
        })
        .await??;
        self.last_snapshot.fetch_max(seq, Ordering::Relaxed);
        Ok(seq)
    }

    /// Prunes what retention allows, if the cut moved past `last_cut`.
    pub async fn prune_expired(&self, last_cut: u64) -> Result<Option<Pruned>, HousekeepingError> {
        let retention_ms = u64::try_from(self.settings.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff_ms = clock::now_unix_ms().saturating_sub(retention_ms);
        let log = self.log.clone();
        let cut = tokio::task::spawn_blocking(move || find_cut(&log, cutoff_ms)).await??;
        if cut <= last_cut {
            return Ok(None);
        }
        // The newest snapshot must lie above the cut: snapshots at pruned records cannot
        // be checked any more, and the next start should not need the records about to
        // go. Take one only when the newest is not already there.
        let newest = self.last_snapshot.load(Ordering::Relaxed);
        let snapshot_seq = if newest > cut {
            newest
        } else {
            self.snapshot().await?
        };
        let rule = RetentionRule::for_registry(&self.registry.read(), cutoff_ms);
        let log = self.log.clone();
        let summary: PruneSummary =
            tokio::task::spawn_blocking(move || log.prune(cut, |record| rule.may_forget(record)))
                .await??;
        tracing::info!(
            cut_seq = cut,
            removed = summary.removed,
            kept = summary.kept,
            "retention pruned the log"
        );
        Ok(Some(Pruned {
            cut_seq: cut,
            snapshot_seq,
        }))
    }
}

/// What a prune did, for the next round.
#[derive(Debug, Clone, Copy)]
pub struct Pruned {
    pub cut_seq: u64,
    pub snapshot_seq: u64,
}

/// The highest sequence whose record is older than `cutoff_ms`, never the last record
/// (0 when there is none). Record times only grow with the sequence (one writer stamps
/// them), so a binary search over sequences finds it with a few point reads.
fn find_cut(log: &EventLog, cutoff_ms: u64) -> Result<u64, LogError> {
    let last = log.last_seq();
    if last < 2 {
        return Ok(0);
    }
    // Invariant: every record at or below `lo` is older than the cutoff; none above `hi`.
    let (mut lo, mut hi) = (0u64, last - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match log.iter_from(mid).next() {
            Some(Ok(record)) if record.time_ms < cutoff_ms && record.seq <= hi => lo = record.seq,
            Some(Ok(_)) | None => hi = mid - 1,
            Some(Err(e)) => return Err(e),
        }
    }
    Ok(lo)
}
