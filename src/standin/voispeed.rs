//! VOIspeed SERI user services, as its integration guide describes them:
//! `GET /PBX/seri_endpoint.php?service=…&token=T&ext=E…`, answered with
//! `<result><outcome>0|1</outcome>…</result>` (XML served as text/html, as
//! a PHP page does). `call_request` gives a `request_id`; `call_action` and
//! `set_user_mode` act on one extension. An extension starting with 9 has
//! "connection not found", so tests can play a refusal.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Received, SERI_TOKEN};

/// A PHP page that does not set its content type: XML served as text/html.
fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n{body}"),
    )
        .into_response()
}

pub(super) fn seri(got: &Received, mut id: impl FnMut() -> u64) -> Response {
    let fail = |e: &str| xml(format!("<result>\n<outcome>1</outcome>\n<error>{e}</error></result>"));
    if got.method != "GET" {
        return fail("service requests are HTTP GETs");
    }
    let service = got.param("service").unwrap_or_default();
    if !matches!(service.as_str(), "call_request" | "call_action" | "set_user_mode") {
        return fail("unknown service");
    }
    if got.param("token").as_deref() != Some(SERI_TOKEN) {
        return fail("invalid token");
    }
    if service != "call_request" {
        // call_action (call_id + action) and set_user_mode (mode) act on one extension.
        let needed: &[&str] = if service == "call_action" { &["ext", "call_id", "action"] } else { &["ext", "mode"] };
        if needed.iter().any(|k| got.param(k).is_none_or(|v| v.is_empty())) {
            return fail("missing parameter");
        }
        return xml("<result>\n<outcome>0</outcome>\n</result>".to_string());
    }
    let (Some(ext), Some(number)) = (got.param("ext"), got.param("number")) else {
        return fail("missing parameter");
    };
    if ext.is_empty() || number.is_empty() {
        return fail("missing parameter");
    }
    if ext.starts_with('9') {
        return fail("connection not found");
    }
    xml(format!("<result>\n<outcome>0</outcome>\n<request_id>{}</request_id>\n</result>", id()))
}
