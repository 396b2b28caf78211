//! The daemon the load test starts for itself: the `piston-webhooks` binary
//! ([`daemon_exe`]) as `serve` on `127.0.0.1:0` with a temp data dir,
//! `--allow-private-targets` and a random master key. Its `listening on` line is awaited with a deadline; its logs go to a file in the
//! temp dir (shown when it fails to start); it is killed at the end. With `--via amqp`
//! it also consumes from the broker, on a queue of the run's own.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::report::DaemonMemory;
use super::LoadtestError;

/// Names the daemon binary to start. `piston-webhooks loadtest` sets it to itself when
/// it runs this tool, so the daemon measured is the one the user ran.
pub const DAEMON_EXE_ENV: &str = "PISTON_LOADTEST_DAEMON";

/// The daemon's binary when [`DAEMON_EXE_ENV`] does not name one.
const DAEMON_BIN: &str = "piston-webhooks";

/// How long the daemon may take to print `listening on`.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Settings passed on to `serve`.
#[derive(Debug, Clone)]
pub(crate) struct DaemonOptions {
    pub master_api_key: String,
    pub max_in_flight_per_hook: u32,
    pub max_in_flight: u32,
    pub retry_base_ms: u64,
    pub failure_threshold: u32,
    /// Consume Kazoo events from RabbitMQ too (`--via amqp`).
    pub amqp: Option<AmqpFlags>,
}

impl DaemonOptions {
    /// The flags of `serve` these options set (the broker's URL goes in the
    /// environment, apart).
    pub(crate) fn tuning_flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = [
            (
                "--max-in-flight-per-hook",
                self.max_in_flight_per_hook.to_string(),
            ),
            ("--max-in-flight", self.max_in_flight.to_string()),
            ("--retry-base-ms", self.retry_base_ms.to_string()),
            ("--failure-threshold", self.failure_threshold.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
        if let Some(amqp) = &self.amqp {
            flags.extend(["--amqp-queue".to_owned(), amqp.queue.clone()]);
            flags.extend(["--amqp-dead-letter".to_owned(), amqp.dead_letter.clone()]);
            if let Some(prefetch) = amqp.prefetch {
                flags.extend(["--amqp-prefetch".to_owned(), prefetch.to_string()]);
            }
        }
        flags
    }
}

/// The daemon's AMQP settings.
#[derive(Clone)]
pub(crate) struct AmqpFlags {
    /// The broker URI; passed in the environment, as it may hold a password.
    pub url: String,
    pub queue: String,
    pub dead_letter: String,
    pub prefetch: Option<u16>,
}

impl std::fmt::Debug for AmqpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpFlags")
            .field("broker", &super::amqp::broker_label(&self.url))
            .field("queue", &self.queue)
            .field("dead_letter", &self.dead_letter)
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

/// A daemon this process started.
pub(crate) struct OwnDaemon {
    child: Child,
    pub pid: u32,
    pub base: String,
    log_path: PathBuf,
    dir: tempfile::TempDir,
}

impl OwnDaemon {
    /// Starts the daemon and waits for its `listening on` line.
    pub(crate) async fn start(opts: &DaemonOptions) -> Result<OwnDaemon, LoadtestError> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| LoadtestError::Io { context, source }
        };
        let exe = daemon_exe()?;
        let dir = tempfile::Builder::new()
            .prefix("piston-loadtest-")
            .tempdir()
            .map_err(io("creating a temp dir"))?;
        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).map_err(io("creating the daemon log"))?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--allow-private-targets"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--master-api-key", &opts.master_api_key])
            .args(opts.tuning_flags())
            .env("RUST_LOG", "warn")
            .env_remove("PISTON_LISTEN")
            .env_remove("PISTON_DATA_DIR")
            // Only the broker and queues of this run (none over HTTP).
            .env_remove("PISTON_AMQP_URL")
            .env_remove("PISTON_AMQP_QUEUE")
            .env_remove("PISTON_AMQP_DEAD_LETTER")
            .env_remove("PISTON_AMQP_PREFETCH");
        if let Some(amqp) = &opts.amqp {
            command.env("PISTON_AMQP_URL", &amqp.url);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io("starting the daemon"))?;
        let pid = child.id().unwrap_or(0);
        let Some(stdout) = child.stdout.take() else {
            return Err(LoadtestError::Daemon("no standard output to read".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_DEADLINE, lines.next_line()).await;
        let failed = |why: String| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            LoadtestError::Daemon(format!("{why}; its log ends with:\n{}", tail.join("\n")))
        };
        let line = match first {
            Err(_) => {
                return Err(failed(format!(
                    "no `listening on` line within {START_DEADLINE:?}"
                )))
            }
            Ok(Err(e)) => return Err(failed(format!("reading its output: {e}"))),
            Ok(Ok(None)) => return Err(failed("it exited before listening".into())),
            Ok(Ok(Some(line))) => line,
        };
        let Some(base) = line.strip_prefix("listening on ") else {
            return Err(failed(format!("unexpected first line {line:?}")));
        };
        let base = base.trim().to_owned();
        // Keep draining its standard output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tracing::debug!(pid, %base, "daemon started");
        Ok(OwnDaemon {
            child,
            pid,
            base,
            log_path,
            dir,
        })
    }

    /// Its memory now, from `/proc/PID/status`.
    pub(crate) fn memory(&self) -> Option<DaemonMemory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        Some(DaemonMemory {
            pid: self.pid,
            rss_kib: status_kib(&status, "VmRSS")?,
            peak_rss_kib: status_kib(&status, "VmHWM"),
            cpu_seconds: cpu_seconds(&self.pid.to_string()),
            sampled: None,
        })
    }

    /// Where its log is (until it is stopped).
    pub(crate) fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// Kills it and waits for it (bounded). With `keep`, its temp dir (data and log)
    /// stays on disk and its path is returned; otherwise it is deleted.
    pub(crate) async fn stop(mut self, keep: bool) -> Option<PathBuf> {
        if let Err(e) = self.child.start_kill() {
            tracing::warn!(error = %e, "cannot kill the daemon");
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(pid = self.pid, "the daemon did not exit within 10 s");
        }
        keep.then(|| self.dir.keep())
    }
}

/// The daemon binary to start: [`DAEMON_EXE_ENV`], else `piston-webhooks` beside this
/// program (where `cargo build` puts both).
fn daemon_exe() -> Result<PathBuf, LoadtestError> {
    if let Some(exe) = std::env::var_os(DAEMON_EXE_ENV) {
        return Ok(PathBuf::from(exe));
    }
    let this = std::env::current_exe().map_err(|source| LoadtestError::Io {
        context: "finding this program's path".into(),
        source,
    })?;
    let exe = this.with_file_name(format!("{DAEMON_BIN}{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        return Err(LoadtestError::Daemon(format!(
            "{} is missing: build the daemon beside the load tool with \
             `cargo build -p piston-webhooks` (add `--release` for a release build), or \
             run the load test as `piston-webhooks loadtest`",
            exe.display()
        )));
    }
    Ok(exe)
}

/// User plus system CPU time of `/proc/{pid}/stat` (`self` for this process), in
/// seconds (Linux's `USER_HZ` is 100 on every architecture it runs on).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_seconds(&stat)
}

/// The `utime + stime` of a `/proc/PID/stat` line, in seconds.
pub(crate) fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A `Key:   123 kB` value of `/proc/PID/status`, in KiB.
pub(crate) fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests;
