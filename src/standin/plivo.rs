//! Plivo Voice API, as Plivo's API reference and its server SDKs describe
//! it:
//!
//! - `POST /v1/Account/{auth_id}/Call/` (the trailing slash is part of the
//!   path), HTTP basic auth `auth_id:auth_token`, JSON `{from, to,
//!   answer_url, answer_method?, ring_url?, hangup_url?, caller_name?, …}`;
//!   answers `201 {"api_id", "message": "call fired", "request_uuid"}`: the
//!   call is queued, not yet answered.
//! - `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/` hangs up a call
//!   (`204`, no body); `DELETE /v1/Account/{auth_id}/Request/{request_uuid}/`
//!   cancels a call not yet answered (`204`). An unknown uuid is `404`
//!   `{"api_id", "error": "not found"}`.
//! - Errors: JSON `{"api_id", "error": "…"}`: `401` for wrong credentials
//!   (or an `auth_id` in the path that is not the caller's), `400` for a
//!   missing parameter or a `to` starting with 9 (so tests can play a
//!   refusal). The `error` words are the stand-in's own.
//! - Callbacks: after an accepted call, a form POST to `ring_url` (`Event:
//!   Ring`, `CallStatus: ringing`) and to `hangup_url` (`Event: Hangup`,
//!   `CallStatus: completed`, `HangupCause: NORMAL_CLEARING`, `Duration`),
//!   each with `CallUUID`, `RequestUUID`, `From`, `To`, `Direction:
//!   outbound`, and signed as Plivo's V2 signature: `X-Plivo-Signature-V2`
//!   is the base64 HMAC-SHA256, keyed with the auth token, of the URL
//!   (without its query) followed by the `X-Plivo-Signature-V2-Nonce`. The
//!   `answer_url` (which must answer Plivo XML) is not fetched.
//!
//! Request and call uuids issued are kept as the `plivo` and `plivo-calls`
//! [`super::Logins`] tokens.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::{Push, Received, Shared};

/// The account the stand-in knows: its Auth ID and Auth Token.
pub const AUTH_ID: &str = "MADEMOPLIVOAUTHID000";
pub const AUTH_TOKEN: &str = "demo-plivo-auth-token";

const API: &str = "/v1/Account/";

pub(super) fn serves(path: &str) -> bool {
    path.starts_with(API)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"api_id": ulid::Ulid::generate().to_string(), "error": message}))).into_response()
}

/// A uuid-shaped id from a 32-hex-digit token.
fn uuid(token: &str) -> String {
    let t = format!("{token:0>32}");
    format!("{}-{}-{}-{}-{}", &t[0..8], &t[8..12], &t[12..16], &t[16..20], &t[20..32])
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_ID}:{AUTH_TOKEN}"));
    let authorized = got.authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) == Some(want.as_str());
    let rest = got.path.strip_prefix(API).and_then(|r| r.strip_prefix(AUTH_ID));
    let (true, Some(rest)) = (authorized, rest) else {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (got.method.as_str(), parts.as_slice()) {
        ("POST", ["Call"]) if rest.ends_with('/') => dial(shared, got),
        ("DELETE", ["Call", id]) => gone(shared, "plivo-calls", id),
        ("DELETE", ["Request", id]) => gone(shared, "plivo", id),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn gone(shared: &Shared, kind: &'static str, id: &str) -> Response {
    if shared.logins.of(kind).accepts(Some(&id.replace('-', ""))) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "not found")
    }
}

fn dial(shared: &Shared, got: &Received) -> Response {
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    for field in ["from", "to", "answer_url"] {
        if text(field).is_empty() {
            return error(StatusCode::BAD_REQUEST, &format!("{field} parameter is mandatory"));
        }
    }
    let (from, to) = (text("from"), text("to"));
    if to.trim_start_matches('+').starts_with('9') {
        return error(StatusCode::BAD_REQUEST, &format!("invalid 'to' number: {to}"));
    }
    let request = uuid(&shared.logins.of("plivo").issue());
    let call = uuid(&shared.logins.of("plivo-calls").issue());
    let common = [
        ("CallUUID", call.as_str()),
        ("RequestUUID", request.as_str()),
        ("From", from.as_str()),
        ("To", to.as_str()),
        ("Direction", "outbound"),
    ];
    let mut events = Vec::new();
    for (url_key, extra) in [
        ("ring_url", vec![("Event", "Ring"), ("CallStatus", "ringing")]),
        (
            "hangup_url",
            vec![
                ("Event", "Hangup"),
                ("CallStatus", "completed"),
                ("HangupCause", "NORMAL_CLEARING"),
                ("Duration", "42"),
            ],
        ),
    ] {
        let url = text(url_key);
        if url.is_empty() {
            continue;
        }
        let params: Vec<(&str, &str)> = common.iter().copied().chain(extra).collect();
        let nonce = format!("{}", shared.id());
        let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        events.push(Push::Post {
            to: Some(url.clone()),
            content_type: "application/x-www-form-urlencoded",
            body: form,
            headers: vec![
                ("X-Plivo-Signature-V2".into(), signature_v2(AUTH_TOKEN, &url, &nonce)),
                ("X-Plivo-Signature-V2-Nonce".into(), nonce),
            ],
        });
    }
    shared.push(events);
    let answer =
        json!({"api_id": ulid::Ulid::generate().to_string(), "message": "call fired", "request_uuid": request});
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// Plivo's V2 signature: base64 HMAC-SHA256 of the URL without its query, then the nonce.
pub fn signature_v2(token: &str, url: &str, nonce: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()) else { return String::new() };
    mac.update(base.as_bytes());
    mac.update(nonce.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
