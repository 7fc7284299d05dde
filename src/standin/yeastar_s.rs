//! Yeastar S-Series (and Cloud PBX) legacy API, as Yeastar's S-Series
//! developer guide describes it: every request is a JSON `POST
//! /api/{version}/…`, `version` being `v2.0.0` or `v1.1.0`; every answer
//! is HTTP 200 with `status` `Success` or `Failed`, a failure carrying
//! `errno` (a string).
//!
//! - `login` `{username, password, port, …}`, `password` the md5 (32
//!   lower-case hex) of the API password: `{status: Success, token}`; a wrong
//!   user or password is errno [`BAD_LOGIN`] (20003, "invalid username or
//!   password").
//! - Every other request carries `?token=T`: a token login issued and not
//!   erased, else errno [`NO_SUCH_TOKEN`] (20004, "No such Token"), or
//!   [`BLANK_TOKEN`] (20005) without one. The PBX erases a token after 30
//!   minutes without traffic; tests erase them all at once
//!   (`pbx.logins("yeastar-s").expire_all()`). `heartbeat` keeps one alive.
//! - v2.0.0 `call/dial` `{caller, callee, autoanswer}` and v1.1.0
//!   `extension/dial_outbound` `{extid, outto, autoanswer}`:
//!   `{status: Success, callid: "1495710387.333"}`.
//! - v2.0.0 `call/hangup` `{channelid}`, v1.1.0 `extension/hangup` `{extid}`:
//!   `{status: Success}`.
//! - A parameter missing or blank is errno [`BLANK_PARAMETER`] (10004); an
//!   unknown request errno 10003.
//!
//! The error codes are Yeastar's own table. The stand-in's choices: a
//! caller extension starting with 9 does not exist (errno
//! [`NO_EXTENSION`], 10006), and a number starting with 9 is refused for
//! want of outbound permission (errno [`NO_PERMISSION`], 10024), so tests
//! can play both refusals; a channel id starting with 9 is no call (errno
//! 10007).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use md5::Digest as _;
use serde_json::{Value, json};

use super::{Received, Shared};

/// The API user the stand-in knows, and its password (the PBX wants its md5).
pub const USER: &str = "api";
pub const PASSWORD: &str = "demo-yeastar-s-pass";

pub const BLANK_PARAMETER: &str = "10004";
pub const NO_EXTENSION: &str = "10006";
pub const NO_CALL: &str = "10007";
pub const NO_PERMISSION: &str = "10024";
pub const BAD_LOGIN: &str = "20003";
pub const NO_SUCH_TOKEN: &str = "20004";
pub const BLANK_TOKEN: &str = "20005";

/// The name its tokens are kept under in [`super::Logins`].
const NAME: &str = "yeastar-s";

/// Whether `path` is one of the legacy API's (`/api/v1.1.0/…`, `/api/v2.0.0/…`).
pub(super) fn serves(path: &str) -> bool {
    path.starts_with("/api/v1.1.0/") || path.starts_with("/api/v2.0.0/")
}

fn failed(errno: &str) -> Response {
    axum::Json(json!({"status": "Failed", "errno": errno})).into_response()
}

fn success(extra: Value) -> Response {
    let mut answer = json!({"status": "Success"});
    if let (Some(a), Value::Object(extra)) = (answer.as_object_mut(), extra) {
        a.extend(extra);
    }
    axum::Json(answer).into_response()
}

fn md5_hex(text: &str) -> String {
    md5::Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn api(shared: &Shared, got: &Received) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let p = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let Some((_version, endpoint)) = got.path.trim_start_matches("/api/").split_once('/') else {
        return failed("10003");
    };
    let tokens = shared.logins.of(NAME);
    if endpoint == "login" {
        if p("username").is_empty() || p("password").is_empty() {
            return failed(BLANK_PARAMETER);
        }
        if p("username") != USER || p("password") != md5_hex(PASSWORD) {
            return failed(BAD_LOGIN);
        }
        return success(json!({"token": tokens.issue()}));
    }
    let token = got.param("token");
    match token.as_deref() {
        None | Some("") => return failed(BLANK_TOKEN),
        Some(t) if !tokens.accepts(Some(t)) => return failed(NO_SUCH_TOKEN),
        Some(_) => {}
    }
    let callid = || format!("{}.{}", shared.id() % 10_000_000_000, 333);
    match endpoint {
        "heartbeat" => success(json!({})),
        "call/dial" | "extension/dial_outbound" => {
            let (caller, callee) = match endpoint {
                "call/dial" => (p("caller"), p("callee")),
                _ => (p("extid"), p("outto")),
            };
            if caller.is_empty() || callee.is_empty() {
                failed(BLANK_PARAMETER)
            } else if caller.starts_with('9') {
                failed(NO_EXTENSION)
            } else if callee.starts_with('9') {
                failed(NO_PERMISSION)
            } else {
                success(json!({"callid": callid()}))
            }
        }
        "call/hangup" | "extension/hangup" => {
            let which = if endpoint == "call/hangup" { p("channelid") } else { p("extid") };
            if which.is_empty() {
                failed(BLANK_PARAMETER)
            } else if which.starts_with('9') {
                failed(NO_CALL)
            } else {
                success(json!({}))
            }
        }
        _ => failed("10003"),
    }
}
