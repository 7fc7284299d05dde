//! `GET /v1/pop?extension=E[&branch=B]`: the screen-pop page's stream —
//! each incoming call to E as it rings (events of type `ringing` that are
//! not outgoing), with the link `pop: {link}` in `webdial.yaml` builds for
//! it, rendered here, on the server, so the page only places a URL that
//! was built by the encoding rules of [`crate::settings::pop`].
//!
//! Server-sent events (`event: pop`, `id:` the event's id), key-scoped like
//! `/v1/events` (`?key=` for `EventSource`); `Last-Event-ID` resumes from
//! the replay ring. A client that falls behind the bus's backlog is cut off
//! and resumes so; it never slows anyone else.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::api::events::KEEP_ALIVE;
use crate::api::{credential, only_get, refused};
use crate::call::Gateway;
use crate::call::events::Watch;
use crate::events::{CallEvent, Direction, EventType, Published};
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

/// `?extension=` (required), `?branch=`, `?key=`, each at most once.
fn pop_query(uri: &Uri) -> Result<(String, Option<String>, Option<String>), Refusal> {
    let (mut extension, mut branch, mut key) = (None, None, None);
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let slot = match name.as_ref() {
            "extension" | "ext" => &mut extension,
            "branch" => &mut branch,
            "key" => &mut key,
            other => return Err(Refusal::InvalidRequest(format!("unknown parameter `{other}`"))),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(Refusal::InvalidRequest(format!("`{name}` is given twice")));
        }
    }
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let extension = some(extension).ok_or_else(|| Refusal::InvalidRequest("`extension` is required".into()))?;
    Ok((extension, some(branch), some(key)))
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
    let (extension, branch, key) = match pop_query(&uri) {
        Ok(q) => q,
        Err(r) => return refused(r),
    };
    let watch = match gw.watch(&credential(&headers, key), branch, Some(extension)) {
        Ok(w) => w,
        Err(r) => return refused(r),
    };
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let resumed = gw.runtime().events.resume(last);
    let state = Popping { gw, missed: resumed.missed.into(), live: resumed.live, watch, done: false };
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(state, next));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

struct Popping {
    gw: Arc<Gateway>,
    missed: VecDeque<Arc<Published>>,
    live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    watch: Watch,
    done: bool,
}

impl Popping {
    fn shows(&self, e: &Published) -> bool {
        incoming(e) && self.watch.shows(e)
    }
}

/// The next chunk: the missed calls, then each live one as it comes; a
/// comment when idle; a last comment, then the end, for a client behind.
async fn next(mut s: Popping) -> Option<(Result<Bytes, Infallible>, Popping)> {
    if s.done {
        return None;
    }
    let snapshot = s.gw.snapshot();
    let link = snapshot.settings.pop_link.as_ref();
    let mut out = Vec::new();
    while let Some(e) = s.missed.pop_front() {
        if s.shows(&e) {
            frame(&mut out, &e, link);
        }
    }
    if !out.is_empty() {
        return Some((Ok(out.into()), s));
    }
    loop {
        match tokio::time::timeout(KEEP_ALIVE, s.live.recv()).await {
            Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s)),
            Ok(Ok(e)) if s.shows(&e) => {
                frame(&mut out, &e, link);
                return Some((Ok(out.into()), s));
            }
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(n))) => {
                s.done = true;
                let words = format!(": cut off: {n} events behind; reconnect with Last-Event-ID\n\n");
                return Some((Ok(Bytes::from(words)), s));
            }
            Ok(Err(RecvError::Closed)) => return None,
        }
    }
}
