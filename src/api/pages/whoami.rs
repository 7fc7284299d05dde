//! `GET /v1/whoami`: what the presented key may do. The pages ask it first,
//! so they know whether to ask for a key (401) before anything else, and
//! which branches to offer; it tells nothing about other keys.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::api::{credential, only_get, query_param, refused};
use crate::call::Gateway;
use crate::guard::keys::{self, Caller};
use crate::outcome::{ActionResult, Refusal};

pub(in crate::api) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/v1/whoami", get(whoami).fallback(only_get))
}

/// The caller, as the gateway sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Whoami {
    /// The key's name; `null` when the gateway has no keys.
    key: Option<String>,
    /// Whether the gateway has keys (then every request needs one).
    keys_required: bool,
    /// May use `/v1/admin/*` and the admin page's test form.
    admin: bool,
    /// The branches the key may use; `null`: every branch.
    branches: Option<Vec<String>>,
}

/// Who the presented key is: its name, whether it is an admin key, its branches.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "pages",
    params(("key" = Option<String>, Query, description = "The API key, for software that cannot send a header")),
    responses(
        (status = 200, description = "The key is valid (or none is needed)", body = Whoami),
        (status = 401, description = "`unauthorized`: no key, or a wrong one", body = ActionResult),
    )
)]
pub(in crate::api) async fn whoami(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let snapshot = gw.snapshot();
    let keys_required = !snapshot.settings.keys.is_empty();
    let who = match keys::authenticate(&snapshot.settings.keys, &credential(&headers, query_param(&uri, "key"))) {
        Ok(Caller::Key(k)) => {
            Whoami { key: Some(k.name.clone()), keys_required, admin: k.admin, branches: k.branches.clone() }
        }
        Ok(Caller::Local | Caller::Anonymous) => Whoami { key: None, keys_required, admin: true, branches: None },
        Err(e) => return refused(Refusal::from(e)),
    };
    Json(who).into_response()
}
