//! Call events over HTTP, both ways.
//!
//! In: `GET|POST /v1/events/{branch}[/…]`, what a PBX is pointed at. Not
//! authenticated with API keys (a PBX has none) but by the branch's
//! `events:` (secret, source addresses, signature). The handler hands the
//! notification as received — query, headers, body, the path after the
//! branch, the sender's address — to the gateway and answers at once.
//!
//! Out: `GET /v1/events?branch=&extension=`, server-sent events (`event:
//! call`, `id:` the event id), key-scoped like dials (`?key=` for
//! `EventSource`, which cannot send headers). `Last-Event-ID` resumes after
//! that event from the replay ring, in order and with nothing twice. A
//! client that falls more than the bus's backlog behind is cut off (a last
//! comment says so) and reconnects with `Last-Event-ID`; it never slows
//! the others, nor the PBXs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;

use super::{MAX_BODY, credential, refused, respond};
use crate::call::Gateway;
use crate::call::events::Watch;
use crate::events::Published;
use crate::events::inbound::Notification;
use crate::outcome::Refusal;

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

const PREFIX: &str = "/v1/events/";

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/events", get(stream).head(head).fallback(wrong_method))
        .route("/v1/events/{branch}", get(receive).post(receive).head(head).fallback(wrong_method))
        .route("/v1/events/{branch}/{*rest}", get(receive).post(receive).head(head).fallback(wrong_method))
}

async fn receive(State(gw): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let after = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let (branch, rest) = after.split_once('/').unwrap_or((after, ""));
    let branch = decode(branch);
    let path = if rest.is_empty() { Vec::new() } else { rest.split('/').map(decode).collect() };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refused(Refusal::InvalidRequest(format!(
            "the notification's body is too large (over {MAX_BODY} bytes) or could not be read"
        )));
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let n = Notification {
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        path,
        url: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
        peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
    };
    respond(gw.receive(&branch, &n).await, false)
}

/// `?branch=&extension=&key=`, each at most once.
type StreamQuery = (Option<String>, Option<String>, Option<String>);

/// Reads [`StreamQuery`]; any other name is refused, as on `/v1/dial`.
fn stream_query(uri: &Uri) -> Result<StreamQuery, Refusal> {
    let (mut branch, mut extension, mut key) = (None, None, None);
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let slot = match name.as_ref() {
            "branch" => &mut branch,
            "extension" | "ext" => &mut extension,
            "key" => &mut key,
            other => return Err(Refusal::InvalidRequest(format!("unknown parameter `{other}`"))),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(Refusal::InvalidRequest(format!("`{name}` is given twice")));
        }
    }
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok((some(branch), some(extension), some(key)))
}

async fn stream(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let (branch, extension, key) = match stream_query(&uri) {
        Ok(q) => q,
        Err(r) => return refused(r),
    };
    let watch = match gw.watch(&credential(&headers, key), branch, extension) {
        Ok(w) => w,
        Err(r) => return refused(r),
    };
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let resumed = gw.runtime().events.resume(last);
    let state = Streaming { missed: resumed.missed.into(), live: resumed.live, watch, done: false };
    let events = futures_util::stream::unfold(state, next);
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// One client's stream: what it missed, then live events, filtered.
struct Streaming {
    missed: VecDeque<Arc<Published>>,
    live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    watch: Watch,
    done: bool,
}

async fn next(mut s: Streaming) -> Option<(Result<Event, Infallible>, Streaming)> {
    if s.done {
        return None;
    }
    loop {
        let event = match s.missed.pop_front() {
            Some(e) => e,
            None => match s.live.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(
                        "an event stream fell {n} events behind and is cut off; it can resume with Last-Event-ID"
                    );
                    s.done = true;
                    let note = format!("cut off: {n} events behind; reconnect with Last-Event-ID");
                    return Some((Ok(Event::default().comment(note)), s));
                }
                Err(RecvError::Closed) => return None,
            },
        };
        if s.watch.shows(&event) {
            let sse = Event::default().event("call").id(event.id.as_str()).data(event.json());
            return Some((Ok(sse), s));
        }
    }
}

async fn head() -> Response {
    refused(Refusal::InvalidRequest("HEAD is not a notification: use GET or POST".into()))
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    refused(Refusal::WrongMethod { method: method.to_string(), path: uri.path().to_string() })
}
