//! `GET /v1/calls/{id}` and `POST /v1/calls/{id}/{action}`: an earlier dial
//! by the gateway id its answer carried, read back or acted on. An ERP that
//! started a call keeps one id, not the branch, extension and PBX call id.
//!
//! A `POST` body is optional (a hang-up needs nothing more), and when given
//! is JSON with only what the dial does not already say: a target `number`,
//! `digits`, `options`, `dry_run`. Branch, extension and call id come from
//! the dial, never from the caller, so they cannot be pointed elsewhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::actions::{Scalar, dry_run_flag, idempotency_key};
use super::{MAX_BODY, credential, refused, respond};
use crate::call::Gateway;
use crate::call::input::ActionInput;
use crate::calls::{Call, CallState};
use crate::outcome::{ActionResult, Refusal, Status};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/calls/{id}", get(read_call).fallback(only_get))
        .route("/v1/calls/{id}/{action}", post(act_on_call).fallback(only_post))
}

/// A dial as `GET /v1/calls/{id}` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CallView<'a> {
    id: &'a str,
    branch: &'a str,
    extension: &'a str,
    /// As received.
    number: &'a str,
    /// After the branch's number rules.
    dialled: Option<&'a str>,
    call_id: Option<&'a str>,
    state: CallState,
    /// The status of the dial's own answer.
    status: Status,
    created: String,
    /// Call events tied to this dial; none are received yet.
    #[schema(value_type = Vec<Object>)]
    events: [(); 0],
}

impl<'a> From<&'a Call> for CallView<'a> {
    fn from(c: &'a Call) -> Self {
        CallView {
            id: &c.id,
            branch: &c.branch,
            extension: &c.extension,
            number: &c.number,
            dialled: c.dialled.as_deref(),
            call_id: c.call_id.as_deref(),
            state: c.state,
            status: c.status,
            created: rfc3339(c.created),
            events: [],
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn query_value(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// An earlier dial, by the gateway id its answer carried (`id`). A key
/// sees only dials on its branches.
#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "The `id` of the dial's answer")),
    responses(
        (status = 200, description = "The dial", body = CallView),
        (status = 404, description = "`unknown_call`", body = ActionResult),
        (status = 401, description = "`unauthorized`", body = ActionResult),
    )
)]
pub(super) async fn read_call(
    State(gw): State<Arc<Gateway>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Ok(Path(id)) = id else {
        return refused(Refusal::InvalidRequest("the call id in the path cannot be read".into()));
    };
    match gw.call(&credential(&headers, query_value(&uri, "key")), &id) {
        Ok(call) => Json(CallView::from(&call)).into_response(),
        Err(r) => refused(r),
    }
}

/// `POST` body: only what the dial does not already say.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CallBody {
    /// A target number (transfer, divert); also `to`.
    #[serde(alias = "to")]
    number: Option<String>,
    /// DTMF digits for `dtmf`.
    digits: Option<String>,
    /// Options the action declares, by name.
    #[serde(default)]
    #[schema(schema_with = super::openapi::scalar_map)]
    options: BTreeMap<String, Scalar>,
    /// Render and answer what would be sent, sending nothing.
    #[serde(default)]
    #[schema(schema_with = super::openapi::scalar)]
    dry_run: Option<Scalar>,
}

/// Run an action on an earlier dial: its branch, extension and PBX call id
/// come from the dial. The body is optional.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/{action}",
    tag = "calls",
    request_body(content = Option<CallBody>, description = "Optional: what the dial does not already say"),
    params(
        ("id" = String, Path, description = "The `id` of the dial's answer"),
        ("action" = String, Path, description = "An action the dial's branch has (`hangup`, `transfer`, …)"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key again within 24 h gets the first answer"),
    ),
    responses(super::openapi::Answers)
)]
pub(super) async fn act_on_call(
    State(gw): State<Arc<Gateway>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path((call, action))) = path else {
        return refused(Refusal::InvalidRequest("the call id or action in the path cannot be read".into()));
    };
    let Ok(body) = body else {
        return refused(Refusal::InvalidRequest(format!(
            "the request body is too large (over {MAX_BODY} bytes) or could not be read"
        )));
    };
    let body = match read_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let query_dry_run = query_value(&uri, "dry_run");
    let dry_run = match dry_run_flag(body.dry_run.as_ref().map(|s| s.0.as_str()).or(query_dry_run.as_deref())) {
        Ok(d) => d,
        Err(r) => return refused(r),
    };
    let input = ActionInput {
        action: Some(action),
        number: body.number,
        digits: body.digits,
        options: body.options.into_iter().map(|(k, v)| (k, v.0)).collect(),
        idempotency_key: idempotency_key(&headers),
        dry_run,
        ..Default::default()
    };
    let credential = credential(&headers, query_value(&uri, "key"));
    respond(gw.run_on_call(credential, call, input).await, false)
}

/// An empty body is no fields (`curl -X POST …/hangup`); anything else
/// must be JSON, and an unknown field is refused like on `/v1/actions`.
fn read_body(headers: &HeaderMap, bytes: &[u8]) -> Result<CallBody, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CallBody::default());
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(Refusal::InvalidRequest("send the request as JSON with Content-Type: application/json".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| Refusal::InvalidRequest(format!("the JSON body cannot be read: {e}")))
}

async fn only_get(method: Method, uri: Uri) -> Response {
    wrong_method(&method, &uri, "GET")
}

/// Acting on a call changes it, so a URL a link checker or a browser
/// prefetch opens must not: `POST` only.
async fn only_post(method: Method, uri: Uri) -> Response {
    wrong_method(&method, &uri, "POST")
}

fn wrong_method(method: &Method, uri: &Uri, allowed: &str) -> Response {
    refused(Refusal::InvalidRequest(format!("{method} is not allowed on {}: use {allowed}", uri.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_optional_but_when_given_it_is_json_without_unknown_fields() {
        let json = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            h
        };
        assert!(read_body(&HeaderMap::new(), b"").is_ok_and(|b| b.number.is_none()));
        let b = read_body(&json("application/json; charset=utf-8"), br#"{"to": "187", "options": {"n": 3}}"#).unwrap();
        assert_eq!((b.number.as_deref(), b.options["n"].0.as_str()), (Some("187"), "3"));
        assert!(read_body(&HeaderMap::new(), br#"{"number": "187"}"#).is_err(), "no content type");
        assert!(read_body(&json("application/json"), br#"{"call_id": "1"}"#).is_err(), "the call id is the dial's");
        assert!(read_body(&json("application/json"), br#"{"branch": "b"}"#).is_err(), "so is the branch");
    }
}
