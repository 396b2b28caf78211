//! Fault injection for tests: a test-only way to make the log misbehave at a chosen moment,
//! in a test of this crate or in a test that drives the daemon as a process.
//!
//! The hooks are read from the environment once, when a log is opened for writing (never
//! per call), and do nothing when their variable is unset, which it must be in production:
//!
//! - `PISTON_FAULT_DISK_FULL=<path>`: while a file exists at `<path>`, every write of the
//!   writer thread (group commits and health probes) fails as if the disk were full, before
//!   it reaches RocksDB; remove the file and writes succeed again. Shows
//!   [`EventLog::health`] and the recovery without filling a real disk.
//! - `PISTON_FAULT_PAUSE=<point>:<ms>`: every time the thread doing the work reaches
//!   `<point>`, it logs `tracing::warn!(point, "fault pause")` and sleeps `<ms>`
//!   milliseconds, so that a test can kill the process (`kill -9`) right there: wait for
//!   a log line holding `fault pause`, then kill. The points:
//!   - `snapshot.write`: in [`EventLog::save_snapshot`], with the new snapshot encoded and
//!     its write batch (the new snapshot and the deletion of the older ones) prepared,
//!     before that batch is written. The batch is one atomic synced write, so no kill can
//!     land between writing the new snapshot and deleting the old ones; a kill here loses
//!     the new snapshot, and the next start must use the previous one.
//!   - `prune.batch`: in [`EventLog::prune`], after the walk, with the deletions, the
//!     checkpoint and the metadata prepared, before they are handed to the writer. They are
//!     one atomic synced write, so no kill can land between two deletions; a kill here
//!     leaves the log unpruned (and its indexes whole), which the next prune does again.
//!
//!   A value that does not parse (unknown point, no number) is ignored with a warning.
//!
//! Must not: change what the log does when no hook is set.
//!
//! [`EventLog::health`]: crate::EventLog::health
//! [`EventLog::save_snapshot`]: crate::EventLog::save_snapshot
//! [`EventLog::prune`]: crate::EventLog::prune

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tracing::warn;

#[cfg(test)]
mod tests;

/// The variable of the disk-full hook; see the module documentation.
const DISK_FULL_VAR: &str = "PISTON_FAULT_DISK_FULL";

/// The variable of the pause hook; see the module documentation.
const PAUSE_VAR: &str = "PISTON_FAULT_PAUSE";

/// Where a [`Pause`] can stop the work; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PausePoint {
    /// `snapshot.write`.
    SnapshotWrite,
    /// `prune.batch`.
    PruneBatch,
}

impl PausePoint {
    const ALL: [PausePoint; 2] = [PausePoint::SnapshotWrite, PausePoint::PruneBatch];

    fn name(self) -> &'static str {
        match self {
            PausePoint::SnapshotWrite => "snapshot.write",
            PausePoint::PruneBatch => "prune.batch",
        }
    }
}

impl fmt::Display for PausePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pause at one point: `PISTON_FAULT_PAUSE=<point>:<ms>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pause {
    pub(crate) point: PausePoint,
    pub(crate) duration: Duration,
}

impl Pause {
    /// Parses `<point>:<ms>`; the error says what is wrong.
    pub(crate) fn parse(value: &str) -> Result<Pause, String> {
        let (name, ms) = value
            .split_once(':')
            .ok_or_else(|| format!("`{value}` is not <point>:<ms>"))?;
        let point = PausePoint::ALL
            .into_iter()
            .find(|p| p.name() == name.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = PausePoint::ALL.iter().map(|p| p.name()).collect();
                format!("unknown point `{name}` (known: {})", known.join(", "))
            })?;
        let ms: u64 = ms
            .trim()
            .parse()
            .map_err(|e| format!("`{ms}` is not a number of milliseconds: {e}"))?;
        Ok(Pause {
            point,
            duration: Duration::from_millis(ms),
        })
    }
}

/// The faults a log was opened with; the default injects none.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Writes fail while a file exists at this path.
    pub(crate) disk_full_while: Option<PathBuf>,
    /// Where the work pauses, and for how long.
    pub(crate) pause: Option<Pause>,
}

impl Faults {
    /// The faults the environment asks for.
    pub(super) fn from_env() -> Faults {
        let disk_full_while = std::env::var_os(DISK_FULL_VAR).map(PathBuf::from);
        if let Some(path) = &disk_full_while {
            warn!(
                path = %path.display(),
                "fault injection: writes fail while this file exists ({DISK_FULL_VAR})"
            );
        }
        let pause = std::env::var(PAUSE_VAR)
            .ok()
            .and_then(|value| match Pause::parse(&value) {
                Ok(pause) => {
                    warn!(
                        point = %pause.point,
                        ms = pause.duration.as_millis(),
                        "fault injection: the work will pause at this point ({PAUSE_VAR})"
                    );
                    Some(pause)
                }
                Err(error) => {
                    warn!(%error, "fault injection: {PAUSE_VAR} ignored");
                    None
                }
            });
        Faults {
            disk_full_while,
            pause,
        }
    }

    /// Before a write: the failure to report instead of writing, if the disk is to be full.
    pub(super) fn before_write(&self) -> Option<String> {
        let path = self.disk_full_while.as_ref()?;
        path.exists().then(|| {
            format!(
                "No space left on device (injected while {} exists)",
                path.display()
            )
        })
    }

    /// At `point`: pauses the calling thread if asked to pause there.
    pub(super) fn pause_at(&self, point: PausePoint) {
        if let Some(pause) = self.pause.filter(|p| p.point == point) {
            warn!(
                %point,
                ms = pause.duration.as_millis(),
                "fault pause"
            );
            std::thread::sleep(pause.duration);
        }
    }
}
