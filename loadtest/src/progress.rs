//! The live progress bar on standard error while the load runs and drains: deliveries
//! received of those expected, events accepted, and both rates over the last second.
//! Hidden when standard error is not a terminal; it only reads the counters.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{load, receiver};

/// The live progress bar on standard error (hidden when it is not a terminal).
pub(crate) struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
    receiver: Arc<receiver::ReceiverState>,
}

impl Progress {
    pub(crate) fn start(
        expected_pairs: u64,
        load: Arc<load::LoadState>,
        receiver: Arc<receiver::ReceiverState>,
    ) -> Progress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(expected_pairs), target);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} deliveries | {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let shown = bar.clone();
        let counted = Arc::clone(&receiver);
        let ticker = tokio::spawn(async move {
            // Runs until aborted by `finish`; rates over the last second.
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            let mut history: std::collections::VecDeque<(Instant, u64, u64)> =
                std::collections::VecDeque::with_capacity(8);
            loop {
                interval.tick().await;
                let now = Instant::now();
                let accepted = load.accepted.load(Ordering::Relaxed);
                let delivered = counted.unique_ok.load(Ordering::Relaxed);
                history.push_back((now, accepted, delivered));
                while history.len() > 5 {
                    history.pop_front();
                }
                let (events_rate, deliveries_rate) = match history.front() {
                    Some(&(t, a, d)) if now > t => {
                        let secs = now.duration_since(t).as_secs_f64();
                        (
                            accepted.saturating_sub(a) as f64 / secs,
                            delivered.saturating_sub(d) as f64 / secs,
                        )
                    }
                    _ => (0.0, 0.0),
                };
                shown.set_position(delivered);
                shown.set_message(format!(
                    "events {accepted} ({events_rate:.0}/s) | deliveries/s {deliveries_rate:.0}"
                ));
            }
        });
        Progress {
            bar,
            ticker,
            receiver,
        }
    }

    pub(crate) fn set_length(&self, expected_pairs: u64) {
        self.bar.set_length(expected_pairs);
    }

    pub(crate) fn finish(self) {
        self.ticker.abort();
        self.bar
            .set_position(self.receiver.unique_ok.load(Ordering::Relaxed));
        self.bar.finish();
    }
}
