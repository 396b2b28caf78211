//! The load tool's binary edge: command line, tracing, the tokio runtime. `anyhow`
//! lives here only. Users normally run it as `piston-webhooks loadtest`, which runs this
//! binary with the same arguments.

use clap::{CommandFactory, FromArgMatches, Parser};

use piston_loadtest::{LoadtestArgs, DAEMON_EXE_ENV};

// As the daemon does, so that the load tool's own CPU figures stay comparable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load-test a daemon end to end (by default one started here) and report throughput,
/// latency and the reconciliation of every delivery.
#[derive(Debug, Parser)]
#[command(name = "piston-loadtest", version)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut command = Cli::command();
    // Run by `piston-webhooks loadtest`: help and errors name that command.
    if std::env::var_os(DAEMON_EXE_ENV).is_some() {
        command = command.bin_name("piston-webhooks loadtest");
    }
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    piston_webhooks::telemetry::init()?;
    Ok(piston_loadtest::run(cli.args).await?)
}
