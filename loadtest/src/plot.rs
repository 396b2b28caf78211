//! `--plot FILE.svg`: throughput (accepted events/s and deliveries/s), the p99 latency
//! of each second's deliveries, the daemon's RSS and its pending deliveries (when they
//! were sampled, and any were pending) over the run, as an SVG chart (plotters). Only
//! draws what the report holds.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::memory::MemorySample;
use super::report::Second;
use super::LoadtestError;

/// Height of one panel, in pixels.
const PANEL_HEIGHT: u32 = 360;

/// Writes the chart of `series` and `memory` to `path`.
pub(crate) fn write(
    path: &Path,
    series: &[Second],
    memory: &[MemorySample],
    title: &str,
) -> Result<(), LoadtestError> {
    draw(path, series, memory, title).map_err(|message| LoadtestError::Plot {
        path: path.display().to_string(),
        message,
    })
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn err(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// A panel with its caption, axes and y-axis description, over `0..seconds`.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    seconds: f64,
    y_max: f64,
    y_desc: &str,
    y_decimals: usize,
) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(caption, ("sans-serif", 16))
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds, 0f64..y_max * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the load started")
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.y_decimals$}"))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(chart)
}

/// Draws one line with its legend entry.
fn line<'a, 'p: 'a>(
    chart: &mut Chart<'a, 'p>,
    points: impl IntoIterator<Item = (f64, f64)>,
    color: RGBColor,
    label: &str,
) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

fn legend<'a, 'p: 'a>(chart: &mut Chart<'a, 'p>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

fn draw(
    path: &Path,
    series: &[Second],
    memory: &[MemorySample],
    title: &str,
) -> Result<(), String> {
    let pending = |m: &MemorySample| m.pending_deliveries.unwrap_or(0) as f64;
    let max_pending = memory.iter().map(pending).fold(0.0, f64::max);
    let panels = match (memory.is_empty(), max_pending > 0.0) {
        (true, _) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    let root = SVGBackend::new(path, (1100, 40 + PANEL_HEIGHT * panels)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let areas = root.split_evenly((panels as usize, 1));
    let last_sample_s = memory.last().map_or(0.0, |m| m.at_ms as f64 / 1000.0);
    let seconds = (series.len() as f64).max(last_sample_s).max(1.0);
    let mid = |s: &Second| s.second as f64 + 0.5;

    let max_rate = series
        .iter()
        .map(|s| s.deliveries.max(s.events_accepted))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = panel(
        &areas[0],
        "throughput per second",
        seconds,
        max_rate,
        "per second",
        0,
    )?;
    let deliveries = series.iter().map(|s| (mid(s), s.deliveries as f64));
    line(&mut chart, deliveries, BLUE, "deliveries/s")?;
    let accepted = series.iter().map(|s| (mid(s), s.events_accepted as f64));
    line(&mut chart, accepted, GREEN, "events accepted/s")?;
    legend(&mut chart)?;

    let max_p99 = series.iter().map(|s| s.p99_ms).fold(0.0, f64::max).max(1.0);
    let caption = "p99 send->receipt latency of each second's deliveries";
    let decimals = if max_p99 < 10.0 { 2 } else { 0 };
    let mut chart = panel(&areas[1], caption, seconds, max_p99, "ms", decimals)?;
    let p99 = series
        .iter()
        .filter(|s| s.deliveries > 0)
        .map(|s| (mid(s), s.p99_ms));
    line(&mut chart, p99, RED, "p99 ms")?;
    legend(&mut chart)?;

    if let Some(area) = areas.get(2) {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let max_rss = memory.iter().map(|m| mib(m.rss_kib)).fold(0.0, f64::max);
        let caption = "the daemon's resident memory (VmRSS), sampled every 500 ms";
        let mut chart = panel(area, caption, seconds, max_rss.max(1.0), "MiB", 0)?;
        let rss = memory
            .iter()
            .map(|m| (m.at_ms as f64 / 1000.0, mib(m.rss_kib)));
        line(&mut chart, rss, MAGENTA, "daemon RSS MiB")?;
        legend(&mut chart)?;
    }
    if let Some(area) = areas.get(3) {
        let caption = "deliveries pending in the daemon (GET /healthz), sampled every 500 ms";
        let mut chart = panel(area, caption, seconds, max_pending, "deliveries", 0)?;
        let backlog = memory.iter().map(|m| (m.at_ms as f64 / 1000.0, pending(m)));
        line(&mut chart, backlog, BLACK, "deliveries pending")?;
        legend(&mut chart)?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
