//! The HTTP API: one router per area, merged here, plus what every answer
//! shares — the one JSON shape (also for a malformed request, an unknown
//! path and a panic), a request id on every request and its trace span.
//!
//! Areas: `actions` (`/v1/dial`, `/v1/actions/ACTION`), `calls`
//! (`/v1/calls/ID`, `/v1/calls/ID/ACTION`), `events` (`/v1/events/BRANCH`
//! in from PBXs, `/v1/events` out as server-sent events), `health`
//! (`/healthz`), `admin` (`/v1/admin/reload`), `metrics` (`/metrics`),
//! `openapi` (`/openapi.json`, generated from the handlers' annotations).
//! Browsers on the origins `cors:` lists may call it all (`cors`).
//!
//! Handlers only translate HTTP to an [`ActionInput`] and a result back; the
//! decisions are the gateway's ([`crate::call`]).
//!
//! [`ActionInput`]: crate::call::input::ActionInput

mod actions;
mod admin;
mod calls;
mod cors;
mod events;
mod health;
mod metrics;
mod openapi;
mod pages;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use crate::call::Gateway;
use crate::guard::keys::Credential;
use crate::outcome::{ActionResult, Refusal, Status};

pub use openapi::document as openapi_document;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The API's routes over a gateway.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let cors = gateway.snapshot().settings.cors.clone();
    let router = Router::new()
        .merge(actions::router())
        .merge(calls::router())
        .merge(events::router())
        .merge(health::router())
        .merge(admin::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .merge(pages::router())
        .fallback(not_found)
        .with_state(gateway)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::debug_span!("http", method = %req.method(), path = %req.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::x_request_id(Ulids));
    cors::layer(router, &cors)
}

/// Request ids are ULIDs, like the gateway's own result ids.
#[derive(Debug, Clone, Copy)]
struct Ulids;

impl MakeRequestId for Ulids {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::generate().to_string()).ok().map(RequestId::new)
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    refused(Refusal::NoSuchPath { method: method.to_string(), path: uri.path().to_string() })
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let id = ulid::Ulid::generate().to_string();
    respond(ActionResult::internal(&id, None, "", "the gateway failed while handling this request"), false)
}

/// Any method but `GET` on a route that only reads (a page, a stream).
async fn only_get(method: Method, uri: Uri) -> Response {
    refused(Refusal::InvalidRequest(format!("{method} is not allowed on {}: use GET", uri.path())))
}

/// Any method but `POST` on a route that acts.
async fn only_post(method: Method, uri: Uri) -> Response {
    refused(Refusal::InvalidRequest(format!("{method} is not allowed on {}: use POST", uri.path())))
}

/// A refusal before any branch or action was read.
fn refused(refusal: Refusal) -> Response {
    let id = ulid::Ulid::generate().to_string();
    respond(ActionResult::refused(&id, &refusal, None, ""), false)
}

/// The JSON answer; a browser opening a client-side URI is redirected to it.
fn respond(result: ActionResult, html: bool) -> Response {
    if html && result.status == Status::OpenUri {
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

/// The first query parameter named `name`.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A browser (not a script) asking: `Accept` prefers HTML.
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}
