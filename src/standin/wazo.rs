//! Wazo Platform, as wazo-auth's and wazo-calld's OpenAPI files describe
//! them (behind the platform's nginx: `/api/auth/0.1`, `/api/calld/1.0`).
//!
//! - `POST /api/auth/0.1/token` with HTTP Basic ([`USER`], [`PASSWORD`]) and
//!   JSON `{"expiration": seconds}` (optional, an integer) answers `200`
//!   `{"data": {token, expires_at, utc_expires_at, issued_at, auth_id,
//!   metadata, session_uuid, acl…}}`; wrong credentials `401`
//!   `{"reason": ["Authentication Failed"], "status_code": 401}`.
//! - calld wants a live token in `X-Auth-Token`, else `401` `{"message":
//!   "Unauthorized", "error_id": "unauthorized", "details": {…}}` (an
//!   expired token: the gateway logs in again).
//! - `POST /api/calld/1.0/calls` JSON `{"source": {"user": UUID},
//!   "destination": {"context", "extension", "priority"}}` answers `201`
//!   with the Call (`call_id`, `conversation_id`, `user_uuid`, `status`,
//!   `talking_to`, `caller_id_*`, `peer_caller_id_*`…); missing fields are
//!   `400` "Sent data is invalid" (`error_id` `invalid-data`).
//! - `DELETE /api/calld/1.0/calls/{id}` (`204`), `PUT …/{id}/dtmf?digits=`
//!   and `PUT …/{id}/hold/start|stop` (`204`); an unknown call is `404`
//!   "No such call" (`no-such-call`). Errors are `{message, error_id,
//!   details, timestamp}`.
//! - Events: after an accepted call, what a wazo-webhookd HTTP subscription
//!   to `call_created`, `call_answered` and `call_ended` POSTs, `pace`
//!   apart, to the stand-in's notification URL ([`super::StandIn::notify_to`]):
//!   JSON built by the subscription body template the docs give
//!   (`{"event": "{{ event_name }}", "call_id": …, "user_uuid": …,
//!   "peer_caller_id_number": …, "status": …}`).
//!
//! The stand-in's own choices: a source user whose UUID starts with 9 has no
//! line, `400` "User has no line" (`user-missing-main-line`), so tests can
//! play a refusal; call ids look like Asterisk's (`1765000000.42`); the
//! calls are remembered (in [`super::Logins`] under [`CALLS`]).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Push, Received, Shared, asterisk_ari::basic};

/// The Wazo user (or web service user) the stand-in knows, and its password.
pub const USER: &str = "webdial";
pub const PASSWORD: &str = "demo-wazo-secret";

/// The system's name for its tokens ([`super::StandIn::logins`]), and where its calls are kept.
pub const NAME: &str = "wazo";
pub const CALLS: &str = "wazo/calls";

fn error(status: StatusCode, message: &str, error_id: &str, details: Value) -> Response {
    let body = json!({"message": message, "error_id": error_id, "details": details, "timestamp": 1_765_000_000.0});
    (status, axum::Json(body)).into_response()
}

pub(super) fn serves(path: &str) -> bool {
    path == "/api/auth/0.1/token" || path.starts_with("/api/calld/1.0/calls")
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if got.path == "/api/auth/0.1/token" {
        return token(shared, got);
    }
    if !shared.logins.of(NAME).accepts(got.header("x-auth-token")) {
        let details = json!({"invalid_token": got.header("x-auth-token").unwrap_or_default()});
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", "unauthorized", details);
    }
    let rest = got.path.trim_start_matches("/api/calld/1.0/calls").trim_start_matches('/');
    let (id, verb) = rest.split_once('/').unwrap_or((rest, ""));
    match (got.method.as_str(), id, verb) {
        ("POST", "", "") => create(shared, got),
        ("DELETE", id, "") if !id.is_empty() => on_call(shared, id, || StatusCode::NO_CONTENT.into_response()),
        ("PUT", id, "dtmf") => on_call(shared, id, || match got.param("digits").filter(|d| !d.is_empty()) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => {
                error(StatusCode::BAD_REQUEST, "Sent data is invalid", "invalid-data", json!({"digits": "missing"}))
            }
        }),
        ("PUT", id, "hold/start" | "hold/stop") => on_call(shared, id, || StatusCode::NO_CONTENT.into_response()),
        _ => error(StatusCode::NOT_FOUND, "Not Found", "not-found", json!({})),
    }
}

fn token(shared: &Shared, got: &Received) -> Response {
    if got.method != "POST" {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if !basic(got).is_some_and(|(u, p)| u == USER && p == PASSWORD) {
        let body = json!({"reason": ["Authentication Failed"], "timestamp": [1_765_000_000.0], "status_code": 401});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let expiration = match body.get("expiration") {
        None => 7200,
        Some(e) => match e.as_u64() {
            Some(e) => e,
            None => {
                let body = json!({"reason": ["Invalid value for expiration"], "status_code": 400});
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
        },
    };
    let token = shared.logins.of(NAME).issue();
    let user = "5f6e7d8c-0000-4000-8000-00000000a001";
    axum::Json(json!({"data": {
        "token": token, "expires_at": "2026-12-01T15:05:09.412000", "utc_expires_at": "2026-12-01T15:05:09.412000",
        "issued_at": "2026-12-01T14:05:09.412000", "utc_issued_at": "2026-12-01T14:05:09.412000",
        "auth_id": user, "metadata": {"uuid": user, "tenant_uuid": "5f6e7d8c-0000-4000-8000-0000000000t1", "purpose": "user"},
        "session_uuid": "5f6e7d8c-0000-4000-8000-00000000s001", "acl": ["calld.calls.create", "calld.calls.*.delete"],
        "xivo_uuid": "5f6e7d8c-0000-4000-8000-00000000x001", "expiration": expiration
    }}))
    .into_response()
}

fn on_call(shared: &Shared, id: &str, then: impl FnOnce() -> Response) -> Response {
    match shared.logins.of(CALLS).accepts(Some(id)) {
        true => then(),
        false => error(StatusCode::NOT_FOUND, "No such call", "no-such-call", json!({"call_id": id})),
    }
}

fn create(shared: &Shared, got: &Received) -> Response {
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let user = text(&body["source"]["user"]);
    let (context, extension) = (text(&body["destination"]["context"]), text(&body["destination"]["extension"]));
    let priority = body["destination"]["priority"].as_i64();
    let (Some(user), Some(_), Some(extension), Some(_)) = (user, context, extension, priority) else {
        let details = json!({"source": {"user": "required"}, "destination": {"context": "required", "extension": "required", "priority": "required"}});
        return error(StatusCode::BAD_REQUEST, "Sent data is invalid", "invalid-data", details);
    };
    if user.starts_with('9') {
        return error(
            StatusCode::BAD_REQUEST,
            "User has no line",
            "user-missing-main-line",
            json!({"user_uuid": user}),
        );
    }
    let n = shared.id();
    let call_id = format!("{}.{}", 1_765_000_000 + n % 1_000_000, n % 1000);
    shared.logins.of(CALLS).accept(&call_id);
    let call = json!({
        "call_id": call_id, "conversation_id": format!("{}.{}", 1_765_000_000 + n % 1_000_000, n % 1000 + 1),
        "user_uuid": user, "status": "Down", "bridges": [], "talking_to": {}, "creation_time": "2026-12-01T14:05:09.412+00:00",
        "caller_id_name": "", "caller_id_number": "", "peer_caller_id_name": extension, "peer_caller_id_number": extension,
        "on_hold": false, "muted": false, "record_state": "inactive", "is_caller": true, "is_video": false,
        "dialed_extension": extension, "line_id": null, "sip_call_id": null
    });
    let event = |name: &str, status: &str| {
        Push::Post {
        to: None,
        content_type: "application/json",
        body: json!({"event": name, "call_id": call_id, "user_uuid": user, "peer_caller_id_number": extension, "status": status})
            .to_string(),
        headers: Vec::new(),
    }
    };
    shared.push(vec![event("call_created", "Ringing"), event("call_answered", "Up"), event("call_ended", "Down")]);
    (StatusCode::CREATED, [(header::LOCATION, format!("/calls/{call_id}"))], axum::Json(call)).into_response()
}
