use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

fn parse(args: &[&str]) -> LoadtestArgs {
    Cli::try_parse_from(std::iter::once("piston-loadtest").chain(args.iter().copied()))
        .expect("parses")
        .args
}

fn refusal(args: &[&str]) -> String {
    match parse(args).resolved().validate() {
        Err(LoadtestError::Invalid(message)) => message,
        other => panic!("{args:?} was not refused: {other:?}"),
    }
}

#[test]
fn the_defaults_are_valid() {
    let args = parse(&[]);
    assert!(args.validate().is_ok());
    assert_eq!(args.via, Via::Http);
    assert_eq!((args.accounts, args.hooks_per_account), (10, 10));
    assert_eq!(args.quiet_window_ms, 2000);
    // The daemon's own defaults.
    assert_eq!((args.max_in_flight, args.max_in_flight_per_hook), (256, 8));
}

#[test]
fn only_loopback_addresses_are_contacted() {
    let target = [
        "--master-api-key",
        "k",
        "--receiver-listen",
        "127.0.0.1:9100",
    ];
    let with_target = |url: &'static str| {
        let mut args = vec!["--target", url];
        args.extend(target);
        args
    };
    assert!(parse(&with_target("http://127.0.0.1:8000"))
        .validate()
        .is_ok());
    assert!(parse(&with_target("http://localhost:8000"))
        .validate()
        .is_ok());
    assert!(refusal(&with_target("http://192.0.2.1:8000")).starts_with("--target"));
    assert!(refusal(&["--receiver-listen", "192.0.2.1:9100"]).starts_with("--receiver-listen"));
    assert!(refusal(&[
        "--via",
        "amqp",
        "--amqp-url",
        "amqp://guest:guest@192.0.2.1:5672/%2f"
    ])
    .starts_with("--amqp-url"));
}

#[test]
fn amqp_runs_start_their_own_daemon() {
    let mut args = parse(&[
        "--target",
        "http://127.0.0.1:8000",
        "--master-api-key",
        "k",
        "--receiver-listen",
        "127.0.0.1:9100",
    ]);
    args.via = Via::Amqp;
    assert!(matches!(args.validate(), Err(LoadtestError::Invalid(m)) if m.contains("--target")));
}

#[test]
fn connections_replace_concurrency_for_http_only() {
    let args = parse(&["--batch", "1", "--connections", "32"]);
    assert!(args.validate().is_ok());
    assert_eq!((args.connections, args.senders()), (Some(32), 32));
    assert_eq!(parse(&["--concurrency", "16"]).senders(), 16);
    assert_eq!(parse(&[]).senders(), 4);
    // Both at once: refused by the parser.
    let both = Cli::try_parse_from([
        "piston-loadtest",
        "--connections",
        "8",
        "--concurrency",
        "8",
    ]);
    assert!(both.is_err());
    assert!(refusal(&["--connections", "0"]).starts_with("--connections"));
    assert!(refusal(&["--connections", "1025"]).starts_with("--connections"));
    assert!(refusal(&["--via", "amqp", "--connections", "8"]).starts_with("--connections"));
}

#[test]
fn dead_backlog_is_one_dead_hook_owed_every_event() {
    let args = parse(&["--dead-backlog", "1000000"]).resolved();
    assert!(args.validate().is_ok());
    assert_eq!(
        (
            args.accounts,
            args.hooks_per_account,
            args.dead_hooks,
            args.events
        ),
        (1, 1, 1, 1_000_000)
    );
    // No auto-disable mid-run.
    assert_eq!(args.failure_threshold, 1_000_000);
    // Without it, nothing changes.
    let plain = parse(&["--events", "7"]).resolved();
    assert_eq!((plain.accounts, plain.dead_hooks, plain.events), (10, 0, 7));
    // What it sets cannot be given with it.
    for other in [
        ["--events", "5"],
        ["--accounts", "2"],
        ["--hooks-per-account", "2"],
        ["--dead-hooks", "1"],
    ] {
        let mut argv = vec!["piston-loadtest", "--dead-backlog", "10"];
        argv.extend(other);
        assert!(Cli::try_parse_from(argv).is_err(), "{other:?}");
    }
    assert!(refusal(&["--dead-backlog", "0"]).starts_with("--dead-backlog"));
}

#[test]
fn counts_and_durations_are_bounded() {
    assert!(refusal(&["--accounts", "0"]).starts_with("--accounts"));
    assert!(refusal(&["--events", "0"]).starts_with("--events"));
    assert!(refusal(&["--batch", "10001"]).starts_with("--batch"));
    assert!(refusal(&["--concurrency", "257"]).starts_with("--concurrency"));
    assert!(refusal(&["--drain-timeout", "0"]).starts_with("--drain-timeout"));
    assert!(refusal(&["--receiver-error-rate", "1"]).starts_with("--receiver-error-rate"));
    assert!(refusal(&["--quiet-window-ms", "600001"]).starts_with("--quiet-window-ms"));
    assert!(parse(&["--quiet-window-ms", "0"]).validate().is_ok());
    assert!(refusal(&["--max-in-flight", "0"]).starts_with("--max-in-flight"));
    assert!(refusal(&["--max-in-flight", "4097"]).starts_with("--max-in-flight"));
    assert!(refusal(&[
        "--accounts",
        "1",
        "--hooks-per-account",
        "2",
        "--dead-hooks",
        "3"
    ])
    .starts_with("--dead-hooks"));
}
