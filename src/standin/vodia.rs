//! Vodia PBX click-to-dial, as Vodia's "Click to Dial" page and its
//! click-to-call API page describe it: `GET /remote_call.htm?user=EXT@DOMAIN&dest=NUMBER`
//! starts a call from the extension to the number. The request proves who
//! it is either with `auth=USER:PASSWORD` in the query (the extension's
//! web password) or, without `auth`, by answering the PBX's HTTP
//! challenge (`401` with `WWW-Authenticate`); `connect=true` skips the
//! "press 1 to connect" prompt. The answer is a `200` `text/html` page with
//! no machine-readable status and no call id.
//!
//! The stand-in's own choices: the accounts it knows ([`DOMAIN`], any
//! extension with [`WEB_PASSWORD`], and the domain administrator
//! [`ADMIN`] with [`ADMIN_PASSWORD`], who may dial for any extension); the
//! challenge is HTTP Basic (Vodia's pages do not say which scheme, and
//! wrong credentials are challenged the same way); a `user` or `dest`
//! missing is `400`; an extension starting with 9 does not exist (`404`),
//! so tests can play a refusal. The hash form (`extension=true`, `time`,
//! `duration`, `auth=md5(…)`) is not served.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::Received;

/// The accounts the stand-in knows.
pub const DOMAIN: &str = "pbx.example.com";
pub const WEB_PASSWORD: &str = "demo-vodia-web";
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "demo-vodia-admin";

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<html><head><title>{title}</title></head><body><p>{text}</p></body></html>\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}

/// Whether `user:password` may start a call for `caller` (`EXT@DOMAIN`).
fn allowed(credentials: &str, caller: &str) -> bool {
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    (user == caller && password == WEB_PASSWORD) || (user == ADMIN && password == ADMIN_PASSWORD)
}

fn basic(got: &Received) -> Option<String> {
    let encoded = got.authorization.as_deref()?.strip_prefix("Basic ")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

pub(super) fn remote_call(got: &Received) -> Response {
    if got.method != "GET" {
        return page(StatusCode::METHOD_NOT_ALLOWED, "Error", "Method not allowed");
    }
    let (user, dest) = (got.param("user").unwrap_or_default(), got.param("dest").unwrap_or_default());
    if user.is_empty() || dest.is_empty() {
        return page(StatusCode::BAD_REQUEST, "Error", "Missing user or destination");
    }
    let credentials = got.param("auth").or_else(|| basic(got));
    if !credentials.is_some_and(|c| allowed(&c, &user)) {
        let challenge = format!("Basic realm=\"{DOMAIN}\"");
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], "").into_response();
    }
    let (ext, domain) = user.split_once('@').unwrap_or((user.as_str(), ""));
    if ext.starts_with('9') || domain != DOMAIN {
        return page(StatusCode::NOT_FOUND, "Error", "User not found");
    }
    let prompt = if got.param("connect").as_deref() == Some("true") { "" } else { " Press 1 to connect." };
    page(StatusCode::OK, "Call", &format!("Calling {dest} from {ext}.{prompt}"))
}
