use super::{stat_cpu_seconds, status_kib};

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
