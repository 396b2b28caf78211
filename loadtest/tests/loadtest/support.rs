//! Running the load tool and reading its JSON report; a daemon started by the test
//! itself, for runs against `--target`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The daemon binary the load tool starts: `piston-webhooks` beside it, where
/// `cargo test --workspace` builds it (this crate's tests alone do not build it).
pub(crate) fn daemon_binary() -> PathBuf {
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_piston-loadtest"));
    let daemon = tool.with_file_name(format!("piston-webhooks{}", std::env::consts::EXE_SUFFIX));
    assert!(
        daemon.is_file(),
        "{} is missing: run these tests with `cargo test --workspace` (or \
         `cargo build -p piston-webhooks` first)",
        daemon.display()
    );
    daemon
}

/// Runs `piston-loadtest ARGS --json` (at most 5 minutes), checks that the run passed
/// (exit 0) and returns its report.
pub(crate) fn run_loadtest(args: &[&str]) -> Value {
    let (status, report) = run_loadtest_with_status(args);
    assert!(status.success(), "loadtest exited with {status}: {report}");
    report
}

/// Runs `piston-loadtest ARGS --json`, checks that the run went to the end and failed
/// (exit 3), and returns its report.
pub(crate) fn run_failing_loadtest(args: &[&str]) -> Value {
    let (status, report) = run_loadtest_with_status(args);
    assert_eq!(
        status.code(),
        Some(3),
        "loadtest exited with {status}: {report}"
    );
    assert_eq!(report["passed"], false, "{report}");
    report
}

fn run_loadtest_with_status(args: &[&str]) -> (ExitStatus, Value) {
    daemon_binary();
    let mut command = Command::new(env!("CARGO_BIN_EXE_piston-loadtest"));
    command.args(args);
    report_and_status(command)
}

/// Runs `COMMAND --json` (at most 5 minutes), checks that the run passed and returns its
/// report.
pub(crate) fn report_of(command: Command) -> Value {
    let (status, report) = report_and_status(command);
    assert!(status.success(), "loadtest exited with {status}: {report}");
    report
}

/// Runs `COMMAND --json` (at most 5 minutes); returns how it exited and its report.
fn report_and_status(mut command: Command) -> (ExitStatus, Value) {
    let mut child = command
        .arg("--json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the load tool");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("read the report");
        text
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("loadtest did not finish within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().expect("reader thread");
    let report = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("exited with {status}, not JSON ({e}): {text:?}"));
    (status, report)
}

pub(crate) fn u(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer} in {report}"))
}

pub(crate) fn f(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {pointer} in {report}"))
}

/// A daemon the test started (`serve` on a free loopback port, a temp data dir), for
/// `--target` runs; killed when dropped.
pub(crate) struct TestDaemon {
    child: Child,
    pub url: String,
    pub key: &'static str,
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    /// Starts the daemon with `extra` flags and waits for its `listening on` line.
    pub(crate) fn start(extra: &[&str]) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = "loadtest-target-key";
        let mut child = Command::new(daemon_binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-private-targets",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--master-api-key", key, "--retry-base-ms", "100"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the daemon");
        let stdout = child.stdout.take().expect("stdout");
        // The daemon prints its address first; a thread reads it (and drains the rest).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("the daemon printed no `listening on` line: {e}");
            }
        };
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .to_owned();
        TestDaemon {
            child,
            url,
            key,
            _dir: dir,
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on now, for `--receiver-listen`.
pub(crate) fn free_loopback_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}
