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
//!
//! Must not: change what the log does when no hook is set.
//!
//! [`EventLog::health`]: crate::EventLog::health

use std::path::PathBuf;

use tracing::warn;

/// The variable of the disk-full hook; see the module documentation.
const DISK_FULL_VAR: &str = "PISTON_FAULT_DISK_FULL";

/// The faults a log was opened with; the default injects none.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Writes fail while a file exists at this path.
    pub(crate) disk_full_while: Option<PathBuf>,
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
        Faults { disk_full_while }
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
}
