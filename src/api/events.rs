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
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{MAX_BODY, credential, refused, respond};
use crate::call::Gateway;
use crate::call::events::Watch;
use crate::events::Published;
use crate::events::inbound::Notification;
use crate::outcome::{ActionResult, Refusal};

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

const PREFIX: &str = "/v1/events/";

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/events", get(stream).head(head).fallback(wrong_method))
        .route("/v1/events/{branch}", get(notify_get).post(notify_post).head(head).fallback(wrong_method))
        .route(
            "/v1/events/{branch}/{*rest}",
            get(notify_get_path).post(notify_post_path).head(head).fallback(wrong_method),
        )
}

/// A PBX's notification, its values in the query.
///
/// Not authenticated with an API key: the branch's `events:` say who may
/// send (a secret as `?secret=` or `X-Webdial-Secret`, source addresses, a
/// signature).
#[utoipa::path(
    get,
    path = "/v1/events/{branch}",
    tag = "events",
    params(("branch" = String, Path, description = "The branch whose PBX sends it")),
    responses(Received),
    security(())
)]
pub(super) async fn notify_get(gw: State<Arc<Gateway>>, request: Request) -> Response {
    receive(gw, request).await
}

/// A PBX's notification, as a form, JSON or XML body (and the query).
#[utoipa::path(
    post,
    path = "/v1/events/{branch}",
    tag = "events",
    params(("branch" = String, Path, description = "The branch whose PBX sends it")),
    request_body(content = String, description = "A form, JSON or XML, as the PBX sends it (at most 64 KiB)"),
    responses(Received),
    security(())
)]
pub(super) async fn notify_post(gw: State<Arc<Gateway>>, request: Request) -> Response {
    receive(gw, request).await
}

/// A PBX's notification with values in the path after the branch (desk phones).
#[utoipa::path(
    get,
    path = "/v1/events/{branch}/{*rest}",
    tag = "events",
    params(
        ("branch" = String, Path, description = "The branch whose PBX sends it"),
        ("*rest" = String, Path, description = "Values, `/`-separated: `path[0]`, `path[1]`… in the branch's expressions"),
    ),
    responses(Received),
    security(())
)]
pub(super) async fn notify_get_path(gw: State<Arc<Gateway>>, request: Request) -> Response {
    receive(gw, request).await
}

/// A PBX's notification with values in the path after the branch, and a body.
#[utoipa::path(
    post,
    path = "/v1/events/{branch}/{*rest}",
    tag = "events",
    params(
        ("branch" = String, Path, description = "The branch whose PBX sends it"),
        ("*rest" = String, Path, description = "Values, `/`-separated: `path[0]`, `path[1]`… in the branch's expressions"),
    ),
    request_body(content = String, description = "A form, JSON or XML, as the PBX sends it (at most 64 KiB)"),
    responses(Received),
    security(())
)]
pub(super) async fn notify_post_path(gw: State<Arc<Gateway>>, request: Request) -> Response {
    receive(gw, request).await
}

/// What a PBX is answered: at once, in the one answer shape. (Only for
/// the description: the handlers answer with the gateway's result.)
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(super) enum Received {
    #[response(
        status = 200,
        description = "Taken (`\"duplicate\": true` for a repeat, passed on once); `id` is the event's"
    )]
    Taken(ActionResult),
    #[response(status = 400, description = "`invalid_request`: unreadable, or a body over 64 KiB; dropped")]
    Unreadable(ActionResult),
    #[response(status = 401, description = "`unauthorized`: a wrong or missing secret, address or signature; dropped")]
    Unauthorized(ActionResult),
    #[response(
        status = 404,
        description = "`unknown_branch`: no such branch, or its profile says no one may send; dropped"
    )]
    UnknownBranch(ActionResult),
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
pub(in crate::api) type StreamQuery = (Option<String>, Option<String>, Option<String>);

/// Reads [`StreamQuery`]; any other name is refused, as on `/v1/dial`.
pub(in crate::api) fn stream_query(uri: &Uri) -> Result<StreamQuery, Refusal> {
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

/// Call events as they happen, as server-sent events (`event: call`,
/// `id:` the event's id, `data:` the event as JSON).
///
/// `Last-Event-ID` resumes after that event from the last 10,000; a client
/// more than 1,024 events behind is cut off and resumes so.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(
        ("branch" = Option<String>, Query, description = "Only this branch's events"),
        ("extension" = Option<String>, Query, description = "Only this extension's events (alias `ext`)"),
        ("key" = Option<String>, Query, description = "The API key, for `EventSource`, which cannot send a header"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_request`: an unknown parameter", body = ActionResult),
        (status = 401, description = "`unauthorized`", body = ActionResult),
        (status = 403, description = "`forbidden`: a branch the key may not use", body = ActionResult),
    )
)]
pub(super) async fn stream(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    match stream_query(&uri) {
        Ok(query) => sse(&gw, &headers, query, |_| true, Box::new(frame)),
        Err(r) => refused(r),
    }
}

/// How a stream writes one event: `/v1/events` as `event: call`; the
/// screen pop as its own `event: pop`.
pub(in crate::api) type Framer = Box<dyn Fn(&mut Vec<u8>, &Published) + Send>;

/// A key-scoped stream of the events `only` keeps, written by `framer`:
/// resumed after `Last-Event-ID`, batched, kept alive, and cut off when
/// the client falls behind. Every event stream of the API is this one.
pub(in crate::api) fn sse(
    gw: &Gateway,
    headers: &HeaderMap,
    (branch, extension, key): StreamQuery,
    only: fn(&Published) -> bool,
    framer: Framer,
) -> Response {
    let watch = match gw.watch(&credential(headers, key), branch, extension) {
        Ok(w) => w,
        Err(r) => return refused(r),
    };
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let resumed = gw.runtime().events.resume(last);
    let state = Streaming { missed: resumed.missed.into(), live: resumed.live, watch, only, framer, done: false };
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(state, next));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// One client's stream: what it missed, then live events, filtered.
struct Streaming {
    missed: VecDeque<Arc<Published>>,
    live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    watch: Watch,
    only: fn(&Published) -> bool,
    framer: Framer,
    done: bool,
}

impl Streaming {
    /// Writes `e` into `out` if this client is to see it.
    fn add(&self, out: &mut Vec<u8>, e: &Published) {
        if (self.only)(e) && self.watch.shows(e) {
            (self.framer)(out, e);
        }
    }
}

/// The most one chunk of a stream holds: events waiting for a busy client
/// go out together (one write, one wake-up), not one by one.
const CHUNK: usize = 64 * 1024;

/// `event: call`, `id:`, `data:` (the event's JSON, written once when it was
/// published, which holds no line break).
fn frame(out: &mut Vec<u8>, event: &Published) {
    out.extend_from_slice(b"event: call\nid: ");
    out.extend_from_slice(event.id.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(event.json().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The next chunk: missed events first, then one live event and whatever
/// else has arrived meanwhile; a comment when idle for [`KEEP_ALIVE`]; a
/// last comment, then the end, for a client that fell behind.
async fn next(mut s: Streaming) -> Option<(Result<Bytes, Infallible>, Streaming)> {
    if s.done {
        return None;
    }
    let mut out = Vec::new();
    while out.len() < CHUNK {
        let Some(e) = s.missed.pop_front() else { break };
        s.add(&mut out, &e);
    }
    if !out.is_empty() {
        return Some((Ok(out.into()), s));
    }
    loop {
        let first = match tokio::time::timeout(KEEP_ALIVE, s.live.recv()).await {
            Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s)),
            Ok(Ok(e)) => e,
            Ok(Err(RecvError::Lagged(n))) => return Some((Ok(cut_off(&mut s, n)), s)),
            Ok(Err(RecvError::Closed)) => return None,
        };
        s.add(&mut out, &first);
        while out.len() < CHUNK {
            match s.live.try_recv() {
                Ok(e) => s.add(&mut out, &e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => {
                    out.extend_from_slice(&cut_off(&mut s, n));
                    break;
                }
                Err(TryRecvError::Closed) => {
                    s.done = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            return Some((Ok(out.into()), s));
        }
    }
}

/// The last words to a client that fell behind; the stream then ends.
fn cut_off(s: &mut Streaming, behind: u64) -> Bytes {
    tracing::info!("an event stream fell {behind} events behind and is cut off; it can resume with Last-Event-ID");
    s.done = true;
    Bytes::from(format!(": cut off: {behind} events behind; reconnect with Last-Event-ID\n\n"))
}

async fn head() -> Response {
    refused(Refusal::InvalidRequest("HEAD is not a notification: use GET or POST".into()))
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    refused(Refusal::WrongMethod { method: method.to_string(), path: uri.path().to_string() })
}
