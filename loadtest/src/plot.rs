//! `--plot FILE.svg`: throughput (accepted events/s and deliveries/s) and the p99
//! latency of each second's deliveries over the run, as an SVG chart (plotters).

use std::path::Path;

use plotters::prelude::*;

use super::report::Second;
use super::LoadtestError;

/// Writes the chart of `series` to `path`.
pub(crate) fn write(path: &Path, series: &[Second], title: &str) -> Result<(), LoadtestError> {
    draw(path, series, title).map_err(|message| LoadtestError::Plot {
        path: path.display().to_string(),
        message,
    })
}

fn draw(path: &Path, series: &[Second], title: &str) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1100, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let (upper, lower) = root.split_vertically(360);

    let seconds = series.len().max(1) as f64;
    let max_rate = series
        .iter()
        .map(|s| s.deliveries.max(s.events_accepted))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&upper)
        .margin(12)
        .caption("throughput per second", ("sans-serif", 16))
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds, 0f64..max_rate * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the load started")
        .y_desc("per second")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            series
                .iter()
                .map(|s| (s.second as f64 + 0.5, s.deliveries as f64)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("deliveries/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            series
                .iter()
                .map(|s| (s.second as f64 + 0.5, s.events_accepted as f64)),
            GREEN.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("events accepted/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;

    let max_p99 = series.iter().map(|s| s.p99_ms).fold(0.0, f64::max).max(1.0);
    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .caption(
            "p99 send->receipt latency of each second's deliveries",
            ("sans-serif", 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds, 0f64..max_p99 * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the load started")
        .y_desc("ms")
        .y_label_formatter(&|v| {
            if max_p99 < 10.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.0}")
            }
        })
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            series
                .iter()
                .filter(|s| s.deliveries > 0)
                .map(|s| (s.second as f64 + 0.5, s.p99_ms)),
            RED.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label("p99 ms")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
