//! `GET /v1/calls/{id}` and `POST /v1/calls/{id}/{action}`: an earlier dial
//! by the gateway id its answer carried, read back or acted on. An ERP that
//! started a call keeps one id, not the branch, extension and PBX call id.
//! `GET /v1/calls` lists the dial log, newest first, a page at a time.
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
use crate::calls::{self, CallView, Query};
use crate::number::restore_plus;
use crate::outcome::{ActionResult, Refusal};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/calls", get(list_calls).fallback(only_get))
        .route("/v1/calls/{id}", get(read_call).fallback(only_get))
        .route("/v1/calls/{id}/{action}", post(act_on_call).fallback(only_post))
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
    let call = match gw.call(&credential(&headers, query_value(&uri, "key")), &id) {
        Ok(call) => call,
        Err(r) => return refused(r),
    };
    let events = match gw.call_events(&call.id) {
        Ok(events) => events,
        Err(r) => return refused(r),
    };
    let mut view = CallView::from(&call);
    // Each event was stored as the JSON it was sent as; one that no longer
    // reads is shown as its text rather than hiding the call.
    view.events = Some(
        events
            .into_iter()
            .map(|e| serde_json::from_str(&e.json).unwrap_or(serde_json::Value::String(e.json)))
            .collect(),
    );
    Json(view).into_response()
}

/// A page of the dial log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Page<'a> {
    calls: Vec<CallView<'a>>,
    /// The `before=` of the next page; `null` on the last one.
    next: Option<&'a str>,
}

/// `GET /v1/calls`'s query, for the API description only: the handler
/// reads the query itself ([`list_query`]), refusing a name given twice
/// and any name not listed here.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct ListDoc {
    /// Only this branch (`403` if the key may not use it).
    branch: Option<String>,
    /// Only this extension; also `ext`. Separators do not matter.
    extension: Option<String>,
    /// Only this number, as received or as dialled; also `to`.
    number: Option<String>,
    /// Only this action (`dial`, `hangup`, …).
    action: Option<String>,
    /// Only entries since: RFC 3339 (`2026-11-23T14:00:00Z`) or a duration back (`1h`, `7d`).
    since: Option<String>,
    /// The next page: the `next` of the page before.
    before: Option<String>,
    /// At most this many, 1 to 500 (more reads as 500); default 50.
    limit: Option<u32>,
    /// The API key, for software that cannot send a header.
    key: Option<String>,
}

/// The dial log: every dial and action that was sent, newest first, a page
/// at a time. A key sees only its branches.
#[utoipa::path(
    get,
    path = "/v1/calls",
    tag = "calls",
    params(ListDoc),
    responses(
        (status = 200, description = "A page of the dial log", body = Page),
        (status = 400, description = "`invalid_request`: an unknown or repeated parameter, a bad `limit` or `since`", body = ActionResult),
        (status = 401, description = "`unauthorized`", body = ActionResult),
        (status = 403, description = "`forbidden`: `branch` is outside the key", body = ActionResult),
    )
)]
pub(super) async fn list_calls(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let (mut query, key) = match list_query(uri.query().unwrap_or(""), SystemTime::now()) {
        Ok(q) => q,
        Err(r) => return refused(r),
    };
    let credential = credential(&headers, key);
    let limit = query.limit;
    // One more than asked: whether there is a next page.
    query.limit += 1;
    // A filter on an unindexed column may scan: off the async threads.
    let listed = tokio::task::spawn_blocking(move || gw.list_calls(&credential, query)).await;
    let mut calls = match listed {
        Ok(Ok(calls)) => calls,
        Ok(Err(r)) => return refused(r),
        Err(_) => return refused(Refusal::Internal("reading the dial log failed".into())),
    };
    let more = calls.len() > limit;
    calls.truncate(limit);
    let next = if more { calls.last().map(|c| c.id.as_str()) } else { None };
    Json(Page { calls: calls.iter().map(CallView::from).collect(), next }).into_response()
}

/// Reads `GET /v1/calls`'s query: the filters and the `key=` it carried.
/// Each name may appear once; an unknown one is refused (a typo would
/// otherwise list everything).
fn list_query(query: &str, now: SystemTime) -> Result<(Query, Option<String>), Refusal> {
    let mut q = Query::default();
    let (mut key, mut since, mut limit) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "branch" => &mut q.branch,
            "extension" | "ext" => &mut q.extension,
            "number" | "to" => &mut q.number,
            "action" => &mut q.action,
            "since" => &mut since,
            "before" => &mut q.before,
            "limit" => &mut limit,
            "key" => &mut key,
            other => return Err(Refusal::InvalidRequest(format!("unknown parameter `{other}`"))),
        };
        if slot.is_some() {
            return Err(Refusal::InvalidRequest(format!("`{name}` is given twice")));
        }
        *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
    }
    q.number = q.number.map(|n| restore_plus(&n).into_owned());
    q.extension = q.extension.map(|e| calls::extension_key(&restore_plus(&e)));
    if let Some(text) = since {
        q.since = Some(calls::parse_since(&text, now).map_err(Refusal::InvalidRequest)?);
    }
    if let Some(text) = limit {
        q.limit = match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => n.min(calls::MAX_LIMIT),
            _ => {
                return Err(Refusal::InvalidRequest(format!(
                    "limit={text:?}: use a number from 1 to {}",
                    calls::MAX_LIMIT
                )));
            }
        };
    }
    Ok((q, key))
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
    fn list_queries_read_filters_bound_the_limit_and_refuse_typos() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let (q, key) = list_query("branch=b&ext=2-01&number=%2044&since=1h&limit=9999&key=k&before=01M", now).unwrap();
        assert_eq!(
            (q.branch.as_deref(), q.extension.as_deref(), q.number.as_deref()),
            (Some("b"), Some("201"), Some("+44"))
        );
        assert_eq!(q.since, Some(now - std::time::Duration::from_secs(3600)));
        assert_eq!((q.limit, key.as_deref(), q.before.as_deref()), (calls::MAX_LIMIT, Some("k"), Some("01M")));
        assert_eq!(list_query("", now).unwrap().0.limit, calls::DEFAULT_LIMIT);
        for bad in ["limit=0", "limit=ten", "since=soon", "brnch=b", "branch=a&branch=b"] {
            assert!(list_query(bad, now).is_err(), "{bad}");
        }
    }

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
