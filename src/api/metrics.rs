//! `GET /metrics`: the daemon's metrics in the Prometheus text format, no auth, no
//! envelope (it sets no envelope fields, so the envelope middleware passes it through).
//! The families are `crate::telemetry::metrics`'s; docs/metrics.md describes them.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::state::AppState;
use crate::telemetry::metrics::CONTENT_TYPE;

/// `GET /metrics`: every family, the state gauges read now.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "The Prometheus text exposition format 0.0.4; labels never carry account or webhook ids (docs/metrics.md).",
    security(()),
    responses((status = 200, description = "Every metric family.", content_type = "text/plain; version=0.0.4", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let figures = state.scrape_figures();
    let text = state.metrics().render(&figures);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}
