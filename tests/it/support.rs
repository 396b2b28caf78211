//! Test harness: start the real daemon process (its log captured when a test waits for
//! a line of it), talk to it, read its log with the audit CLI, poll with deadlines; the
//! one rule for tests that need a service the machine may lack ([`skip_or_fail_without`]).
//!
//! Over 500 lines because every test module leans on all of it; splitting it would only
//! move the imports around.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The master API key every test daemon is started with.
pub const MASTER_KEY: &str = "it-master-key-0123456789abcdef";

/// A running daemon process on a temp (or given) data dir.
pub struct Daemon {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    /// The daemon's standard error lines, when captured.
    stderr_lines: Option<Arc<Mutex<Vec<String>>>>,
    _temp: Option<tempfile::TempDir>,
}

/// Where a daemon's standard error goes.
#[derive(Clone, Copy)]
enum Stderr {
    /// The test process's own standard error (not captured by the harness).
    Inherit,
    /// Kept line by line (see [`Daemon::start_capturing_stderr`]).
    Capture,
}

impl Daemon {
    /// Starts a daemon on a fresh temp data dir.
    pub fn start(extra: &[&str]) -> Daemon {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let mut d = Daemon::start_in(&dir, extra);
        d._temp = Some(temp);
        d
    }

    /// Starts a daemon on `dir` (which may hold an earlier daemon's log).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(dir, extra, &[])
    }

    /// [`Daemon::start_in`] with extra environment variables (fault hooks).
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(dir, extra, env, Stderr::Inherit)
    }

    /// [`Daemon::start_with_env`], keeping the daemon's standard error lines (its log,
    /// without colours) for [`Daemon::wait_for_stderr`]; they are echoed to the test's
    /// output as well.
    pub fn start_capturing_stderr(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(dir, extra, env, Stderr::Capture)
    }

    fn spawn(dir: &Path, extra: &[&str], env: &[(&str, &str)], stderr: Stderr) -> Daemon {
        // PISTON_TEST_BIN runs the tests against another build (to show a test fails on
        // the code before a fix); by default, this build's binary.
        let binary = std::env::var_os("PISTON_TEST_BIN").map_or_else(
            || env!("CARGO_BIN_EXE_piston-webhooks").into(),
            PathBuf::from,
        );
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir)
            .arg("--master-api-key")
            .arg(MASTER_KEY)
            .args(extra)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("PISTON_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::piped())
            .stderr(match stderr {
                Stderr::Inherit => Stdio::inherit(),
                Stderr::Capture => Stdio::piped(),
            });
        let mut child = command.spawn().expect("spawn piston-webhooks");
        let stderr_lines = child.stderr.take().map(|pipe| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let keep = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let line = strip_ansi(&line);
                    eprintln!("daemon: {line}");
                    keep.lock().unwrap().push(line);
                }
            });
            lines
        });
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            // Forward the first line, then keep draining so the child never blocks.
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("daemon printed `listening on` within 60 s");
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Daemon {
            child,
            base,
            data_dir: dir.to_path_buf(),
            stderr_lines,
            _temp: None,
        }
    }

    /// The captured standard error lines so far (none unless started with
    /// [`Daemon::start_capturing_stderr`]).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_lines
            .as_ref()
            .map(|lines| lines.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Waits (`timeout` at most) until a captured standard error line contains `needle`;
    /// returns that line. Panics, showing what the daemon wrote, if none does.
    pub async fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        assert!(
            self.stderr_lines.is_some(),
            "start the daemon with Daemon::start_capturing_stderr to wait for its log"
        );
        let found = eventually(timeout, || async {
            self.stderr_lines()
                .into_iter()
                .find(|line| line.contains(needle))
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no daemon log line with {needle:?} within {timeout:?}; it wrote:\n{}",
                self.stderr_lines().join("\n")
            )
        })
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit status.
    /// It blocks the calling thread: a test whose receiver must keep answering
    /// meanwhile runs on the multi-threaded runtime.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills this daemon with SIGKILL and starts a new one on the same data dir.
    pub fn crash_and_restart(mut self, extra: &[&str]) -> Daemon {
        self.kill9();
        let temp = self._temp.take();
        let mut next = Daemon::start_in(&self.data_dir, extra);
        next._temp = temp;
        next
    }

    /// Stops this daemon and starts a new one on the same data dir.
    pub fn restart(mut self, extra: &[&str]) -> Daemon {
        let status = self.stop();
        assert!(status.success(), "clean exit on SIGTERM, got {status}");
        let temp = self._temp.take();
        let mut next = Daemon::start_in(&self.data_dir, extra);
        next._temp = temp;
        next
    }

    /// A client without a token.
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: None,
        }
    }

    /// A client holding a master-account token.
    pub async fn master(&self) -> Client {
        self.client().login(MASTER_KEY).await
    }

    /// `GET /healthz`'s data.
    pub async fn health(&self) -> Value {
        self.client()
            .get("/healthz")
            .await
            .expect(200)
            .data()
            .clone()
    }

    /// Waits (30 s at most) until the daemon owes no delivery (`/healthz`'s
    /// `pending_deliveries` is 0): every delivery that matching decided on was made, its
    /// retries included, and its outcome logged. What a receiver got by then is all it
    /// will get of the events accepted so far: the positive signal after which a test
    /// checks that nothing more arrived.
    pub async fn wait_until_nothing_is_owed(&self) {
        let settled = eventually(Duration::from_secs(30), || async {
            (self.health().await["pending_deliveries"] == 0).then_some(())
        })
        .await;
        assert!(
            settled.is_some(),
            "deliveries still pending after 30 s: {}",
            self.health().await
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status and JSON body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// A client of the API, optionally authenticated.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    /// `PUT /v2/api_auth` and keep the token.
    pub async fn login(mut self, api_key: &str) -> Client {
        let r = self
            .send(
                "PUT",
                "/v2/api_auth",
                Some(json!({"data": {"api_key": api_key}})),
            )
            .await
            .expect(201);
        self.token = Some(
            r.body["auth_token"]
                .as_str()
                .expect("auth_token")
                .to_owned(),
        );
        self
    }

    /// Sends a request with an optional JSON body (sent as `application/json`).
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let raw = body.map(|b| b.to_string().into_bytes());
        self.send_raw(method, path, raw, Some("application/json"))
            .await
    }

    /// Like [`Client::send_raw`], but a connection the daemon closes early (as it may
    /// after answering 413 to a body it will not read) is `None`, not a panic.
    pub async fn try_send_raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Option<Resp> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        // A fresh connection each time: one the daemon closed early must not be reused.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let mut req = http
            .request(method, format!("{}{}", self.base, path))
            .timeout(Duration::from_secs(30))
            .body(body);
        if let Some(token) = &self.token {
            req = req.header("X-Auth-Token", token);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let response = req.send().await.ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.ok()?;
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
        Some(Resp {
            status,
            body,
            headers,
        })
    }

    /// Sends raw bytes with the given content type (or none).
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .timeout(Duration::from_secs(30));
        if let Some(token) = &self.token {
            req = req.header("X-Auth-Token", token);
        }
        if let Some(body) = body {
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            req = req.body(body);
        }
        let response = req.send().await.expect("request reached the daemon");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn put(&self, path: &str, data: Value) -> Resp {
        self.send("PUT", path, Some(json!({ "data": data }))).await
    }

    pub async fn post(&self, path: &str, data: Value) -> Resp {
        self.send("POST", path, Some(json!({ "data": data }))).await
    }

    pub async fn patch(&self, path: &str, data: Value) -> Resp {
        self.send("PATCH", path, Some(json!({ "data": data })))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    /// The master account id (from `api_auth`).
    pub async fn own_account(&self) -> String {
        let r = self
            .send(
                "PUT",
                "/v2/api_auth",
                Some(json!({"data": {"api_key": MASTER_KEY}})),
            )
            .await
            .expect(201);
        r.data()["account_id"]
            .as_str()
            .expect("account_id")
            .to_owned()
    }

    /// Creates a child account of `parent` and returns its id.
    pub async fn create_account(&self, parent: &str, name: &str) -> String {
        let r = self
            .put(&format!("/v2/accounts/{parent}"), json!({ "name": name }))
            .await
            .expect(201);
        r.data()["id"].as_str().expect("id").to_owned()
    }

    /// A client acting as `account` (logs in with its API key).
    pub async fn as_account(&self, account: &str) -> Client {
        let key = self
            .get(&format!("/v2/accounts/{account}/api_key"))
            .await
            .expect(200);
        let key = key.data()["api_key"].as_str().expect("api_key").to_owned();
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: None,
        }
        .login(&key)
        .await
    }

    /// Creates a webhook in `account` and returns its id.
    pub async fn create_webhook(&self, account: &str, doc: Value) -> String {
        let r = self
            .put(&format!("/v2/accounts/{account}/webhooks"), doc)
            .await
            .expect(201);
        r.data()["id"].as_str().expect("id").to_owned()
    }
}

/// A minimal valid webhook document.
pub fn hook_doc(name: &str) -> Value {
    json!({"name": name, "uri": "http://example.com/hook", "hook": "channel_create"})
}

/// Polls `check` until it returns `Some`, at most `timeout`, every 20 ms.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether this is a CI run (`CI=true`, as `.ci/run` and CI services set it): there, no
/// test may pass by skipping what it checks.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The one rule for a test that cannot run because `service` is missing (`why` says how
/// it failed and how to start it): under `CI=true` the test fails with that reason;
/// elsewhere it prints loudly why it is skipped, on the process's real stderr so the test
/// harness's capture cannot hide it, and the caller returns. A tool that comes with the
/// service (`rabbitmqctl` with RabbitMQ) failing while the service answers is no reason
/// to skip: fail outright, whatever `CI` says.
#[track_caller]
pub fn skip_or_fail_without(service: &str, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let reason = format!("{test} needs {service}, which is not available: {why}");
    assert!(!in_ci(), "CI=true, so this cannot be skipped: {reason}");
    let banner = "!".repeat(78);
    let _ = writeln!(
        std::io::stderr().lock(),
        "{banner}\nSKIPPED (passes without checking anything): {reason}\n{banner}"
    );
}

/// `line` without its terminal colour codes (`ESC [ ... letter`), as the daemon's log
/// colours field names.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // The sequence ends at its first letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `piston-webhooks log <args...>` (the audit CLI) on `data_dir` and waits for it.
/// It opens the log read-only, so it works on a running daemon's data dir and on a
/// killed one's.
pub fn log_cli(data_dir: &Path, args: &[&str]) -> Output {
    let (sub, rest) = args.split_first().expect("a subcommand");
    Command::new(env!("CARGO_BIN_EXE_piston-webhooks"))
        .arg("log")
        .arg(sub)
        .arg("--data-dir")
        .arg(data_dir)
        .args(rest)
        .env("RUST_LOG", "warn")
        .env_remove("PISTON_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run piston-webhooks log")
}

/// `log verify` on `data_dir` must pass; returns its summary line.
#[track_caller]
pub fn assert_log_verifies(data_dir: &Path) -> String {
    let out = log_cli(data_dir, &["verify"]);
    assert!(
        out.status.success(),
        "log verify failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The records of `data_dir`'s log of these kinds, from sequence `from` on, as
/// `log replay --json` prints them (`seq`, `kind` and the event's fields).
#[track_caller]
pub fn log_records(data_dir: &Path, kinds: &[&str], from: u64) -> Vec<Value> {
    let kinds = kinds.join(",");
    let from = from.to_string();
    let out = log_cli(
        data_dir,
        &["replay", "--json", "--kind", &kinds, "--from", &from],
    );
    assert!(
        out.status.success(),
        "log replay failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}
