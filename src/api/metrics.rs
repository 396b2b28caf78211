//! `GET /metrics`: the daemon's metrics in the Prometheus text format, no auth, no
//! envelope (it sets no envelope fields, so the envelope middleware passes it through).
//! The families are `crate::telemetry::metrics`'s; docs/metrics.md describes them.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::state::AppState;
use crate::telemetry::metrics::CONTENT_TYPE;

/// `GET /metrics`: every family, the state gauges read now.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let figures = state.scrape_figures();
    let text = state.metrics().render(&figures);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}
