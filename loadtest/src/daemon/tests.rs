use super::{stat_cpu_seconds, status_kib, AmqpFlags, DaemonOptions};

#[test]
fn reads_vm_rss_and_hwm_from_proc_status() {
    let status = "Name:\tpiston-webhooks\nVmHWM:\t  90112 kB\nVmRSS:\t   81234 kB\nThreads:\t5\n";
    assert_eq!(status_kib(status, "VmRSS"), Some(81234));
    assert_eq!(status_kib(status, "VmHWM"), Some(90112));
    assert_eq!(status_kib(status, "VmSwap"), None);
}

#[test]
fn reads_cpu_time_from_proc_stat_even_with_odd_command_names() {
    let stat =
        "4242 (piston (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 1234 566 0 0 20 0 7 0 100 0 0";
    assert_eq!(stat_cpu_seconds(stat), Some(18.0));
    assert_eq!(stat_cpu_seconds("garbage"), None);
}

#[test]
fn the_daemon_gets_the_concurrency_the_baseline_is_measured_at() {
    let mut opts = DaemonOptions {
        master_api_key: "k".into(),
        max_in_flight_per_hook: 8,
        max_in_flight: 256,
        retry_base_ms: 100,
        failure_threshold: 1_000_000,
        amqp: None,
    };
    assert_eq!(
        opts.tuning_flags(),
        [
            "--max-in-flight-per-hook",
            "8",
            "--max-in-flight",
            "256",
            "--retry-base-ms",
            "100",
            "--failure-threshold",
            "1000000"
        ]
    );
    opts.amqp = Some(AmqpFlags {
        url: "amqp://guest:secret@127.0.0.1:5672/%2f".into(),
        queue: "q".into(),
        dead_letter: "q.dead".into(),
        prefetch: Some(50),
    });
    let flags = opts.tuning_flags();
    assert_eq!(
        flags[8..],
        [
            "--amqp-queue",
            "q",
            "--amqp-dead-letter",
            "q.dead",
            "--amqp-prefetch",
            "50"
        ]
    );
    // The broker's URL (with its password) is not a flag.
    assert!(!flags.iter().any(|f| f.contains("secret")));
}
