//! The binary edge: command line, signals, and telemetry started through
//! [`piston_webhooks::telemetry`]. `anyhow` lives here only.

use std::ffi::OsString;

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
    Serve(Box<ServeConfig>),
    /// Audit the event log of a data dir, also while a daemon runs on it: replay, verify,
    /// state at a time. Never prints API keys or token hashes.
    Log(piston_webhooks::audit::LogArgs),
    /// Load-test a daemon end to end (by default one started here) and report
    /// throughput, latency and the reconciliation of every delivery.
    ///
    /// Runs the load tool, `piston-loadtest` (the workspace's `loadtest/` crate), from
    /// this program's directory with the same options; `loadtest --help` lists them.
    #[command(disable_help_flag = true)]
    Loadtest {
        /// The load tool's options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// The load tool's binary, looked for beside this one.
const LOADTEST_BIN: &str = "piston-loadtest";

/// Names the daemon binary the load tool starts: this one (`loadtest/src/daemon.rs`
/// reads it).
const LOADTEST_DAEMON_ENV: &str = "PISTON_LOADTEST_DAEMON";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        // The load tool sets up its own tracing and runtime.
        Command::Loadtest { args } => loadtest(args),
        Command::Serve(config) => {
            piston_webhooks::telemetry::init()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(serve(*config))
        }
        Command::Log(args) => {
            piston_webhooks::telemetry::init()?;
            audit(args)
        }
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

/// `loadtest ...`: the load tool is a crate of its own, so that the daemon does not link
/// its HTTP server, histograms and chart. This runs `piston-loadtest` from this
/// program's directory with the same arguments, in place of this process on Unix (its
/// output, exit code and signals are the command's), and has it start this very binary
/// as its daemon.
fn loadtest(args: Vec<OsString>) -> anyhow::Result<()> {
    let daemon = std::env::current_exe().context("finding this program's path")?;
    let tool = daemon.with_file_name(format!("{LOADTEST_BIN}{}", std::env::consts::EXE_SUFFIX));
    if !tool.is_file() {
        anyhow::bail!(
            "the load tool {} is missing: build it beside this program with \
             `cargo build -p piston-loadtest` (add `--release` for a release build; \
             `cargo build` of the whole workspace builds both)",
            tool.display()
        );
    }
    let mut command = std::process::Command::new(&tool);
    command.args(args).env(LOADTEST_DAEMON_ENV, &daemon);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // `exec` returns only when it failed.
        let error = command.exec();
        Err(error).with_context(|| format!("running {}", tool.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("running {}", tool.display()))?;
        std::process::exit(status.code().unwrap_or(1));
    }
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
