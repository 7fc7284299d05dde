//! `GET /healthz`: is the gateway serving, and which branches did not load.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::call::Gateway;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    let snapshot = gw.snapshot();
    let failed: serde_json::Map<String, serde_json::Value> =
        snapshot.profiles.broken_all().map(|(b, why)| (b.to_string(), serde_json::Value::from(why))).collect();
    Json(serde_json::json!({
        "ok": true,
        "branches": snapshot.profiles.len(),
        "failed": failed,
    }))
    .into_response()
}
