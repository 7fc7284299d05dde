//! A Grandstream GXP/GRP desk phone's HTTP API, as third-party integrations
//! and webdial's phone-vendor notes describe it (no Grandstream document
//! was read for this file):
//!
//! - `GET /cgi-bin/api-make_call?phonenumber=N&account=A&password=P` dials
//!   N on the phone's account A (0 = the first), P being the phone's admin
//!   password. (GRP26xx firmware also takes `passcode=P`; the stand-in
//!   takes either.)
//! - `GET /cgi-bin/api-phone_operation?cmd=endcall&passcode=P` ends the
//!   call (also `holdcall`, `acceptcall`, `rejectcall`, `cancel`).
//! - Answers are HTTP 200 with JSON: `{"response": "success", "body":
//!   true}`, or `{"response": "error", "body": "failed"}`.
//!
//! The stand-in's own choices: a wrong or missing password answers
//! `{"response": "error", "body": "unauthorized"}` (the notes do not say);
//! a number starting with 9, a missing `phonenumber` or an unknown `cmd`
//! is `"failed"`, so tests can play a refusal. One stand-in plays one
//! phone; events are the phone's to send.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Received;

/// The phone's admin password the stand-in accepts.
pub const PASSWORD: &str = "demo-gxp-pass";

fn answer(ok: bool, body: serde_json::Value) -> Response {
    let response = if ok { "success" } else { "error" };
    axum::Json(json!({"response": response, "body": body})).into_response()
}

pub(super) fn api(got: &Received) -> Response {
    if got.method != "GET" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let password = got.param("password").or_else(|| got.param("passcode"));
    if password.as_deref() != Some(PASSWORD) {
        return answer(false, json!("unauthorized"));
    }
    match got.path.as_str() {
        "/cgi-bin/api-make_call" => {
            let number = got.param("phonenumber").unwrap_or_default();
            let account_ok = got.param("account").is_none_or(|a| a.parse::<u8>().is_ok());
            if number.is_empty() || number.starts_with('9') || !account_ok {
                answer(false, json!("failed"))
            } else {
                answer(true, json!(true))
            }
        }
        _ => match got.param("cmd").as_deref() {
            Some("endcall" | "holdcall" | "acceptcall" | "rejectcall" | "cancel") => answer(true, json!(true)),
            _ => answer(false, json!("failed")),
        },
    }
}
