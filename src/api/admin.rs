//! `/v1/admin/*`: `reload` loads every profile again now (`POST`), or shows
//! the last load (`GET`); `branches` lists every branch with its load state
//! (for the admin page); `dial` is the admin page's test form. Each needs a
//! key with `admin: true`; with no keys configured (a loopback gateway)
//! anyone may. An admin key with `branches:` sees and dials only those.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::actions::{self, ActionBody};
use super::{credential, only_get, only_post, query_param};
use crate::call::{BranchState, Gateway, Report, Trigger};
use crate::outcome::{ActionResult, Refusal};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/admin/reload", post(reload).get(last_reload))
        .route("/v1/admin/branches", get(branches).fallback(only_get))
        .route("/v1/admin/dial", post(test_dial).fallback(only_post))
}

/// Reload the profiles now.
///
/// Every profile is loaded again. A profile that fails keeps its last good
/// version (listed under `failed` and `kept`); a removed file removes its
/// branch; dials in flight finish with the version they started with.
/// Changed settings in `webdial.yaml` are listed under `restart_needed`:
/// they apply after a restart.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "admin",
    responses(
        (status = 200, description = "The reload ran; `ok` says whether every profile loaded", body = Report),
        (status = 401, description = "No key, or a wrong one", body = ActionResult),
        (status = 403, description = "The key is not an admin key", body = ActionResult),
    )
)]
pub(super) async fn reload(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(refused) = unless_admin(&gw, &headers, &uri, "reload") {
        return refused;
    }
    Json(&*gw.reload(Trigger::Api).await).into_response()
}

/// The last load of the profiles (start-up or reload).
#[utoipa::path(
    get,
    path = "/v1/admin/reload",
    tag = "admin",
    responses(
        (status = 200, description = "The last load", body = Report),
        (status = 401, description = "No key, or a wrong one", body = ActionResult),
        (status = 403, description = "The key is not an admin key", body = ActionResult),
    )
)]
pub(super) async fn last_reload(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(refused) = unless_admin(&gw, &headers, &uri, "reload") {
        return refused;
    }
    Json(&*gw.last_reload()).into_response()
}

/// Every branch, also those whose file did not load, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Branches {
    branches: Vec<BranchState>,
}

/// Every branch with its load state and its error (`FILE:LINE:COL:
/// message`), also branches whose last load failed; an admin key with
/// `branches:` sees only those.
#[utoipa::path(
    get,
    path = "/v1/admin/branches",
    tag = "admin",
    responses(
        (status = 200, description = "The branches, by name", body = Branches),
        (status = 401, description = "No key, or a wrong one", body = ActionResult),
        (status = 403, description = "The key is not an admin key", body = ActionResult),
    )
)]
pub(super) async fn branches(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    match gw.branches(&credential(&headers, query_param(&uri, "key"))) {
        Ok(branches) => Json(Branches { branches }).into_response(),
        Err(r) => refusal(&r, "branches"),
    }
}

/// The admin page's test form: a dial (a dry run, or a real one) that
/// needs an admin key, whatever the dial's key could do on `/v1/dial`.
/// Then exactly as `POST /v1/dial`: the key's branches and rate apply,
/// `Idempotency-Key` and the duplicate window too.
#[utoipa::path(
    post,
    path = "/v1/admin/dial",
    tag = "admin",
    request_body = ActionBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key again within 24 h gets the first answer")),
    responses(super::openapi::Answers)
)]
pub(super) async fn test_dial(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Response {
    if let Some(refused) = unless_admin(&gw, &headers, &uri, "dial") {
        return refused;
    }
    actions::post(gw, "dial".into(), headers, uri, body).await
}

/// The refusal answer, unless the caller may administer the gateway.
fn unless_admin(gw: &Gateway, headers: &HeaderMap, uri: &Uri, action: &str) -> Option<Response> {
    gw.administer(&credential(headers, query_param(uri, "key"))).err().map(|r| refusal(&r, action))
}

fn refusal(refusal: &Refusal, action: &str) -> Response {
    let id = ulid::Ulid::generate().to_string();
    let result = ActionResult::refused(&id, refusal, None, action);
    (result.http_status(), Json(result)).into_response()
}
