//! Twilio Programmable Voice (REST API 2010-04-01), as Twilio's OpenAPI
//! description and its documentation describe it:
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, HTTP basic auth
//!   `AccountSid:AuthToken`, a form with `To`, `From` (both required) and
//!   one of `Url`, `Twiml` or `ApplicationSid`; optional `StatusCallback`,
//!   `StatusCallbackEvent` (repeated: `initiated`, `ringing`, `answered`,
//!   `completed`; only `completed` when none is given) and
//!   `StatusCallbackMethod`. Answers `201` with the call resource (`sid`
//!   `CA…`, `status: queued`, `direction: outbound-api`, …).
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
//!   `Status=completed` or `canceled` ends a call: `200` with the call,
//!   `status` as asked; an unknown `CallSid` is `404` (code 20404).
//! - Errors are Twilio's JSON `{code, message, more_info, status}` with the
//!   HTTP status: wrong or missing credentials `401` (20003
//!   "Authenticate"); no `To` `400` (21201); no `From` `400` (21213);
//!   neither `Url`, `Twiml` nor `ApplicationSid` `400` (21205); a `To`
//!   starting with 9 (or +9) `400` (21211 "The 'To' number … is not a valid
//!   phone number."), so tests can play a refusal.
//! - Status callbacks: after an accepted call with a `StatusCallback` URL
//!   (and `StatusCallbackMethod` POST, the default), one form POST per
//!   event asked for, in order — `CallStatus` `initiated`, `ringing`,
//!   `in-progress` (the `answered` event), `completed` — with `CallSid`,
//!   `AccountSid`, `From`, `To`, `Direction: outbound-api`, `ApiVersion`,
//!   `SequenceNumber`, `Timestamp`, `CallbackSource`, signed as Twilio
//!   documents: `X-Twilio-Signature` is the base64 HMAC-SHA1, keyed with the
//!   auth token, of the callback URL followed by every parameter's name and
//!   value sorted by name.
//!
//! The stand-in's own choices: the exact words of 21205 and of a
//! `Twiml` that is not a `<Response>` XML document (12100 "Document parse
//! failure", which Twilio reports on the call rather than to the request);
//! that a hang-up of an ended call answers 200 again; that a GET status
//! callback (`StatusCallbackMethod=GET`) is not sent. The call ids issued
//! are kept as the `twilio` [`super::Logins`] tokens (`CA` + token), so a
//! hang-up knows which calls exist.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::{Push, Received, Shared};

/// The account the stand-in knows: its AccountSid and AuthToken.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "demo-twilio-auth-token";

const API: &str = "/2010-04-01/Accounts/";

/// Whether `path` is one of Twilio's call paths.
pub(super) fn serves(path: &str) -> bool {
    path.starts_with(API)
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn authorized(got: &Received) -> bool {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    got.authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) == Some(want.as_str())
}

/// The call resource Twilio answers with.
fn call(sid: &str, to: &str, from: &str, status: &str) -> Value {
    json!({
        "sid": sid, "account_sid": ACCOUNT_SID, "parent_call_sid": null,
        "to": to, "to_formatted": to, "from": from, "from_formatted": from,
        "status": status, "direction": "outbound-api", "api_version": "2010-04-01",
        "start_time": null, "end_time": null, "duration": null, "price": null, "answered_by": null,
        "uri": format!("{API}{ACCOUNT_SID}/Calls/{sid}.json"),
    })
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if !authorized(got) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let rest = got.path.trim_start_matches(API);
    let Some(rest) = rest.strip_prefix(ACCOUNT_SID) else {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    };
    let not_found = || {
        let message = format!("The requested resource {} was not found", got.path);
        error(StatusCode::NOT_FOUND, 20404, &message)
    };
    if got.method != "POST" {
        return error(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed");
    }
    match rest {
        "/Calls.json" => create(shared, got),
        _ => match rest.strip_prefix("/Calls/").and_then(|r| r.strip_suffix(".json")) {
            Some(sid) => update(shared, got, sid).unwrap_or_else(not_found),
            None => not_found(),
        },
    }
}

fn create(shared: &Shared, got: &Received) -> Response {
    let p = |k: &str| got.param(k).unwrap_or_default();
    let (to, from) = (p("To"), p("From"));
    if to.is_empty() {
        return error(StatusCode::BAD_REQUEST, 21201, "No 'To' number is specified");
    }
    if from.is_empty() {
        return error(StatusCode::BAD_REQUEST, 21213, "No 'From' number is specified");
    }
    if p("Url").is_empty() && p("Twiml").is_empty() && p("ApplicationSid").is_empty() {
        return error(StatusCode::BAD_REQUEST, 21205, "Url, ApplicationSid or Twiml is required");
    }
    let twiml = p("Twiml");
    if !twiml.is_empty() && !is_response(&twiml) {
        return error(StatusCode::BAD_REQUEST, 12100, "Document parse failure");
    }
    if to.trim_start_matches('+').starts_with('9') {
        return error(StatusCode::BAD_REQUEST, 21211, &format!("The 'To' number {to} is not a valid phone number."));
    }
    let sid = format!("CA{}", shared.logins.of("twilio").issue());
    let callback = p("StatusCallback");
    if !callback.is_empty() && !p("StatusCallbackMethod").eq_ignore_ascii_case("GET") {
        let mut wanted: Vec<String> =
            got.params().into_iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v).collect();
        if wanted.is_empty() {
            wanted.push("completed".into());
        }
        shared.push(callbacks(&callback, &sid, &to, &from, &wanted));
    }
    (StatusCode::CREATED, axum::Json(call(&sid, &to, &from, "queued"))).into_response()
}

/// `Twiml` must be an XML document whose root is `<Response>`.
fn is_response(twiml: &str) -> bool {
    roxmltree::Document::parse(twiml).is_ok_and(|d| d.root_element().has_tag_name("Response"))
}

fn update(shared: &Shared, got: &Received, sid: &str) -> Option<Response> {
    let known = sid.strip_prefix("CA").is_some_and(|t| shared.logins.of("twilio").accepts(Some(t)));
    if !known {
        return None;
    }
    let status = got.param("Status").unwrap_or_default();
    if !status.is_empty() && status != "completed" && status != "canceled" {
        let message = format!("{status} is not a valid choice");
        return Some(error(StatusCode::BAD_REQUEST, 20001, &message));
    }
    let now = if status.is_empty() { "in-progress" } else { status.as_str() };
    Some(axum::Json(call(sid, "", "", now)).into_response())
}

/// The status callbacks of one call, for the events asked for, signed.
fn callbacks(url: &str, sid: &str, to: &str, from: &str, wanted: &[String]) -> Vec<Push> {
    let order =
        [("initiated", "initiated"), ("ringing", "ringing"), ("answered", "in-progress"), ("completed", "completed")];
    let mut out = Vec::new();
    for (seq, (_, status)) in order.iter().filter(|(event, _)| wanted.iter().any(|w| w == event)).enumerate() {
        let seq = seq.to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("AccountSid", ACCOUNT_SID),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", sid),
            ("CallStatus", status),
            ("CallbackSource", "call-progress-events"),
            ("Direction", "outbound-api"),
            ("From", from),
            ("SequenceNumber", &seq),
            ("Timestamp", "Tue, 01 Dec 2026 15:24:24 +0000"),
            ("To", to),
        ];
        if *status == "completed" {
            params.push(("CallDuration", "42"));
        }
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        let signature = signature(AUTH_TOKEN, url, &params);
        out.push(Push::Post {
            to: Some(url.to_string()),
            content_type: "application/x-www-form-urlencoded",
            body,
            headers: vec![("X-Twilio-Signature".into(), signature)],
        });
    }
    out
}

/// Twilio's request signature: base64 HMAC-SHA1 over the URL, then each
/// parameter's name and value, sorted by name.
pub fn signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()) else { return String::new() };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_twilios_own_example() {
        // Twilio's security documentation: auth token 12345, this URL and these parameters.
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        let sig = signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }
}
