//! 2600Hz Kazoo's Crossbar API, as its docs (`applications/crossbar/doc/`
//! `user_authentication.md`, `quickcall.md`, `channels.md`, webhooks'
//! channel events) describe it. Every answer is JSON with `status`
//! (`success` / `error`); an error also has `error` (the HTTP status as
//! text), `message` and `data`.
//!
//! - `PUT /v2/user_auth` JSON `{"data": {"credentials": md5("user:password"),
//!   "account_name": …}}` (or `realm` / `phone_number`; `method` md5 or sha1)
//!   answers `201` `{"auth_token", "data": {"account_id", "owner_id"…},
//!   "status": "success"}`; wrong credentials `401` `{"message":
//!   "invalid_credentials", "data": {"message": "invalid credentials"}}`.
//! - Every `/v2/accounts/{ACCOUNT_ID}/…` request wants a live token in
//!   `X-Auth-Token` (else `401` `invalid_credentials`: the gateway logs in
//!   again) and the account the token was issued for (else `403`).
//! - `POST /v2/accounts/{A}/{users|devices}/{ID}/quickcall/{NUMBER}`
//!   (blocking: answers once a channel starts) is `202` with the originate
//!   in `data`, `data.endpoints[0].outbound_call_id` being `…-quickcall`;
//!   `cid-number`/`cid-name` come in the query. `GET` is the non-blocking
//!   form: `202` at once, even for an endpoint that cannot be reached.
//! - `POST /v2/accounts/{A}/channels/{CALL_ID}` `{"data": {"action":
//!   "hangup"}}` or `{"action": "transfer", "target": …}`: `202`; an
//!   unknown channel is `404` "bad identifier".
//! - Events: after a quickcall, the channel webhooks a Kazoo webhook
//!   (`http_verb: post`, JSON) delivers: `channel_create`, `channel_answer`,
//!   `channel_destroy` (with `hangup_cause`), the base channel payload
//!   (`call_id`, `call_direction`, `caller_id_number`, `callee_id_number`,
//!   `account_id`, `owner_id`…), `pace` apart, to the stand-in's
//!   notification URL.
//!
//! The stand-in's own choices: the account ([`ACCOUNT_NAME`],
//! [`ACCOUNT_ID`]) and user ([`USER`], [`PASSWORD`]) it knows; a blocking
//! quickcall to an endpoint id starting with 9 fails with `500`
//! "quickcall initiation failed" and `data.error_message`
//! `DESTINATION_OUT_OF_ORDER`, as Kazoo's doc shows; an empty or unknown
//! endpoint id is `404` "bad identifier". Channels are remembered (in
//! [`super::Logins`] under [`CHANNELS`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::{Push, Received, Shared};

/// The account and user the stand-in knows.
pub const ACCOUNT_NAME: &str = "acme";
pub const ACCOUNT_ID: &str = "91eb05e5c68d7ca05e7618b6821d2d16";
pub const USER: &str = "webdial";
pub const PASSWORD: &str = "demo-kazoo-secret";

/// The system's name for its tokens ([`super::StandIn::logins`]), and where its channels are kept.
pub const NAME: &str = "kazoo";
pub const CHANNELS: &str = "kazoo/channels";

fn error(status: StatusCode, message: &str, data: Value) -> Response {
    let body = json!({"auth_token": "", "data": data, "error": status.as_u16().to_string(), "message": message, "request_id": "00000000000000000000000000000001", "status": "error"});
    (status, axum::Json(body)).into_response()
}

fn success(status: StatusCode, token: &str, data: Value) -> Response {
    let body = json!({"auth_token": token, "data": data, "request_id": "00000000000000000000000000000002", "revision": "automatic", "status": "success"});
    (status, axum::Json(body)).into_response()
}

pub(super) fn serves(path: &str) -> bool {
    path == "/v2/user_auth" || path.starts_with("/v2/accounts/")
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if got.path == "/v2/user_auth" {
        return user_auth(shared, got);
    }
    let Some(token) = got.header("x-auth-token").filter(|t| shared.logins.of(NAME).accepts(Some(t))) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_credentials", json!({}));
    };
    let parts: Vec<&str> = got.path.trim_start_matches("/v2/accounts/").split('/').collect();
    if parts.first() != Some(&ACCOUNT_ID) {
        return error(StatusCode::FORBIDDEN, "forbidden", json!({"message": "access denied"}));
    }
    match (got.method.as_str(), &parts[1..]) {
        ("GET" | "POST", [kind @ ("users" | "devices"), id, "quickcall", number]) => {
            quickcall(shared, got, token, kind, id, number)
        }
        ("POST", ["channels", call_id]) => channel(shared, got, token, call_id),
        _ => error(StatusCode::NOT_FOUND, "bad identifier", json!({})),
    }
}

fn user_auth(shared: &Shared, got: &Received) -> Response {
    if got.method != "PUT" {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", json!({}));
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let expected = format!("{:x}", Md5::digest(format!("{USER}:{PASSWORD}")));
    let data = &body["data"];
    if data["credentials"].as_str() != Some(&expected) || data["account_name"].as_str() != Some(ACCOUNT_NAME) {
        return error(StatusCode::UNAUTHORIZED, "invalid_credentials", json!({"message": "invalid credentials"}));
    }
    let token = shared.logins.of(NAME).issue();
    let data = json!({"account_id": ACCOUNT_ID, "apps": [], "is_reseller": false, "language": "en-US", "owner_id": "d860229e722bf8f738737365b0b1e333", "reseller_id": "026f4f0a6d99f9a19b6aa4aa75501d7d"});
    success(StatusCode::CREATED, &token, data)
}

fn quickcall(shared: &Shared, got: &Received, token: &str, kind: &str, id: &str, number: &str) -> Response {
    if id.is_empty() {
        return error(StatusCode::NOT_FOUND, "bad identifier", json!({"errors": [id]}));
    }
    let number = percent_encoding::percent_decode_str(number).decode_utf8_lossy().into_owned();
    let n = shared.id();
    let call_id = format!("{n:x}-quickcall");
    let endpoint =
        json!({"outbound_call_id": call_id, "endpoint_id": id, "to_did": number, "invite_format": "username"});
    let originate = json!({
        "application_name": "transfer", "application_data": {"route": number},
        "custom_channel_vars": {"authorizing_id": id, "authorizing_type": kind.trim_end_matches('s'), "account_id": ACCOUNT_ID},
        "outbound_caller_id_number": got.param("cid-number").unwrap_or_else(|| number.clone()),
        "outbound_caller_id_name": got.param("cid-name").unwrap_or_else(|| "Device QuickCall".into()),
        "timeout": 30, "endpoints": [endpoint]
    });
    if id.starts_with('9') {
        if got.method == "GET" {
            return success(StatusCode::ACCEPTED, token, originate); // the non-blocking trap: nothing rings
        }
        let data = json!({"error_message": "DESTINATION_OUT_OF_ORDER", "request": originate});
        return error(StatusCode::INTERNAL_SERVER_ERROR, "quickcall initiation failed", data);
    }
    shared.logins.of(CHANNELS).accept(&call_id);
    let event = |hook: &str, extra: Value| {
        let mut body = json!({
            "hook_event": hook, "account_id": ACCOUNT_ID, "authorizing_id": id, "authorizing_type": kind.trim_end_matches('s'),
            "call_direction": "outbound", "call_id": call_id, "caller_id_name": "Device QuickCall", "caller_id_number": number,
            "callee_id_name": "", "callee_id_number": "", "owner_id": id, "timestamp": "63724349409",
            "custom_channel_vars": {}, "custom_application_vars": {}
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        Push::Post { to: None, content_type: "application/json", body: body.to_string(), headers: Vec::new() }
    };
    shared.push(vec![
        event("channel_create", json!({})),
        event("channel_answer", json!({})),
        event(
            "channel_destroy",
            json!({"hangup_cause": "NORMAL_CLEARING", "hangup_code": "sip:200", "duration_seconds": 6}),
        ),
    ]);
    success(StatusCode::ACCEPTED, token, originate)
}

fn channel(shared: &Shared, got: &Received, token: &str, call_id: &str) -> Response {
    if !shared.logins.of(CHANNELS).accepts(Some(call_id)) {
        return error(StatusCode::NOT_FOUND, "bad identifier", json!({"errors": [call_id]}));
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let data = &body["data"];
    match data["action"].as_str() {
        Some("hangup") => success(StatusCode::ACCEPTED, token, json!({})),
        Some("transfer") if data["target"].as_str().is_some_and(|t| !t.is_empty()) => {
            success(StatusCode::ACCEPTED, token, json!({}))
        }
        Some("transfer") => error(
            StatusCode::BAD_REQUEST,
            "invalid data",
            json!({"target": {"required": {"message": "Field is required but missing"}}}),
        ),
        _ => error(
            StatusCode::BAD_REQUEST,
            "invalid data",
            json!({"action": {"enum": {"message": "Value not found in enumerated list of values"}}}),
        ),
    }
}
