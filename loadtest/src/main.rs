//! The load tool's binary edge: command line, tracing, the tokio runtime. `anyhow`
//! lives here only. Users normally run it as `piston-webhooks loadtest`, which runs this
//! binary with the same arguments.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use piston_loadtest::{LoadtestArgs, Verdict, DAEMON_EXE_ENV, FAILED_RUN_EXIT_CODE};

// As the daemon does, so that the load tool's own CPU figures stay comparable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load-test a daemon end to end (by default one started here) and report throughput,
/// latency and the reconciliation of every delivery.
#[derive(Debug, Parser)]
#[command(
    name = "piston-loadtest",
    version,
    after_help = "Exit status: 0 when the run passed; 3 when it went to the end and failed \
                  (refused or timed-out ingest, missing, duplicate or misdirected \
                  deliveries, requests the receiver did not know, a drain timeout: the \
                  report's failures say which); 1 when it could not run."
)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    // Run by `piston-webhooks loadtest`: help and errors name that command.
    if std::env::var_os(DAEMON_EXE_ENV).is_some() {
        command = command.bin_name("piston-webhooks loadtest");
    }
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    piston_webhooks::telemetry::init()?;
    Ok(match piston_loadtest::run(cli.args).await? {
        Verdict::Passed => ExitCode::SUCCESS,
        Verdict::Failed => ExitCode::from(FAILED_RUN_EXIT_CODE),
    })
}
