//! `GET /healthz`: is the gateway serving, which branches did not load, and
//! how the last load of the profiles (start-up or reload) went.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::call::{Gateway, Report};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/healthz", get(healthz))
}

/// What `/healthz` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    /// The gateway is serving.
    ok: bool,
    /// Branches served.
    branches: usize,
    /// Branches whose file did not load, with the first problem as
    /// `FILE:LINE:COL: message` (a kept one is still served with its last
    /// good version: see `reload.kept`).
    failed: BTreeMap<String, String>,
    /// The last load of the profiles.
    reload: Report,
}

/// Whether the gateway is serving, and how its profiles loaded.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(super) async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    let snapshot = gw.snapshot();
    let failed = snapshot.profiles.broken_all().map(|(b, why)| (b.to_string(), why.to_string())).collect();
    Json(Health { ok: true, branches: snapshot.profiles.len(), failed, reload: Report::clone(&gw.last_reload()) })
        .into_response()
}
