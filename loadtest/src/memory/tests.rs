use super::*;

fn at(at_ms: u64, rss_kib: u64) -> MemorySample {
    MemorySample { at_ms, rss_kib }
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

#[tokio::test]
async fn this_process_can_be_sampled_until_the_end() {
    let clock = Clock::new();
    let sampler = Sampler::start(std::process::id(), clock, clock.now_us());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let samples = sampler.finish();
    // The first tick at once, and the reading at the end.
    assert!(samples.len() >= 2, "{samples:?}");
    assert!(samples.iter().all(|s| s.rss_kib > 0), "{samples:?}");
    assert!(samples.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[test]
fn a_process_that_is_gone_gives_no_reading() {
    // Pid 0 has no /proc entry.
    assert_eq!(read(0, Clock::new(), 0), None);
}
