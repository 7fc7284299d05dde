//! RingCentral RingOut, as RingCentral's developer guide and API reference
//! describe it:
//!
//! - `POST /restapi/oauth/token`, HTTP basic auth `client_id:client_secret`,
//!   form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and
//!   `assertion` (the user's JWT credential): `200 {access_token,
//!   token_type: "bearer", expires_in: 3600, refresh_token,
//!   refresh_token_expires_in, scope, owner_id, endpoint_id}`. A wrong
//!   client is `401 {error: "invalid_client"}`, a wrong JWT `400 {error:
//!   "invalid_grant"}`, each with `error_description` and RingCentral's
//!   `errors: [{errorCode, message}]`.
//! - `POST /restapi/v1.0/account/~/extension/~/ring-out` with
//!   `Authorization: Bearer TOKEN`, JSON `{from: {phoneNumber}, to:
//!   {phoneNumber}, callerId?: {phoneNumber}, playPrompt?}`: `200 {uri, id,
//!   status: {callStatus: "InProgress", callerStatus, calleeStatus}}`.
//!   RingOut rings `from` first, then `to`.
//! - `GET …/ring-out/{id}` (the status) and `DELETE …/ring-out/{id}` (cancel:
//!   `204`); an unknown id is `404` CMN-102.
//! - Errors: `{errorCode, message, errors: [{errorCode, message,
//!   parameterName?}]}`: an expired or unknown token `401` `TokenInvalid`
//!   ("Access token is invalid"); a missing or bad number `400` CMN-101
//!   (a `from` number starting with 9 or +9 is refused, so tests can play a
//!   refusal). The error codes are RingCentral's; the words partly the
//!   stand-in's.
//!
//! No events are pushed: RingCentral's webhooks need a subscription made
//! over its API and a handshake echoing a header, which a gateway cannot
//! answer. Tokens are the `ringcentral` [`super::Logins`] tokens (tests
//! expire them); RingOut ids are kept as `ringcentral-ringout` ones.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Received, Shared};

/// The app and user the stand-in knows: the app's client id and secret,
/// and the user's JWT credential (a demo value, not a real JWT).
pub const CLIENT_ID: &str = "demo-rc-client-id";
pub const CLIENT_SECRET: &str = "demo-rc-client-secret";
pub const USER_JWT: &str = "eyJkZW1vIjoicmluZ2NlbnRyYWwifQ.eyJzdWIiOiIxMDEifQ.demo-signature";

const TOKEN_PATH: &str = "/restapi/oauth/token";
const RING_OUT: &str = "/restapi/v1.0/account/~/extension/~/ring-out";

pub(super) fn serves(path: &str) -> bool {
    path == TOKEN_PATH || path == RING_OUT || path.starts_with("/restapi/v1.0/account/~/extension/~/ring-out/")
}

fn error(status: StatusCode, code: &str, message: &str, parameter: Option<&str>) -> Response {
    let mut e = json!({"errorCode": code, "message": message});
    if let Some(p) = parameter {
        e["parameterName"] = json!(p);
    }
    (status, axum::Json(json!({"errorCode": code, "message": message, "errors": [e]}))).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str, code: &str) -> Response {
    let body = json!({"error": error, "error_description": description, "errors": [{"errorCode": code, "message": description}]});
    (status, axum::Json(body)).into_response()
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if got.path == TOKEN_PATH {
        return token(shared, got);
    }
    let token = got.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    if !shared.logins.of("ringcentral").accepts(token) {
        return error(StatusCode::UNAUTHORIZED, "TokenInvalid", "Access token is invalid", None);
    }
    let ringouts = shared.logins.of("ringcentral-ringout");
    match (got.method.as_str(), got.path.strip_prefix(RING_OUT)) {
        ("POST", Some("")) => ring_out(shared, got),
        ("GET" | "DELETE", Some(rest)) if rest.starts_with('/') => {
            let id = &rest[1..];
            if !ringouts.accepts(Some(id)) {
                let message = "Resource for parameter [ringoutId] is not found";
                return error(StatusCode::NOT_FOUND, "CMN-102", message, Some("ringoutId"));
            }
            if got.method == "DELETE" {
                return StatusCode::NO_CONTENT.into_response();
            }
            axum::Json(status(id)).into_response()
        }
        _ => (StatusCode::METHOD_NOT_ALLOWED, "").into_response(),
    }
}

fn token(shared: &Shared, got: &Received) -> Response {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    if got.authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) != Some(want.as_str()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client", "OAU-123");
    }
    if got.param("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type", "OAU-250");
    }
    if got.param("assertion").as_deref() != Some(USER_JWT) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid token", "OAU-213");
    }
    let access_token = shared.logins.of("ringcentral").issue();
    axum::Json(json!({
        "access_token": access_token, "token_type": "bearer", "expires_in": 3600,
        "refresh_token": format!("{:032x}", ulid::Ulid::generate().0), "refresh_token_expires_in": 604800,
        "scope": "RingOut", "owner_id": "101", "endpoint_id": "demo-endpoint",
    }))
    .into_response()
}

fn status(id: &str) -> Value {
    json!({
        "uri": format!("https://platform.ringcentral.com{RING_OUT}/{id}"), "id": id,
        "status": {"callStatus": "InProgress", "callerStatus": "InProgress", "calleeStatus": "InProgress"},
    })
}

fn ring_out(shared: &Shared, got: &Received) -> Response {
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let number = |side: &str| body.pointer(&format!("/{side}/phoneNumber")).and_then(Value::as_str).unwrap_or_default();
    for side in ["from", "to"] {
        if number(side).is_empty() {
            let message = format!("Parameter [{side}.phoneNumber] value is invalid");
            return error(StatusCode::BAD_REQUEST, "CMN-101", &message, Some(&format!("{side}.phoneNumber")));
        }
    }
    if number("from").trim_start_matches('+').starts_with('9') {
        let message = "Parameter [from.phoneNumber] value is invalid";
        return error(StatusCode::BAD_REQUEST, "CMN-101", message, Some("from.phoneNumber"));
    }
    let id = shared.logins.of("ringcentral-ringout").issue();
    axum::Json(status(&id)).into_response()
}
