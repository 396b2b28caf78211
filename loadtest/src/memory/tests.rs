use super::*;

fn at(at_ms: u64, rss_kib: u64) -> MemorySample {
    MemorySample {
        at_ms,
        rss_kib,
        ..MemorySample::default()
    }
}

fn owed(at_ms: u64, rss_kib: u64, pending: u64) -> MemorySample {
    MemorySample {
        at_ms,
        rss_kib,
        pending_deliveries: Some(pending),
        events_appended: Some(pending),
    }
}

#[test]
fn the_summary_gives_min_median_max_and_the_last_reading() {
    let samples = [
        at(0, 50_000),
        at(500, 90_000),
        at(1000, 70_000),
        at(1500, 60_000),
    ];
    assert_eq!(
        summarize(&samples),
        Some(RssSummary {
            samples: 4,
            every_ms: 500,
            min_kib: 50_000,
            median_kib: 60_000,
            max_kib: 90_000,
            end_kib: 60_000,
        })
    );
    let one = summarize(&[at(0, 42)]).expect("one sample");
    assert_eq!(
        (one.min_kib, one.median_kib, one.max_kib, one.end_kib),
        (42, 42, 42, 42)
    );
    assert_eq!(summarize(&[]), None);
}

#[test]
fn the_dead_backlog_gives_the_rss_at_each_tenth_of_the_backlog() {
    // The backlog grows by 100,000 a reading to 1,000,000; RSS by 1 MiB a reading.
    let samples: Vec<MemorySample> = (0..=10u64)
        .map(|i| owed(i * 500, 40_000 + i * 1024, i * 100_000))
        .collect();
    let d = dead_backlog(1_000_000, &samples).expect("samples");
    assert_eq!(d.events, 1_000_000);
    assert_eq!(d.owed_at_end, Some(1_000_000));
    assert_eq!(
        (d.rss_start_kib, d.rss_max_kib, d.rss_end_kib),
        (40_000, 50_240, 50_240)
    );
    // 10,240 KiB over 1,000,000 owed.
    assert_eq!(d.kib_per_100k_owed, Some(1024.0));
    assert_eq!(d.steps.len(), 10);
    assert_eq!(
        d.steps[0],
        BacklogStep {
            owed: 100_000,
            rss_kib: 41_024,
            at_ms: 500
        }
    );
    assert_eq!(d.steps[9].owed, 1_000_000);
}

#[test]
fn a_backlog_that_jumps_gives_each_reading_once() {
    // All owed at the second reading (a fast load), then flat.
    let samples = [
        owed(0, 40_000, 0),
        owed(500, 45_000, 2_000),
        owed(1000, 45_500, 2_000),
    ];
    let d = dead_backlog(2_000, &samples).expect("samples");
    assert_eq!(
        d.steps,
        vec![BacklogStep {
            owed: 2_000,
            rss_kib: 45_000,
            at_ms: 500
        }]
    );
    assert_eq!(d.kib_per_100k_owed, Some(275_000.0));
}

#[test]
fn nothing_owed_gives_no_rate_and_no_steps() {
    let d = dead_backlog(10, &[at(0, 40_000), at(500, 41_000)]).expect("samples");
    assert_eq!((d.owed_at_end, d.kib_per_100k_owed), (None, None));
    assert!(d.steps.is_empty());
    assert_eq!(dead_backlog(10, &[]), None);
}

#[tokio::test]
async fn this_process_can_be_sampled_until_the_end() {
    let clock = Clock::new();
    let sampler = Sampler::start(Probe {
        pid: std::process::id(),
        clock,
        origin_us: clock.now_us(),
        log: None,
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let samples = sampler.finish().await;
    // The first tick at once, and the reading at the end.
    assert!(samples.len() >= 2, "{samples:?}");
    assert!(samples.iter().all(|s| s.rss_kib > 0), "{samples:?}");
    assert!(samples.iter().all(|s| s.pending_deliveries.is_none()));
    assert!(samples.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[tokio::test]
async fn a_process_that_is_gone_gives_no_reading() {
    // Pid 0 has no /proc entry.
    let probe = Probe {
        pid: 0,
        clock: Clock::new(),
        origin_us: 0,
        log: None,
    };
    assert_eq!(probe.read().await, None);
}
