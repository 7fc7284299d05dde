//! Asterisk ARI (the REST interface), as Asterisk's `rest-api/api-docs/channels.json`
//! and `res/ari/resource_channels.c` answer it. Every answer is JSON; an
//! error is its HTTP status with `{"message": …}` in Asterisk's own words.
//!
//! - Auth: HTTP Basic with the `ari.conf` user ([`USER`], [`PASSWORD`]) or
//!   `?api_key=user:password`; anything else is `401` `{"message":
//!   "Authentication required"}` with a `WWW-Authenticate: Basic` challenge.
//! - Paths are `/ari/…`, or `/asterisk/ari/…` (http.conf `prefix=asterisk`).
//! - `POST /ari/channels?endpoint=TECH/RES&…` originates: with `extension`
//!   (+ `context`, default `default`, and `priority`, default 1) the answered
//!   endpoint goes to the dialplan; with `app` (+ `appArgs`) it enters that
//!   Stasis application instead. Parameters may also come as keys of a JSON
//!   body. `channelId` chooses the new channel's id. The answer is `200`
//!   with the Channel snapshot (`id`, `name`, `state: "Down"`, `caller`,
//!   `dialplan`, `creationtime`…) as soon as the channel exists: nothing has
//!   rung yet. Refusals: `400` "Endpoint must be specified", "Invalid
//!   endpoint specified" (no `TECH/RES`), "Application or extension must be
//!   specified"; `409` "Channel with given unique ID already exists" (a
//!   `channelId` in use).
//! - `DELETE /ari/channels/{id}` hangs up (`204`), `reason` optional
//!   (normal, busy, congestion…; another is `400` "Invalid reason for
//!   hangup provided"); an unknown id is `404` "Channel not found".
//! - `POST …/{id}/dtmf?dtmf=…` (`400` "DTMF is required" without digits),
//!   `POST …/{id}/redirect?endpoint=TECH/RES`, `POST|DELETE …/{id}/hold`:
//!   `204` for a channel in a Stasis application, `409` "Channel not in
//!   Stasis application" for one the dialplan runs (what an originate with
//!   `extension` makes: the trap these verbs set), `404` for an unknown one.
//!   A redirect whose `endpoint` is not `TECH/RES` is `422`.
//!
//! The stand-in's own choices: an endpoint whose resource starts with 9
//! (`PJSIP/901`) cannot be reached, answered as Asterisk answers a
//! channel it cannot create, `500` "Allocation failed", so tests can play
//! a refusal; ids it picks itself look like Asterisk's (`1765000000.42`).
//! Channels are remembered by id (in [`super::Logins`], under
//! [`CHANNELS`] and [`STASIS`]), never forgotten by a hangup.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Received, Shared};

/// The `ari.conf` user the stand-in knows, and its password.
pub const USER: &str = "webdial";
pub const PASSWORD: &str = "demo-ari-secret";

/// Where the stand-in keeps the channels it made (every one), and those in a Stasis application.
pub const CHANNELS: &str = "asterisk-ari";
pub const STASIS: &str = "asterisk-ari/stasis";

/// The user and password of a `Basic` `Authorization` header, if it is one.
pub(super) fn basic(got: &Received) -> Option<(String, String)> {
    let encoded = got.authorization.as_deref()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn authorized(got: &Received) -> bool {
    let key = got.param("api_key");
    basic(got).is_some_and(|(u, p)| u == USER && p == PASSWORD) || key.as_deref() == Some(&format!("{USER}:{PASSWORD}"))
}

/// A parameter from the query or, as ARI reads them too, a key of the JSON body.
fn param(got: &Received, body: &Value, name: &str) -> Option<String> {
    got.param(name).or_else(|| body.get(name).and_then(Value::as_str).map(str::to_string)).filter(|v| !v.is_empty())
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if !authorized(got) {
        let challenge = [(header::WWW_AUTHENTICATE, r#"Basic realm="Asterisk REST Interface""#)];
        return (StatusCode::UNAUTHORIZED, challenge, axum::Json(json!({"message": "Authentication required"})))
            .into_response();
    }
    let path = got.path.strip_prefix("/asterisk").unwrap_or(&got.path);
    let rest = path.trim_start_matches("/ari/channels").trim_start_matches('/');
    let mut parts = rest.splitn(2, '/');
    let (id, verb) = (parts.next().unwrap_or_default(), parts.next());
    match (got.method.as_str(), id, verb) {
        ("POST", "", None) => originate(shared, got, None),
        ("POST", id, None) => originate(shared, got, Some(id)),
        ("DELETE", id, None) if !id.is_empty() => hangup(shared, got, id),
        ("POST", id, Some(verb @ ("dtmf" | "redirect" | "hold"))) | ("DELETE", id, Some(verb @ "hold")) => {
            control(shared, got, id, verb)
        }
        _ => error(StatusCode::NOT_FOUND, "Resource not found"),
    }
}

fn originate(shared: &Shared, got: &Received, path_id: Option<&str>) -> Response {
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let Some(endpoint) = param(got, &body, "endpoint") else {
        return error(StatusCode::BAD_REQUEST, "Endpoint must be specified");
    };
    let Some((tech, resource)) = endpoint.split_once('/').filter(|(t, r)| !t.is_empty() && !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Invalid endpoint specified");
    };
    let app = param(got, &body, "app");
    let exten = param(got, &body, "extension");
    if app.is_none() && exten.is_none() {
        return error(StatusCode::BAD_REQUEST, "Application or extension must be specified");
    }
    let channels = shared.logins.of(CHANNELS);
    let chosen = path_id.map(str::to_string).or_else(|| param(got, &body, "channelId"));
    if chosen.as_deref().is_some_and(|c| channels.accepts(Some(c))) {
        return error(StatusCode::CONFLICT, "Channel with given unique ID already exists");
    }
    if resource.starts_with('9') {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Allocation failed");
    }
    let n = shared.id();
    let id = chosen.unwrap_or_else(|| format!("{}.{}", 1_765_000_000 + n % 1_000_000, n % 1000));
    channels.accept(&id);
    if app.is_some() {
        shared.logins.of(STASIS).accept(&id);
    }
    let context = param(got, &body, "context").unwrap_or_else(|| "default".into());
    let priority: i64 = param(got, &body, "priority").and_then(|p| p.parse().ok()).unwrap_or(1);
    let caller = param(got, &body, "callerId").unwrap_or_default();
    axum::Json(json!({
        "id": id,
        "name": format!("{tech}/{resource}-{:08x}", n % 0xffff_ffff),
        "state": "Down",
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": context, "exten": exten.unwrap_or_else(|| "s".into()), "priority": priority, "app_name": "", "app_data": ""},
        "creationtime": "2026-12-01T14:05:09.412+0000",
        "language": "en"
    }))
    .into_response()
}

fn hangup(shared: &Shared, got: &Received, id: &str) -> Response {
    if !shared.logins.of(CHANNELS).accepts(Some(id)) {
        return error(StatusCode::NOT_FOUND, "Channel not found");
    }
    let known = [
        "normal",
        "busy",
        "congestion",
        "no_answer",
        "timeout",
        "rejected",
        "unallocated",
        "normal_unspecified",
        "number_incomplete",
        "codec_mismatch",
        "interworking",
        "failure",
        "answered_elsewhere",
    ];
    if got.param("reason").is_some_and(|r| !known.contains(&r.as_str())) {
        return error(StatusCode::BAD_REQUEST, "Invalid reason for hangup provided");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn control(shared: &Shared, got: &Received, id: &str, verb: &str) -> Response {
    if !shared.logins.of(CHANNELS).accepts(Some(id)) {
        return error(StatusCode::NOT_FOUND, "Channel not found");
    }
    if !shared.logins.of(STASIS).accepts(Some(id)) {
        return error(StatusCode::CONFLICT, "Channel not in Stasis application");
    }
    match verb {
        "dtmf" if got.param("dtmf").is_none_or(|d| d.is_empty()) => error(StatusCode::BAD_REQUEST, "DTMF is required"),
        "redirect" => match got.param("endpoint").filter(|e| !e.is_empty()) {
            None => error(StatusCode::BAD_REQUEST, "Required parameter 'endpoint' not provided."),
            Some(e) if !e.contains('/') => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Endpoint parameter '{e}' does not contain tech/resource"),
            ),
            Some(_) => StatusCode::NO_CONTENT.into_response(),
        },
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
