//! sipgate io (REST API v2), as sipgate's public API samples and SDK
//! describe it:
//!
//! - `POST /v2/sessions/calls`, HTTP basic auth `tokenId:token` (a personal
//!   access token with scope `sessions:calls:write`), JSON `{deviceId,
//!   caller, callee, callerId?}` with `Content-Type: application/json`:
//!   `200 {sessionId}`. sipgate rings `caller` (a device such as `e0`)
//!   first, then `callee`.
//! - Real-time call manipulation on a running call: `DELETE
//!   /v2/calls/{callId}` (hang up), `POST …/dtmf {sequence}`, `PUT …/hold
//!   {value}`, `POST …/transfer {attended, phoneNumber}`: `200`, no body.
//! - Errors by status, with no body: `401` (wrong credentials), `400` (a
//!   missing field; a `callee` starting with 9 or +9, so tests can play a
//!   refusal), `402` (no credit: a `callee` starting with 8 or +8), `403`
//!   (a device that is not the token owner's: one not starting with `e`,
//!   `x`, `y` or `p`), `404` (an unknown call id), `415` (a body that is not
//!   `application/json`).
//!
//! No events are pushed: sipgate.io's push API (form POSTs `newCall`, and
//! `answer`/`hangup` only when the `newCall` answer asks for them in XML)
//! is configured in sipgate's web app, not per request; tests post those
//! forms themselves. Session ids and call ids are kept as the `sipgate`
//! [`super::Logins`] tokens.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Received, Shared};

/// The token the stand-in knows: its id and its secret.
pub const TOKEN_ID: &str = "token-DEMO42";
pub const TOKEN: &str = "demo-sipgate-personal-access-token";

pub(super) fn serves(path: &str) -> bool {
    path == "/v2/sessions/calls"
        || path.strip_prefix("/v2/calls/").is_some_and(|rest| rest.split('/').nth(1) != Some("actions"))
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_ID}:{TOKEN}"));
    if got.authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) != Some(want.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let json_body = got.content_type.as_deref().is_some_and(|c| c.starts_with("application/json"));
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if got.path == "/v2/sessions/calls" {
        if got.method != "POST" {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        if !json_body {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
        }
        let (caller, callee) = (text("caller"), text("callee"));
        if caller.is_empty() || callee.is_empty() {
            return StatusCode::BAD_REQUEST.into_response();
        }
        let device = if text("deviceId").is_empty() { caller } else { text("deviceId") };
        if !device.starts_with(['e', 'x', 'y', 'p']) {
            return StatusCode::FORBIDDEN.into_response();
        }
        let digits = callee.trim_start_matches('+');
        if digits.starts_with('9') {
            return StatusCode::BAD_REQUEST.into_response();
        }
        if digits.starts_with('8') {
            return StatusCode::PAYMENT_REQUIRED.into_response();
        }
        let session = shared.logins.of("sipgate").issue();
        return axum::Json(json!({"sessionId": session})).into_response();
    }
    let parts: Vec<&str> = got.path.trim_start_matches("/v2/calls/").split('/').collect();
    let known = |id: &str| shared.logins.of("sipgate").accepts(Some(id));
    let ok = |fine: bool| if fine { StatusCode::OK } else { StatusCode::BAD_REQUEST }.into_response();
    match (got.method.as_str(), parts.as_slice()) {
        (_, [id, ..]) if !known(id) => StatusCode::NOT_FOUND.into_response(),
        ("DELETE", [_]) => StatusCode::OK.into_response(),
        (_, [_, _]) if !json_body => StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response(),
        ("POST", [_, "dtmf"]) => ok(!text("sequence").is_empty()),
        ("PUT", [_, "hold"]) => ok(body.get("value").is_some_and(Value::is_boolean)),
        ("POST", [_, "transfer"]) => {
            ok(body.get("attended").is_some_and(Value::is_boolean) && !text("phoneNumber").is_empty())
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
