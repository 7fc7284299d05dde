//! `/v1/admin/reload`: load every profile again now (`POST`), or show the
//! last load (`GET`). Needs a key with `admin: true`; with no keys
//! configured (a loopback gateway) anyone may.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{credential, query_param};
use crate::call::{Gateway, Report, Trigger};
use crate::guard::keys;
use crate::outcome::{ActionResult, Refusal};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/v1/admin/reload", post(reload).get(last_reload))
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
    if let Some(refused) = refusal(&gw, &headers, &uri) {
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
    if let Some(refused) = refusal(&gw, &headers, &uri) {
        return refused;
    }
    Json(&*gw.last_reload()).into_response()
}

/// The refusal answer, unless the caller may administer the gateway.
fn refusal(gw: &Gateway, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    let snapshot = gw.snapshot();
    let credential = credential(headers, query_param(uri, "key"));
    let e = keys::authenticate(&snapshot.settings.keys, &credential).and_then(|c| keys::may_administer(&c)).err()?;
    let id = ulid::Ulid::generate().to_string();
    let result = ActionResult::refused(&id, &Refusal::from(e), None, "reload");
    Some((result.http_status(), Json(result)).into_response())
}
