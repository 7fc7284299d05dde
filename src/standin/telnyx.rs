//! Telnyx Call Control (Voice API v2), as Telnyx's API reference describes
//! it:
//!
//! - `POST /v2/calls`, `Authorization: Bearer API_KEY`, JSON
//!   `{connection_id, to, from, webhook_url?, client_state?, timeout_secs?}`
//!   dials one leg; answers `200 {data: {call_control_id, call_leg_id,
//!   call_session_id, is_alive: false, record_type: "call"}}`.
//! - `POST /v2/calls/{call_control_id}/actions/{hangup|transfer|send_dtmf}`
//!   (`transfer` wants `to`, `send_dtmf` `digits`) answers
//!   `200 {data: {result: "ok"}}`; a call id the stand-in never issued is
//!   `422` 90018 "Call has already ended", as Telnyx answers commands on a
//!   finished call.
//! - Errors: `{errors: [{code, title, detail, source?: {pointer}}]}` with
//!   `401` (10009, a wrong or missing key) or `422` (10015, a missing or bad
//!   parameter; a `to` starting with 9 or +9 is refused so tests can play a
//!   refusal). The codes are Telnyx's; the detail words are the stand-in's.
//! - Webhooks: after an accepted dial, `call.initiated`,
//!   `call.answered` and `call.hangup` (`hangup_cause: normal_clearing`)
//!   POSTed as JSON `{data: {event_type, id, occurred_at, payload:
//!   {call_control_id, call_leg_id, call_session_id, connection_id, from, to,
//!   direction: "outgoing", state, client_state}, record_type: "event"},
//!   meta: {attempt, delivered_to}}`, each signed as Telnyx signs: the
//!   headers `telnyx-timestamp` (Unix seconds) and
//!   `telnyx-signature-ed25519` (base64 Ed25519 over `"{timestamp}|{body}"`)
//!   with the stand-in's own key pair ([`public_key`] is what a branch
//!   verifies with). They go to the dial's `webhook_url`, else (as Telnyx
//!   uses the Call Control application's configured webhook URL) to the
//!   stand-in's notification URL ([`super::StandIn::notify_to`]).
//!
//! Issued call control ids are kept as the `telnyx` [`super::Logins`]
//! tokens (`v3:` + token), so commands know which calls exist.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Push, Received, Shared};

/// The API key the stand-in accepts, and a connection (Call Control application) id.
pub const API_KEY: &str = "KEYdemo-telnyx-api-key";
pub const CONNECTION_ID: &str = "1494404757140276705";

/// The seed of the stand-in's webhook signing key (a demo key: public).
const SIGNING_SEED: [u8; 32] = *b"webdial-stand-in-telnyx-signing!";

/// The stand-in's webhook public key, base64 (what Telnyx's portal shows).
pub fn public_key() -> String {
    crate::template::ed25519_sign(&SIGNING_SEED, "").1
}

/// `/v2/calls` and `/v2/calls/{id}/actions/{command}`: other `/v2/calls/…`
/// paths are sipgate's (the two never share a host, but share a stand-in).
/// The stand-in's `telnyx-signature-ed25519` for a webhook `body` sent at
/// `timestamp`, as its own webhooks carry it.
pub fn sign(timestamp: &str, body: &str) -> String {
    crate::template::ed25519_sign(&SIGNING_SEED, &format!("{timestamp}|{body}")).0
}

pub(super) fn serves(path: &str) -> bool {
    path == "/v2/calls" || path.strip_prefix("/v2/calls/").is_some_and(|rest| rest.split('/').nth(1) == Some("actions"))
}

fn error(status: StatusCode, code: &str, title: &str, detail: &str, pointer: Option<&str>) -> Response {
    let mut e = json!({"code": code, "title": title, "detail": detail});
    if let Some(p) = pointer {
        e["source"] = json!({"pointer": p});
    }
    (status, axum::Json(json!({"errors": [e]}))).into_response()
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    let key = got.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    if key != Some(API_KEY) {
        return error(StatusCode::UNAUTHORIZED, "10009", "Authentication failed", "The API key is invalid.", None);
    }
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    if got.path == "/v2/calls" {
        return dial(shared, &body);
    }
    let parts: Vec<&str> = got.path.trim_start_matches("/v2/calls/").split('/').collect();
    let [id, "actions", command] = parts.as_slice() else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    // Call control ids hold `:`, which a client may send percent-encoded.
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let known = id.strip_prefix("v3:").is_some_and(|t| shared.logins.of("telnyx").accepts(Some(t)));
    let missing = match *command {
        "hangup" => None,
        "transfer" if text(&body, "to").is_empty() => Some("to"),
        "send_dtmf" if text(&body, "digits").is_empty() => Some("digits"),
        "transfer" | "send_dtmf" => None,
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    if let Some(field) = missing {
        let detail = format!("The '{field}' parameter is required.");
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            "Invalid parameter",
            &detail,
            Some(&format!("/{field}")),
        );
    }
    if !known {
        let detail = "This call is no longer active and can't receive commands.";
        return error(StatusCode::UNPROCESSABLE_ENTITY, "90018", "Call has already ended", detail, None);
    }
    axum::Json(json!({"data": {"result": "ok"}})).into_response()
}

fn dial(shared: &Shared, body: &Value) -> Response {
    for field in ["connection_id", "to", "from"] {
        if text(body, field).is_empty() {
            let detail = format!("The '{field}' parameter is required.");
            let pointer = format!("/{field}");
            return error(StatusCode::UNPROCESSABLE_ENTITY, "10015", "Invalid parameter", &detail, Some(&pointer));
        }
    }
    let to = text(body, "to");
    if to.trim_start_matches('+').starts_with('9') {
        let detail = format!("The destination number {to} is invalid.");
        return error(StatusCode::UNPROCESSABLE_ENTITY, "10015", "Invalid value for to", &detail, Some("/to"));
    }
    let token = shared.logins.of("telnyx").issue();
    let id = format!("v3:{token}");
    let (leg, session) = (format!("leg-{}", shared.id()), format!("session-{}", shared.id()));
    // The dial's own webhook_url, else the notification URL the stand-in
    // was given (as Telnyx uses the application's configured one).
    let webhook = Some(text(body, "webhook_url")).filter(|w| !w.is_empty());
    {
        let payload = json!({
            "call_control_id": id, "call_leg_id": leg, "call_session_id": session,
            "connection_id": text(body, "connection_id"), "from": text(body, "from"), "to": to,
            "direction": "outgoing", "client_state": body.get("client_state").cloned().unwrap_or(Value::Null),
        });
        let events = [
            ("call.initiated", "bridging", None),
            ("call.answered", "answered", None),
            ("call.hangup", "hangup", Some("normal_clearing")),
        ];
        shared.push(
            events.iter().map(|(event, state, cause)| webhook_post(webhook, event, state, *cause, &payload)).collect(),
        );
    }
    let data = json!({"call_control_id": id, "call_leg_id": leg, "call_session_id": session, "is_alive": false, "record_type": "call"});
    axum::Json(json!({"data": data})).into_response()
}

fn webhook_post(url: Option<&str>, event: &str, state: &str, cause: Option<&str>, payload: &Value) -> Push {
    let mut payload = payload.clone();
    payload["state"] = json!(state);
    if let Some(c) = cause {
        payload["hangup_cause"] = json!(c);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let body = json!({
        "data": {"event_type": event, "id": ulid::Ulid::generate().to_string(), "occurred_at": "2026-12-01T15:24:24.000000Z", "payload": payload, "record_type": "event"},
        "meta": {"attempt": 1, "delivered_to": url.unwrap_or_default()},
    })
    .to_string();
    let timestamp = now.to_string();
    let signature = sign(&timestamp, &body);
    Push::Post {
        to: url.map(str::to_string),
        content_type: "application/json",
        body,
        headers: vec![("telnyx-signature-ed25519".into(), signature), ("telnyx-timestamp".into(), timestamp)],
    }
}
