//! `GET /metrics`: the gateway's counters in the Prometheus text format
//! (OpenMetrics), for a scraper. Open like `/healthz`: it shows branch
//! names and counts, never keys, numbers or PBX answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::call::Gateway;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/metrics", get(metrics))
}

/// Metrics in the Prometheus text format.
///
/// `webdial_requests_total{branch,action,status}`,
/// `webdial_pbx_duration_seconds{branch,action}` (histogram),
/// `webdial_in_flight{branch}`, `webdial_events_total{branch,type}`,
/// `webdial_hook_deliveries_total{result}`, `webdial_duplicates_total`,
/// `webdial_config_reload_success`, `webdial_config_reload_timestamp_seconds`,
/// `webdial_log_lines_dropped_total`. A branch or action no profile has is
/// counted as `(unknown)`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
pub(super) async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let runtime = gw.runtime();
    runtime.metrics.hook_deliveries(&runtime.hooks.counts().by_result());
    let text = runtime.metrics.render(crate::logging::dropped_lines());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}
