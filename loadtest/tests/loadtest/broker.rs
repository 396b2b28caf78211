//! Whether the RabbitMQ of the `--via amqp` tests answers, and what a missing broker
//! means: under `CI=true` (as `.ci/run` and CI services set it) a failure that says what
//! is missing; anywhere else a skip printed loudly on the terminal, so a green run
//! without the broker never passes unnoticed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// The broker the AMQP tests use: the load tool's default, `guest`/`guest` on loopback.
pub(crate) const BROKER: ([u8; 4], u16) = ([127, 0, 0, 1], 5672);

/// What a test that needs the broker does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The broker answers: run.
    Run,
    /// No broker, not under CI: return early, saying why.
    Skip(String),
    /// No broker under CI: fail, saying why.
    Fail(String),
}

/// Whether the value of the `CI` environment variable means "running under CI".
pub(crate) fn under_ci(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The verdict for `test`, given the `CI` variable and whether the broker answered
/// (`Err`: why not).
pub(crate) fn judge(test: &str, ci: Option<&str>, reachable: Result<(), String>) -> Verdict {
    let Err(why) = reachable else {
        return Verdict::Run;
    };
    let (ip, port) = BROKER;
    let broker = SocketAddr::from((ip, port));
    if under_ci(ci) {
        Verdict::Fail(format!(
            "{test}: RabbitMQ at {broker} does not answer ({why}), and CI=true: a missing \
             broker is a failure under CI. Install and start it (`.ci/run` does: Debian's \
             rabbitmq-server, `rabbitmq-server -detached`), or unset CI to skip this test."
        ))
    } else {
        Verdict::Skip(format!(
            "SKIPPED {test}: RabbitMQ at {broker} does not answer ({why}). This test did \
             NOT run. Start the broker with `rabbitmq-server -detached` (.ci/run does) and \
             run the tests again; with CI=true this is a failure."
        ))
    }
}

/// Checks the broker for `test`: `true` to run; `false` after a loud skip; panics under
/// CI.
pub(crate) fn rabbitmq_or_skip(test: &str) -> bool {
    let (ip, port) = BROKER;
    let reachable =
        std::net::TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(3))
            .map(drop)
            .map_err(|e| e.to_string());
    match judge(test, std::env::var("CI").ok().as_deref(), reachable) {
        Verdict::Run => true,
        Verdict::Fail(message) => panic!("{message}"),
        Verdict::Skip(message) => {
            // Straight to the process's standard error: the test harness captures
            // `eprintln!` of a passing test, and this must be seen.
            let banner = "=".repeat(78);
            let _ = writeln!(std::io::stderr(), "\n{banner}\n{message}\n{banner}");
            false
        }
    }
}

#[cfg(test)]
mod tests;
