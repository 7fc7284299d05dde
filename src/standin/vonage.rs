//! Vonage Voice API, as Vonage's API reference and its SDK types describe
//! it:
//!
//! - `POST /v1/calls` with `Authorization: Bearer JWT`: a JWT signed RS256
//!   with the application's private key, claims `application_id`, `iat`,
//!   `jti` (and `exp`); JSON `{to: [{type: "phone", number}], from: {type:
//!   "phone", number}, ncco: […] | answer_url: […], event_url?: […]}`.
//!   Answers `201 {uuid, status: "started", direction: "outbound",
//!   conversation_uuid}`.
//! - `PUT /v1/calls/{uuid}` `{action: hangup | mute | unmute | earmuff |
//!   unearmuff | transfer, destination?}`: `204`; `PUT
//!   /v1/calls/{uuid}/dtmf {digits}`: `200 {message: "DTMF sent", uuid}`.
//! - Errors are problem details `{type, title, detail, instance}`: `401`
//!   for a missing JWT, one not signed by the application's key ([`PRIVATE_KEY`]'s
//!   pair), one for another `application_id`, or one whose `iat` is more
//!   than five minutes off or whose `exp` has passed; `400` for a missing
//!   `to`/`from` or a `to` number starting with 9 (so tests can play a
//!   refusal); `404` for an unknown uuid. The `detail` words are the
//!   stand-in's own.
//! - Events: after an accepted call, `started`, `ringing`, `answered` and
//!   `completed` as JSON POSTs `{from, to, uuid, conversation_uuid,
//!   status, direction: "outbound", timestamp}` to the dial's `event_url`,
//!   else to the stand-in's notification URL (as Vonage uses the
//!   application's event URL). They are not signed (Vonage's signed
//!   webhooks carry an HS256 JWT; not reproduced).
//!
//! The application's key pair is a demo key: [`PRIVATE_KEY`] is public, in
//! this file, and only for the stand-in and tests. Call uuids are kept as
//! the `vonage` [`super::Logins`] tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Push, Received, Shared};

/// The Vonage application the stand-in knows.
pub const APPLICATION_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";

/// The application's private key (PKCS #8 PEM): a demo key, public.
pub const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC+mePpsueIIlCm\nh9idxlTCMtF48nzgxUqxoS9vpiOOpPdf1Bie06E6sfx9B46yleofC3bV2OqBEuaV\nVGqKCelu7R7ilazFjqiDd4MXrIQ70oxLjz5eavkK2nixKk6M2/LFwOipowAHpuHZ\nHzihp+JxEbHIK9iz20HNLGsC7Q0ui842934ihyeL1ittEPWhSBYXXGyseDJvJHfb\nFgaeTPkK3d3KYGwo89cVauCfYJLUmXhdYhU/kfPLlDyXyeGbA8NRPMCeWJIBRMba\nSxs5Zru9ATIC65SwMho/38FVPXEKubL7ZpnQRY9q4KhRF+x6evz6RXnK+y3N1c4B\n5LoY1egNAgMBAAECggEAKmIjl3PgPvosd3+VSG5SKjXtNSks4jmU9L9sQjZOSVm/\nJXjPOcBDJb9u7ymXTnh+LYWZ2Q9JhEa87h9tqoDuPuutFsMkPnEM4WEZzlGfPQNC\njcnOW2YLt6Fhvbmz6mg9icJuKky0BL+UELk72VyxAqYl46Z2Y3ZB4Vs7d5TZfcwX\n1vvZcHa1nYMbtct33I5/pXBeSih+TEA9FSwU+JXQjlTT95BVKtCTgkam2QgZb+hb\nBTs1VbAGWSNyL9emTQTatcSpqNSx0LY9/+3KVeZxO6eysTPLyZYLBTRXHeSt5uoC\nU3PIkdmvznAOq+SeFTecD1fDC6QUU4ShYd43gL8LwQKBgQDuyRgTNATLq4QfqXmq\nMUmOPOsP0jWZ+NVjBPlRL6wUXwPX0PvaEr0lHA4huKLeamxw5flQ0RRs0f5QBLWA\nkhua3VsLwPaT3gQAEFOmFDCucFcdJpH7CGW1TAkRtQDD+ghCvfPwekHhUBbX4ED+\nX6839EX3J1rhH3H9iW5mLON4QQKBgQDMV4d/wo0OMq+BFmjBCjeA+0UT/s54EvqY\nG4TD7ifgKJap/C4/Le2u9aqHFu07NMyu1V9ZvUPcRBEIYasI94frsm7+nPggRVt0\nykuYng8VN0CKaIRkaMcFg50QAANFxMAnpt3UWXUQc9gAaCOcxUZaIw08bYc02uLt\nQfBMV6eczQKBgBfplXqe0/gddf7BtwhfJTGUUinkcC+6Joxi/CCwOHhVx4m+SOpe\nxAhKVfP0jILff3qS3TPFrFj1cpVK025Ls23/ytVTfp3yNs5W1DmmffWKFH871JSi\nE6VjNulKCgiWKmucoCgt5hkNLyxxLbELnf1pffQxQb2Xq4+rSp360tDBAoGAQFOh\npTeCniCYnUOHsJVdya3QHi5NowEegDnRfrh/NxKv800e5ea4dyaBC0vNXKEPek5T\nWPW64iFPV1sfs4/w6uLeDCsv9UDAPLDeQWooh15AZBHo848EcBjxnbLTVOhOMW1X\nUdzjfE1rhx1BcL2tmvyD0y0LrjjlzRi/49iIPFUCgYBLrce8SXsVpuTcgc4AX0by\nSmYOjryUgJAsjjjMhvUEGPV+DpBn0pBEAxLjo9WZuLpzzWmrkRSTH71MCYhzyuir\noomYS+GFObfXF/FL7kMrCBBHCQWRXKGNZaLZIPOrxApAMe8AqtAVvdrDcQR/GQ0/\n2ftj5PvHTP37VsVsi/82Lw==\n-----END PRIVATE KEY-----";

pub(super) fn serves(path: &str) -> bool {
    path == "/v1/calls" || path.starts_with("/v1/calls/")
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({"type": format!("https://developer.nexmo.com/api-errors#{}", title.to_lowercase().replace(' ', "-")), "title": title, "detail": detail, "instance": ulid::Ulid::generate().to_string()});
    (status, [(axum::http::header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why the request's JWT is refused, if it is.
fn refused(got: &Received) -> Option<&'static str> {
    let jwt = got.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "))?;
    let Some(claims) = crate::template::jwt_rs256_claims(jwt, PRIVATE_KEY) else {
        return Some("Invalid Token");
    };
    let number = |k: &str| claims.get(k).and_then(Value::as_u64);
    if claims.get("application_id").and_then(Value::as_str) != Some(APPLICATION_ID) {
        return Some("Invalid Token: unknown application_id");
    }
    if claims.get("jti").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("Invalid Token: jti is required");
    }
    if number("iat").is_none_or(|iat| iat.abs_diff(now()) > 300) {
        return Some("Invalid Token: iat is not now");
    }
    if number("exp").is_some_and(|exp| exp <= now()) {
        return Some("Invalid Token: expired");
    }
    None
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if got.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).is_none() {
        return problem(StatusCode::UNAUTHORIZED, "Unauthorized", "You did not provide correct credentials.");
    }
    if let Some(why) = refused(got) {
        return problem(StatusCode::UNAUTHORIZED, "Unauthorized", why);
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let parts: Vec<&str> = got.path.trim_start_matches("/v1/calls").trim_start_matches('/').split('/').collect();
    match (got.method.as_str(), parts.as_slice()) {
        ("POST", [""]) => create(shared, &body),
        ("PUT", [uuid, ..]) if !shared.logins.of("vonage").accepts(Some(&uuid.replace('-', ""))) => {
            problem(StatusCode::NOT_FOUND, "Not Found", &format!("Call {uuid} was not found"))
        }
        ("PUT", [uuid]) => match body.get("action").and_then(Value::as_str) {
            Some("hangup" | "mute" | "unmute" | "earmuff" | "unearmuff") => StatusCode::NO_CONTENT.into_response(),
            Some("transfer") if body.get("destination").is_some() => StatusCode::NO_CONTENT.into_response(),
            _ => problem(StatusCode::BAD_REQUEST, "Bad Request", &format!("Invalid action for call {uuid}")),
        },
        ("PUT", [uuid, "dtmf"]) if body.get("digits").and_then(Value::as_str).is_some_and(|d| !d.is_empty()) => {
            axum::Json(json!({"message": "DTMF sent", "uuid": uuid})).into_response()
        }
        ("PUT", [_, "dtmf"]) => problem(StatusCode::BAD_REQUEST, "Bad Request", "digits is required"),
        _ => problem(StatusCode::NOT_FOUND, "Not Found", "Not found"),
    }
}

fn uuid(token: &str) -> String {
    let t = format!("{token:0>32}");
    format!("{}-{}-{}-{}-{}", &t[0..8], &t[8..12], &t[12..16], &t[16..20], &t[20..32])
}

fn create(shared: &Shared, body: &Value) -> Response {
    let to = body.pointer("/to/0/number").and_then(Value::as_str).unwrap_or_default();
    let from = body.pointer("/from/number").and_then(Value::as_str).unwrap_or_default();
    if to.is_empty() || from.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "to and from are required");
    }
    if body.get("ncco").is_none() && body.get("answer_url").is_none() {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "ncco or answer_url is required");
    }
    if to.trim_start_matches('+').starts_with('9') {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", &format!("Invalid number: {to}"));
    }
    let call = uuid(&shared.logins.of("vonage").issue());
    let conversation = format!("CON-{}", uuid(&format!("{:x}", shared.id())));
    let event_url = body.pointer("/event_url/0").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
    let events = ["started", "ringing", "answered", "completed"].iter().map(|status| {
        let event = json!({"from": from, "to": to, "uuid": call, "conversation_uuid": conversation, "status": status, "direction": "outbound", "timestamp": "2026-12-01T15:24:24.000Z"});
        Push::Post { to: event_url.clone(), content_type: "application/json", body: event.to_string(), headers: vec![] }
    });
    shared.push(events.collect());
    let answer = json!({"uuid": call, "status": "started", "direction": "outbound", "conversation_uuid": conversation});
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}
