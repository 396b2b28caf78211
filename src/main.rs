//! The binary edge: command line, signals, and telemetry started through
//! [`piston_webhooks::telemetry`]. `anyhow` lives here only.

use anyhow::Context;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use piston_webhooks::{Daemon, ServeConfig};

/// Piston Webhooks: a Kazoo-compatible webhook dispatcher.
#[derive(Debug, Parser)]
#[command(name = "piston-webhooks", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(ServeConfig),
    /// Audit the event log of a data dir, also while a daemon runs on it: replay, verify,
    /// state at a time. Never prints API keys or token hashes.
    Log(piston_webhooks::audit::LogArgs),
    /// Load-test a daemon end to end (by default one started here) and report
    /// throughput, latency and the reconciliation of every delivery.
    Loadtest(piston_webhooks::loadtest::LoadtestArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    piston_webhooks::telemetry::init()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match cli.command {
        Command::Serve(config) => runtime.block_on(serve(config)),
        Command::Log(args) => audit(args),
        Command::Loadtest(args) => Ok(runtime.block_on(piston_webhooks::loadtest::run(args))?),
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    piston_webhooks::process_limits::private_umask();
    match piston_webhooks::process_limits::raise_open_files_limit() {
        Ok(limit) => tracing::info!(?limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let daemon = Daemon::start(config).await?;
    let listener = tokio::net::TcpListener::bind(daemon.config().listen)
        .await
        .with_context(|| format!("binding {}", daemon.config().listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    // The one line on standard output: tests and scripts wait for it.
    println!("listening on http://{address}");
    daemon.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// `log ...`: exit 1 when the log is damaged (the message names the record), 2 when it
/// cannot be read at all.
fn audit(args: piston_webhooks::audit::LogArgs) -> anyhow::Result<()> {
    if let Err(e) = piston_webhooks::audit::run(args) {
        eprintln!("piston-webhooks log: {e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
