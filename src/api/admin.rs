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
use crate::call::{Gateway, Report, Trigger};
use crate::guard::keys::{self, Caller};
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
    if let Err(refused) = admin(&gw, &headers, &uri, "reload") {
        return *refused;
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
    if let Err(refused) = admin(&gw, &headers, &uri, "reload") {
        return *refused;
    }
    Json(&*gw.last_reload()).into_response()
}

/// One branch as the admin page shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Branch {
    /// The branch: its profile's file name without `.yaml`.
    branch: String,
    /// The profile's `name:`, if it has one.
    name: Option<String>,
    /// `loaded`, or `failed` when its file's last load failed.
    state: &'static str,
    /// Served (dials work): loaded, or failed but kept at its last good version.
    served: bool,
    /// The last load's first problem, as `FILE:LINE:COL: message`.
    error: Option<String>,
    /// The actions its profile has (of the version served).
    actions: Vec<String>,
}

/// Every branch, also those whose file did not load, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Branches {
    branches: Vec<Branch>,
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
    let scope = match admin(&gw, &headers, &uri, "branches") {
        Ok(scope) => scope,
        Err(refused) => return *refused,
    };
    let snapshot = gw.snapshot();
    let profiles = &snapshot.profiles;
    let mut list: Vec<Branch> = profiles
        .iter()
        .map(|p| Branch {
            branch: p.branch.clone(),
            name: p.name.clone(),
            state: if profiles.broken(&p.branch).is_some() { "failed" } else { "loaded" },
            served: true,
            error: profiles.broken(&p.branch).map(str::to_string),
            actions: p.action_names().map(str::to_string).collect(),
        })
        .collect();
    for (branch, why) in profiles.broken_all().filter(|(b, _)| profiles.get(b).is_none()) {
        list.push(Branch {
            branch: branch.to_string(),
            name: None,
            state: "failed",
            served: false,
            error: Some(why.to_string()),
            actions: Vec::new(),
        });
    }
    list.retain(|b| scope.as_ref().is_none_or(|s| s.contains(&b.branch)));
    list.sort_by(|a, b| a.branch.cmp(&b.branch));
    Json(Branches { branches: list }).into_response()
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
    if let Err(refused) = admin(&gw, &headers, &uri, "dial") {
        return *refused;
    }
    actions::post(gw, "dial".into(), headers, uri, body).await
}

/// The caller's branches (`None`: all) if it may administer the gateway,
/// else the refusal answer.
fn admin(gw: &Gateway, headers: &HeaderMap, uri: &Uri, action: &str) -> Result<Option<Vec<String>>, Box<Response>> {
    let snapshot = gw.snapshot();
    let credential = credential(headers, query_param(uri, "key"));
    let checked =
        keys::authenticate(&snapshot.settings.keys, &credential).and_then(|c| keys::may_administer(&c).map(|()| c));
    match checked {
        Ok(Caller::Key(k)) => Ok(k.branches.clone()),
        Ok(Caller::Local | Caller::Anonymous) => Ok(None),
        Err(e) => {
            let id = ulid::Ulid::generate().to_string();
            let result = ActionResult::refused(&id, &Refusal::from(e), None, action);
            Err(Box::new((result.http_status(), Json(result)).into_response()))
        }
    }
}
