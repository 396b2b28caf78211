//! The audit CLI: `piston-webhooks log replay | verify | state` over a data dir's event log.
//!
//! Every command opens the log with [`EventLog::open_read_only`] (a RocksDB secondary
//! instance), so it works while a daemon runs on the same data dir and never changes the
//! log. Records are read through the log's verified iterator: a damaged record stops the
//! command with [`AuditError::Damaged`], which names its sequence number.
//!
//! - [`replay`]: the records in log order, filtered, as readable lines or NDJSON;
//! - [`verify`]: [`EventLog::verify`] with a one-line summary;
//! - [`state`]: the accounts and webhooks as they were at a moment, rebuilt by the same
//!   [`actors::Registry::apply`] the daemon uses.
//!
//! Secrets (API keys, token hashes) are never printed: `replay` redacts them and `state`
//! leaves them out. Standard output is the product; a reader that goes away (`| head`) ends
//! the command quietly. A progress bar goes to standard error, only when it is a terminal
//! and only once a run has lasted a moment.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use eventlog::{AccountId, EventLog, LogError, WebhookId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod progress;
pub mod replay;
pub mod state;
pub mod verify;

#[cfg(test)]
mod tests;

/// Exit code of a command that found the log damaged (or could not read a record).
pub const EXIT_DAMAGED: i32 = 1;
/// Exit code of a command that could not run at all (no log there, cannot open it, I/O).
pub const EXIT_FAILED: i32 = 2;

/// `piston-webhooks log ...`: read, check and query the event log.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
}

/// The audit commands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the records in log order: one readable line each, or NDJSON with --json.
    ///
    /// API keys and token hashes are never printed (their fields read "[redacted]").
    /// Exits 1 naming the sequence number if a damaged record is reached.
    Replay(ReplayArgs),
    /// Decode every record and check the hash chain.
    ///
    /// Exits 0 with a one-line summary when the log is intact, 1 naming the first bad
    /// sequence number when it is not, 2 when the log cannot be opened.
    Verify(VerifyArgs),
    /// Print the accounts and webhooks exactly as they were at a moment.
    ///
    /// Replays the records up to --at through the daemon's own apply. API keys and token
    /// hashes are never printed.
    State(StateArgs),
}

/// Arguments of `log replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The daemon's data dir (the log is DIR/eventlog).
    #[arg(long, value_name = "DIR", env = "PISTON_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Start at this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub from: u64,
    /// Start at the first record at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Stop before the first record after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub until: Option<u64>,
    /// Only records about this account (its own fields, its children's creation, the
    /// delivery attempts and re-enables of its webhooks).
    #[arg(long, value_name = "ID", value_parser = AccountId::parse)]
    pub account: Option<AccountId>,
    /// Only records about this webhook (including bulk re-enables and the deletion of its
    /// account).
    #[arg(long, value_name = "ID", value_parser = WebhookId::parse)]
    pub webhook: Option<WebhookId>,
    /// Only these kinds (account_created, webhook_updated, delivery_attempted, ...);
    /// repeat the flag or separate with commas.
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// One JSON object per line: seq, time, time_ms, kind and the event's fields.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `log verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The daemon's data dir (the log is DIR/eventlog).
    #[arg(long, value_name = "DIR", env = "PISTON_DATA_DIR")]
    pub data_dir: PathBuf,
}

/// Arguments of `log state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The daemon's data dir (the log is DIR/eventlog).
    #[arg(long, value_name = "DIR", env = "PISTON_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The moment (RFC 3339 or Unix seconds): every record up to it is applied.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub at: u64,
    /// Only this account and its descendants, with their webhooks.
    #[arg(long, value_name = "ID", value_parser = AccountId::parse)]
    pub account: Option<AccountId>,
    /// One JSON document: {"at", "at_ms", "seq", "accounts", "webhooks"}.
    #[arg(long)]
    pub json: bool,
}

/// Why an audit command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// There is no event log in the data dir.
    #[error("no event log at {}: {reason}", path.display())]
    NoLog { path: PathBuf, reason: String },
    /// The log exists but cannot be opened.
    #[error("cannot open the event log at {}: {source}", path.display())]
    Open { path: PathBuf, source: LogError },
    /// A record failed its checks.
    #[error("the event log is damaged at record {seq}: {source}")]
    Damaged { seq: u64, source: LogError },
    /// Reading the log failed without naming a record (a storage error).
    #[error("cannot read the event log: {0}")]
    Read(LogError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl AuditError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AuditError::Damaged { .. } | AuditError::Read(_) => EXIT_DAMAGED,
            AuditError::NoLog { .. } | AuditError::Open { .. } | AuditError::Output(_) => {
                EXIT_FAILED
            }
        }
    }

    /// A read error: [`AuditError::Damaged`] when it names a record.
    fn from_read(e: LogError) -> AuditError {
        match bad_seq(&e) {
            Some(seq) => AuditError::Damaged { seq, source: e },
            None => AuditError::Read(e),
        }
    }
}

/// The sequence number a verification error is about.
pub fn bad_seq(e: &LogError) -> Option<u64> {
    match e {
        LogError::Corrupt { seq, .. }
        | LogError::ChainBroken { seq }
        | LogError::UnknownVersion { seq, .. } => Some(*seq),
        LogError::Gap { expected, .. } => Some(*expected),
        LogError::CheckpointMismatch { checkpoint_seq, .. } => Some(*checkpoint_seq),
        _ => None,
    }
}

/// Runs one audit command, writing its product to standard output.
pub fn run(args: LogArgs) -> Result<(), AuditError> {
    let stdout = io::stdout();
    let to_terminal = stdout.is_terminal();
    let stderr_tty = io::stderr().is_terminal();
    let mut out = BufWriter::new(stdout.lock());
    let result = match &args.command {
        // Lines reaching a terminal show the progress themselves, and a bar would tangle
        // with them.
        LogCommand::Replay(a) => replay::run(a, &mut out, stderr_tty && !to_terminal),
        LogCommand::Verify(a) => verify::run(a, &mut out, stderr_tty),
        LogCommand::State(a) => state::run(a, &mut out, stderr_tty),
    };
    let result = result.and_then(|()| out.flush().map_err(AuditError::from));
    match result {
        // The reader went away (`| head`): what it wanted was written.
        Err(AuditError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Opens `data_dir`'s event log read-only.
pub fn open_log(data_dir: &Path) -> Result<EventLog, AuditError> {
    let path = data_dir.join("eventlog");
    match std::fs::metadata(path.join("CURRENT")) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(AuditError::NoLog {
                path,
                reason: "CURRENT is not a file".into(),
            })
        }
        Err(e) => {
            let reason = if data_dir.is_dir() {
                format!("not a RocksDB directory ({e})")
            } else {
                format!("the data dir {} does not exist", data_dir.display())
            };
            return Err(AuditError::NoLog { path, reason });
        }
    }
    let log = EventLog::open_read_only(&path).map_err(|source| AuditError::Open {
        path: path.clone(),
        source,
    })?;
    tracing::debug!(path = %path.display(), last_seq = log.last_seq(), "event log open for audit");
    Ok(log)
}

/// Parses a command-line time, RFC 3339 (`2026-11-26T16:51:00Z`, fractions allowed) or Unix
/// seconds (`1795000000`, or `1795000000.250`), into Unix milliseconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_unix_seconds(s);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
        format!("`{s}` is neither RFC 3339 (like 2026-11-26T16:51:00Z) nor Unix seconds: {e}")
    })?;
    u64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| format!("`{s}` is before 1970"))
}

fn parse_unix_seconds(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a number of Unix seconds");
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || fraction.contains('.') {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    // Milliseconds: the first three digits of the fraction, padded.
    let ms = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    secs.checked_mul(1000)
        .and_then(|v| v.checked_add(ms))
        .ok_or_else(|| format!("`{s}` is too far in the future"))
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-11-26T16:51:00.123Z`).
pub fn format_ms(ms: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{ms}ms"))
}
