//! voiptech Click2Call `dialup.php`: `GET|POST /API/dialup.php` with `user`,
//! `pass`, `org`, `dial1`, `dial2`; it answers only with `Response=yes`, in
//! `RFormat` text|html|xml|json, with both legs' ids when `showUID=yes`.
//! `dial1` starting with 9 fails with "No answer".

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{C2C_ORG, C2C_PASS, C2C_USER, Received};

pub(super) fn dialup(got: &Received, mut id: impl FnMut() -> u64) -> Response {
    let p = |k: &str| got.param(k).unwrap_or_default();
    let failure = if p("user") != C2C_USER || p("pass") != C2C_PASS || p("org") != C2C_ORG {
        Some("Authentication failed")
    } else if p("dial1").is_empty() || p("dial2").is_empty() {
        Some("Missing parameter")
    } else if p("dial1").starts_with('9') {
        Some("No answer")
    } else {
        None
    };
    if p("Response") != "yes" {
        return (StatusCode::OK, "").into_response();
    }
    let uids = (p("showUID") == "yes" && failure.is_none()).then(|| (format!("{}.1", id()), format!("{}.2", id())));
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
