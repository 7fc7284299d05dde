//! voiptech Click2Call `dialup.php`: `GET|POST /API/dialup.php` with `user`,
//! `pass`, `org`, `dial1`, `dial2`; it answers only with `Response=yes`, in
//! `RFormat` text|html|xml|json, with both legs' ids when `showUID=yes`.
//!
//! Checked as voiptech's page lists the parameters: `Timeout` is 1-300
//! seconds; a future call needs all of `Date` (`YYYYMMDDhhmm`), `Maxretry`,
//! `Retrytime` and `ident`, and is answered OK without leg ids (no leg
//! exists until it is dialled). The page names no answer fields or failure
//! words: `status` OK/FAIL, `dial1_uid`, `dial2_uid` and `reason` are the
//! stand-in's, and so are the reasons ("Authentication failed", "Missing
//! parameter NAME", "Invalid Timeout", "Invalid Date", and "No answer" for a
//! `dial1` starting with 9, so tests can play a first leg that fails).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{C2C_ORG, C2C_PASS, C2C_USER, Received};

/// What a future call must carry, all together.
const FUTURE: &[&str] = &["Date", "Maxretry", "Retrytime", "ident"];

/// Why the first leg fails, if it does.
fn failure(got: &Received) -> Option<String> {
    let p = |k: &str| got.param(k).unwrap_or_default();
    if p("user") != C2C_USER || p("pass") != C2C_PASS || p("org") != C2C_ORG {
        return Some("Authentication failed".into());
    }
    if let Some(k) = ["dial1", "dial2"].into_iter().find(|k| p(k).is_empty()) {
        return Some(format!("Missing parameter {k}"));
    }
    let timeout = p("Timeout");
    if !timeout.is_empty() && !timeout.parse::<u16>().is_ok_and(|t| (1..=300).contains(&t)) {
        return Some("Invalid Timeout".into());
    }
    if FUTURE.iter().any(|k| !p(k).is_empty()) {
        if let Some(k) = FUTURE.iter().find(|k| p(k).is_empty()) {
            return Some(format!("Missing parameter {k}"));
        }
        let date = p("Date");
        if date.len() != 12 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Some("Invalid Date".into());
        }
        return None;
    }
    p("dial1").starts_with('9').then(|| "No answer".into())
}

pub(super) fn dialup(got: &Received, mut id: impl FnMut() -> u64) -> Response {
    let p = |k: &str| got.param(k).unwrap_or_default();
    let failure = failure(got);
    if p("Response") != "yes" {
        return (StatusCode::OK, "").into_response();
    }
    let future = !p("Date").is_empty();
    let uids =
        (p("showUID") == "yes" && failure.is_none() && !future).then(|| (format!("{}.1", id()), format!("{}.2", id())));
    let failure = failure.as_deref();
    let format = p("RFormat");
    match format.as_str() {
        "json" => {
            let body = match (failure, &uids) {
                (Some(reason), _) => serde_json::json!({"status": "FAIL", "reason": reason}),
                (None, Some((a, b))) => {
                    serde_json::json!({"status": "OK", "dial1_uid": a, "dial2_uid": b})
                }
                (None, None) => serde_json::json!({"status": "OK"}),
            };
            axum::Json(body).into_response()
        }
        "xml" => {
            let body = match (failure, &uids) {
                (Some(reason), _) => {
                    format!("<response><status>FAIL</status><reason>{reason}</reason></response>")
                }
                (None, Some((a, b))) => format!(
                    "<response><status>OK</status><dial1_uid>{a}</dial1_uid><dial2_uid>{b}</dial2_uid></response>"
                ),
                (None, None) => "<response><status>OK</status></response>".to_string(),
            };
            ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
        }
        _ => {
            let line = match (failure, &uids) {
                (Some(reason), _) => format!("FAIL {reason}"),
                (None, Some((a, b))) => format!("OK {a} {b}"),
                (None, None) => "OK".to_string(),
            };
            let (ct, body) = if format == "html" {
                ("text/html", format!("<html><body>{line}</body></html>"))
            } else {
                ("text/plain", line)
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
    }
}
