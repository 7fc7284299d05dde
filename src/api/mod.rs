//! The HTTP API (SPEC §3): `POST /v1/dial`, `GET /v1/dial`, `GET /healthz`.
//!
//! Handlers only translate HTTP to a [`DialInput`] and a [`DialResult`] back;
//! all decisions are the gateway's. Every answer, including a malformed
//! request, an unknown path and a panic, is the one JSON shape.

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::call::outcome::{DialResult, Refusal};
use crate::call::{DialInput, Gateway};
use crate::guard::keys::Credential;
use crate::number::restore_plus;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The API's routes over a gateway.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/dial", get(dial_get).post(dial_post).fallback(wrong_method))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(gateway)
}

/// Accept queue length: `TcpListener::bind` asks for 128, which a burst of
/// a few hundred new connections overflows (and each overflow is a 1 s SYN
/// retransmit for that caller).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` for serving, with a [`BACKLOG`]-long accept queue.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `router` on an already-bound listener until `shutdown` completes.
/// Taking the listener lets tests bind port 0.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway)).with_graceful_shutdown(shutdown).await
}

/// `POST /v1/dial` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    branch: Option<String>,
    #[serde(alias = "ext", alias = "from")]
    extension: Option<String>,
    #[serde(alias = "to")]
    number: Option<String>,
    caller_id: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `GET /v1/dial` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialQuery {
    branch: Option<String>,
    #[serde(alias = "ext", alias = "from")]
    extension: Option<String>,
    #[serde(alias = "to")]
    number: Option<String>,
    caller_id: Option<String>,
    external_id: Option<String>,
    dry_run: Option<String>,
    /// The API key, for software that can only open a URL.
    key: Option<String>,
}

async fn dial_post(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Json<DialBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return refused(Refusal::InvalidRequest(json_problem(&rejection))),
    };
    let query_key = uri
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned()));
    let input = DialInput {
        credential: credential(&headers, query_key),
        idempotency_key: idempotency_key(&headers),
        branch: body.branch,
        action: None,
        extension: body.extension,
        number: body.number,
        caller_id: body.caller_id,
        external_id: body.external_id,
        dry_run: body.dry_run,
    };
    respond(gw.dial(input).await, false)
}

async fn dial_get(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    query: Result<Query<DialQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(rejection) => return refused(Refusal::InvalidRequest(rejection.body_text())),
    };
    let dry_run = match q.dry_run.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "false" | "0" | "no") => false,
        Some("true" | "1" | "yes") => true,
        Some(other) => {
            return refused(Refusal::InvalidRequest(format!("dry_run={other:?}: use true or false")));
        }
    };
    let input = DialInput {
        credential: credential(&headers, q.key),
        idempotency_key: idempotency_key(&headers),
        branch: q.branch,
        action: None,
        extension: q.extension.map(|e| restore_plus(&e).into_owned()),
        number: q.number.map(|n| restore_plus(&n).into_owned()),
        caller_id: q.caller_id.map(|c| restore_plus(&c).into_owned()),
        external_id: q.external_id,
        dry_run,
    };
    respond(gw.dial(input).await, wants_html(&headers))
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    Json(serde_json::json!({"ok": true, "branches": gw.profiles().len()})).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    refused(Refusal::UnknownAction { branch: String::new(), action: uri.path().to_string() })
}

async fn wrong_method() -> Response {
    refused(Refusal::InvalidRequest("use GET or POST on /v1/dial".into()))
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let mut r = DialResult::new("", crate::call::outcome::Status::BadResponse, None, "dial");
    r.message = Some("internal error: the gateway failed while handling this request".into());
    (StatusCode::INTERNAL_SERVER_ERROR, Json(r)).into_response()
}

fn refused(refusal: Refusal) -> Response {
    let id = ulid::Ulid::generate().to_string();
    respond(DialResult::refused(&id, &refusal, None, "dial"), false)
}

/// The JSON answer; a browser opening a client-side URI is redirected to it.
fn respond(result: DialResult, html: bool) -> Response {
    if html && result.status == crate::call::outcome::Status::OpenUri {
        if let Some(location) = result.uri.as_deref().and_then(|u| HeaderValue::from_str(u).ok()) {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, location)], Json(result)).into_response();
        }
    }
    (result.http_status(), Json(result)).into_response()
}

/// The key presented: `Authorization: Bearer`, `X-Api-Key`, or `?key=`.
fn credential(headers: &HeaderMap, query_key: Option<String>) -> Credential {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let bearer = text("authorization").and_then(|a| {
        let (scheme, rest) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string())
    });
    let key = bearer.or_else(|| text("x-api-key").map(str::to_string)).or(query_key.filter(|k| !k.is_empty()));
    Credential::Presented(key)
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A browser (not a script) asking: `Accept` prefers HTML.
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn json_problem(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => "send the dial as JSON with Content-Type: application/json".into(),
        JsonRejection::BytesRejection(_) => {
            format!("the request body is too large (over {MAX_BODY} bytes) or could not be read")
        }
        other => other.body_text(),
    }
}
