//! `log verify`: [`EventLog::verify`] over the whole log, with a one-line summary.
//!
//! Intact: the summary on standard output and exit 0. Damaged: [`AuditError::Damaged`]
//! naming the first bad sequence number (exit 1).

use std::io::Write;

use eventlog::{EventLog, VerifySummary};

use super::progress::{with_progress, Plan};
use super::{open_log, AuditError, VerifyArgs};

/// Runs `log verify`.
pub fn run(args: &VerifyArgs, out: &mut impl Write, progress: bool) -> Result<(), AuditError> {
    let log = open_log(&args.data_dir)?;
    let summary = verify_log(&log, progress)?;
    writeln!(out, "{}", summary_line(&summary))?;
    Ok(())
}

/// Checks every record of `log`.
pub fn verify_log(log: &EventLog, progress: bool) -> Result<VerifySummary, AuditError> {
    let plan = Plan {
        visible: progress,
        total: None,
        label: "verifying the event log",
    };
    with_progress(plan, |_| log.verify()).map_err(AuditError::from_read)
}

/// `intact: 42 records, seq 1..42, last hash 3f…`, and the prune checkpoint if any.
pub fn summary_line(summary: &VerifySummary) -> String {
    if summary.records == 0 {
        return "intact: empty log (0 records)".to_owned();
    }
    let mut line = format!(
        "intact: {} records, seq {}..{}, last hash {}",
        summary.records, summary.first_seq, summary.last_seq, summary.last_hash
    );
    if summary.pruned_through > 0 {
        line.push_str(&format!(
            "; pruned through #{} ({} removed, {} kept, checkpoint #{})",
            summary.pruned_through, summary.pruned, summary.kept, summary.checkpoint_seq
        ));
    }
    line
}
