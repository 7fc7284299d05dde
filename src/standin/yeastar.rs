//! Yeastar P-Series OpenAPI, as Yeastar's developer guide describes it:
//! `POST /openapi/v1.0/get_token` with JSON `{username, password}` (the API
//! client's Client ID and Client Secret) answers
//! `{errcode: 0, errmsg: "SUCCESS", access_token, access_token_expire_time: 1800, refresh_token, refresh_token_expire_time: 86400}`.
//! Every request must carry a `User-Agent` header. Every
//! `/openapi/v1.0/call/…` request carries `?access_token=T`; all answers are
//! HTTP 200 with `errcode` (0 = done) and `errmsg`.
//!
//! - `call/dial` `{caller, callee}`: `{errcode: 0, errmsg: "SUCCESS", call_id}`;
//!   a `caller` starting with 9 fails, so tests can play a refusal.
//! - `call/hangup` `{channel_id}`, `call/transfer` `{type, channel_id, number}`.
//!
//! The error codes are the stand-in's own choice where Yeastar's pages do
//! not give them: wrong credentials [`BAD_LOGIN`], an expired or unknown
//! token [`TOKEN_EXPIRED`] (10004, what third-party clients are said to
//! see; not confirmed), a missing parameter [`BAD_REQUEST`], a refused call
//! [`CALL_FAILED`]. Tests can expire every token at once
//! ([`YeastarTokens::expire_all`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Received;

/// The API client the stand-in knows.
pub const CLIENT_ID: &str = "demo-yeastar-client";
pub const CLIENT_SECRET: &str = "demo-yeastar-secret";

pub const BAD_LOGIN: i64 = 10003;
pub const TOKEN_EXPIRED: i64 = 10004;
pub const BAD_REQUEST: i64 = 10002;
pub const CALL_FAILED: i64 = 60002;

/// The tokens the stand-in issued: the shared kind.
pub type YeastarTokens = super::tokens::Tokens;

fn error(errcode: i64, errmsg: &str) -> Response {
    axum::Json(json!({"errcode": errcode, "errmsg": errmsg})).into_response()
}

fn body(got: &Received) -> Value {
    serde_json::from_str(&got.body).unwrap_or(json!({}))
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn get_token(tokens: &YeastarTokens, got: &Received) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if got.user_agent.as_deref().is_none_or(str::is_empty) {
        return error(BAD_REQUEST, "User-Agent is required");
    }
    let b = body(got);
    if text(&b, "username") != CLIENT_ID || text(&b, "password") != CLIENT_SECRET {
        return error(BAD_LOGIN, "FAILURE");
    }
    let access_token = tokens.issue();
    let refresh_token = format!("{:032x}", ulid::Ulid::generate().0);
    axum::Json(json!({"errcode": 0, "errmsg": "SUCCESS", "access_token_expire_time": 1800, "access_token": access_token, "refresh_token_expire_time": 86400, "refresh_token": refresh_token}))
        .into_response()
}

pub(super) fn call(tokens: &YeastarTokens, got: &Received, mut id: impl FnMut() -> u64) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if got.user_agent.as_deref().is_none_or(str::is_empty) {
        return error(BAD_REQUEST, "User-Agent is required");
    }
    let token = form_urlencoded::parse(got.query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    if !tokens.accepts(token.as_deref()) {
        return error(TOKEN_EXPIRED, "TOKEN EXPIRED");
    }
    let b = body(got);
    match got.path.trim_start_matches("/openapi/v1.0/call/") {
        "dial" if text(&b, "caller").is_empty() || text(&b, "callee").is_empty() => error(BAD_REQUEST, "FAILURE"),
        "dial" if text(&b, "caller").starts_with('9') => error(CALL_FAILED, "FAILURE"),
        "dial" => axum::Json(json!({"errcode": 0, "errmsg": "SUCCESS", "call_id": format!("{}.{}", id(), 40)}))
            .into_response(),
        "hangup" if text(&b, "channel_id").is_empty() => error(BAD_REQUEST, "FAILURE"),
        "transfer"
            if text(&b, "channel_id").is_empty()
                || text(&b, "number").is_empty()
                || !matches!(text(&b, "type"), "blind" | "attended") =>
        {
            error(BAD_REQUEST, "FAILURE")
        }
        "hangup" | "transfer" => error(0, "SUCCESS"),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
