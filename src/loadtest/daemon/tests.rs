use super::status_kib;

#[test]
fn reads_vm_rss_and_hwm_from_proc_status() {
    let status = "Name:\tpiston-webhooks\nVmHWM:\t  90112 kB\nVmRSS:\t   81234 kB\nThreads:\t5\n";
    assert_eq!(status_kib(status, "VmRSS"), Some(81234));
    assert_eq!(status_kib(status, "VmHWM"), Some(90112));
    assert_eq!(status_kib(status, "VmSwap"), None);
}
