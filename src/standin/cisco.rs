//! A Cisco IP phone's CGI Execute (CUCM-registered phones, XML services),
//! as usecallmanager.nz's CGI Execute page and Cisco's IP Phone Services
//! Application Development Notes describe it:
//!
//! - `POST /CGI/Execute` with a form field `XML` holding
//!   `<CiscoIPPhoneExecute><ExecuteItem Priority="0" URL="Dial:N"/></CiscoIPPhoneExecute>`
//!   (up to 3 items; Priority 0 now, 1 when idle, 2 only if idle; URL an
//!   internal URI such as `Dial:`, `Key:`, `SoftKey:`, or an http(s) URL).
//! - HTTP Basic credentials, which the phone checks with its
//!   `authenticationURL` (the user must own the device).
//! - The answer is XML: `<CiscoIPPhoneResponse>` with one
//!   `<ResponseItem Status="0" Data="…" URL="…"/>` per item, or
//!   `<CiscoIPPhoneError Number="N"/>`: 1 error parsing the CiscoIPPhone
//!   object, 2 error framing it, 3 internal file error, 4 authentication
//!   error. Both come with HTTP 200.
//!
//! The stand-in's own choices: wrong or missing credentials are error 4
//! (the authentication URL's refusal); a form without `XML`, or XML that
//! does not parse or is not a `CiscoIPPhoneExecute` with 1–3 items, is
//! error 1; `ResponseItem`'s `Data` is `Success`. One stand-in plays one
//! phone; the phone sends no events over HTTP.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Received, desk};

/// The credentials the phone's authentication URL accepts.
pub const USER: &str = "demo-cisco";
pub const PASSWORD: &str = "demo-cisco-pass";

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn error(number: u8) -> Response {
    xml(format!("<CiscoIPPhoneError Number=\"{number}\"/>"))
}

pub(super) fn execute(got: &Received) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if !desk::authorized(got, USER, PASSWORD) {
        return error(4);
    }
    let Some(doc) = got.param("XML") else { return error(1) };
    let Ok(parsed) = roxmltree::Document::parse(&doc) else { return error(1) };
    let root = parsed.root_element();
    let items: Vec<_> = root.children().filter(|n| n.has_tag_name("ExecuteItem")).collect();
    if root.tag_name().name() != "CiscoIPPhoneExecute" || items.is_empty() || items.len() > 3 {
        return error(1);
    }
    let mut out = String::from("<CiscoIPPhoneResponse>");
    for item in items {
        let url = item.attribute("URL").unwrap_or_default();
        let known = ["Dial:", "Key:", "SoftKey:", "Init:", "Play:", "http://", "https://"];
        if !known.iter().any(|k| url.starts_with(k))
            || !matches!(item.attribute("Priority").unwrap_or("0"), "0" | "1" | "2")
        {
            return error(1);
        }
        let url = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
        out.push_str(&format!("<ResponseItem Status=\"0\" Data=\"Success\" URL=\"{url}\"/>"));
    }
    out.push_str("</CiscoIPPhoneResponse>");
    xml(out)
}
