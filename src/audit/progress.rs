//! The progress bar of long audit runs, on standard error.
//!
//! The work counts records into an atomic; a helper thread shows a bar (or a spinner when
//! the total is unknown) only once the run has lasted [`SHOW_AFTER`], refreshes it from the
//! counter, and clears it when the work ends. A short run draws nothing, and the work pays
//! one relaxed atomic add per record.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes before its bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(400);
/// How often the bar is refreshed.
const REFRESH: Duration = Duration::from_millis(100);

/// What a progress bar counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Whether to draw at all (standard error is a terminal).
    pub(crate) visible: bool,
    /// The records expected, if known.
    pub(crate) total: Option<u64>,
    /// Shown before the bar.
    pub(crate) label: &'static str,
}

/// Runs `work`, giving it a counter of records done, with a bar on standard error when
/// `plan.visible` and the run is long.
pub(crate) fn with_progress<T>(plan: Plan, work: impl FnOnce(&AtomicU64) -> T) -> T {
    let done = AtomicU64::new(0);
    if !plan.visible {
        return work(&done);
    }
    let finished = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| draw(plan, &done, &finished));
        let result = work(&done);
        finished.store(true, Ordering::Release);
        result
    })
}

/// The helper thread: waits, then draws until the work is finished.
fn draw(plan: Plan, done: &AtomicU64, finished: &AtomicBool) {
    let started = Instant::now();
    while started.elapsed() < SHOW_AFTER {
        if finished.load(Ordering::Acquire) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let bar = match plan.total {
        Some(total) => {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} records, {eta} left",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        }
        None => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar
        }
    };
    bar.set_message(plan.label);
    while !finished.load(Ordering::Acquire) {
        bar.set_position(done.load(Ordering::Relaxed));
        bar.tick();
        thread::sleep(REFRESH);
    }
    bar.finish_and_clear();
}
