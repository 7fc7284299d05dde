//! `GET /v1/pop?extension=E[&branch=B]`: the screen-pop page's stream —
//! each incoming call to E as it rings (events of type `ringing` that are
//! not outgoing), with the link `pop: {link}` in `webdial.yaml` builds for
//! it, rendered here, on the server, so the page only places a URL that
//! was built by the encoding rules of [`crate::settings::pop`].
//!
//! Server-sent events (`event: pop`, `id:` the event's id), key-scoped like
//! `/v1/events` (`?key=` for `EventSource`); `Last-Event-ID` resumes from
//! the replay ring. It is the one event stream of `api::events::sse`, with
//! its own filter and framing: batched, kept alive, and a client that falls
//! behind the bus's backlog is cut off and resumes so.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use crate::api::events::{Framer, sse, stream_query};
use crate::api::{only_get, refused};
use crate::call::Gateway;
use crate::events::{CallEvent, Direction, EventType};
use crate::outcome::{ActionResult, Refusal};
use crate::settings::PopLink;

pub(in crate::api) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/v1/pop", get(pop_stream).fallback(only_get))
}

/// One incoming call, as the screen-pop page shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Pop<'a> {
    /// The event's id.
    id: &'a str,
    branch: &'a str,
    extension: Option<&'a str>,
    /// The caller.
    remote: Option<&'a str>,
    call_id: Option<&'a str>,
    dial_id: Option<&'a str>,
    at: &'a str,
    /// From `pop.link`, values URL-encoded; `null` without one, or when it
    /// would not be an http(s) URL.
    link: Option<String>,
}

/// Whether `e` is a call coming in to its extension, ringing.
fn incoming(e: &CallEvent) -> bool {
    e.kind == EventType::Ringing && e.direction != Some(Direction::Out)
}

/// The event's fields by the names `pop.link` uses.
fn field(e: &CallEvent, name: &str) -> Option<String> {
    let text = |v: &Option<String>| v.clone();
    match name {
        "remote" => text(&e.remote),
        "extension" => text(&e.extension),
        "branch" => Some(e.branch.clone()),
        "call_id" => text(&e.call_id),
        "dial_id" => text(&e.dial_id),
        "external_id" => text(&e.external_id),
        "direction" => e.direction.map(|d| if d == Direction::In { "in" } else { "out" }.to_string()),
        "type" => Some(e.kind.as_str().to_string()),
        "id" => Some(e.id.clone()),
        "at" => Some(e.at.clone()),
        _ => None,
    }
}

/// `event: pop` with the event's id and its [`Pop`] as JSON.
fn frame(out: &mut Vec<u8>, e: &CallEvent, link: Option<&PopLink>) {
    let pop = Pop {
        id: &e.id,
        branch: &e.branch,
        extension: e.extension.as_deref(),
        remote: e.remote.as_deref(),
        call_id: e.call_id.as_deref(),
        dial_id: e.dial_id.as_deref(),
        at: &e.at,
        link: link.and_then(|l| l.render(|name| field(e, name))),
    };
    // Strings and options only: it serializes, on one line.
    let json = serde_json::to_string(&pop).unwrap_or_default();
    out.extend_from_slice(format!("event: pop\nid: {}\ndata: {json}\n\n", e.id).as_bytes());
}

/// Incoming calls to one extension as they ring, with their screen-pop
/// link (`event: pop`, `id:` the event's id).
#[utoipa::path(
    get,
    path = "/v1/pop",
    tag = "pages",
    params(
        ("extension" = String, Query, description = "The extension whose incoming calls are shown (alias `ext`)"),
        ("branch" = Option<String>, Query, description = "Only this branch's calls"),
        ("key" = Option<String>, Query, description = "The API key, for `EventSource`, which cannot send a header"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "The stream; each `data:` is a Pop", content_type = "text/event-stream", body = Pop),
        (status = 400, description = "`invalid_request`: no extension, or an unknown parameter", body = ActionResult),
        (status = 401, description = "`unauthorized`", body = ActionResult),
        (status = 403, description = "`forbidden`: a branch the key may not use", body = ActionResult),
    )
)]
pub(in crate::api) async fn pop_stream(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = match stream_query(&uri) {
        Ok((_, None, _)) => Err(Refusal::InvalidRequest("`extension` is required".into())),
        other => other,
    };
    match query {
        Ok(query) => {
            let links = gw.clone();
            let framer: Framer = Box::new(move |out, e| frame(out, e, links.snapshot().settings.pop_link.as_ref()));
            sse(&gw, &headers, query, |e| incoming(e), framer)
        }
        Err(r) => refused(r),
    }
}
