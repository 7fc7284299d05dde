//! A Poly (Polycom) VVX/Trio desk phone's REST API, as third-party
//! integrations and webdial's phone-vendor notes describe it (the vendor's
//! REST API reference was not read for this file):
//!
//! - `POST /api/v1/callctrl/dial` with JSON `{"data": {"Dest": N, "Line":
//!   "1", "Type": "TEL"|"SIP"}}` dials N on the line; `POST
//!   /api/v1/callctrl/endCall` with `{"data": {"Ref": R}}` ends call R (the
//!   reference the phone's call status gives).
//! - Every answer is JSON with a `Status` code: `"2000"` = done; any other
//!   code is a refusal, in an HTTP 200 too. The codes the stand-in gives
//!   ([`INVALID`] 4000, [`BUSY`] 4001, [`NO_LINE`] 4005, [`NO_CALL`] 4007)
//!   are as third parties quote the reference; not confirmed.
//! - Credentials: the phone's admin user and password ([`USER`],
//!   [`PASSWORD`]) as HTTP Basic; without them, 401. (The phone must have
//!   `apps.restapi.enabled=1`; a phone without it is not played.)
//!
//! The stand-in's own choices, so tests can play refusals: a `Dest`
//! starting with 9 is "device busy" (4001); a `Line` other than 1–4 is
//! 4005; a `Ref` starting with 9 is 4007; a body that is not the shape
//! above is 4000. One stand-in plays one phone; the phone's XML telephony
//! notifications are not pushed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Received, desk};

/// The phone's admin credentials the stand-in accepts.
pub const USER: &str = "demo-poly";
pub const PASSWORD: &str = "demo-poly-pass";

pub const INVALID: &str = "4000";
pub const BUSY: &str = "4001";
pub const NO_LINE: &str = "4005";
pub const NO_CALL: &str = "4007";

fn status(code: &str) -> Response {
    axum::Json(json!({"Status": code})).into_response()
}

pub(super) fn callctrl(got: &Received) -> Response {
    if !desk::authorized(got, USER, PASSWORD) {
        return desk::unauthorized("poly");
    }
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(Value::Null);
    let field = |k: &str| body.pointer(&format!("/data/{k}")).and_then(Value::as_str).unwrap_or_default().to_string();
    match got.path.trim_start_matches("/api/v1/callctrl/") {
        "dial" => {
            let (dest, line, kind) = (field("Dest"), field("Line"), field("Type"));
            if dest.is_empty() || !matches!(kind.as_str(), "TEL" | "SIP") {
                status(INVALID)
            } else if !matches!(line.as_str(), "1" | "2" | "3" | "4") {
                status(NO_LINE)
            } else if dest.starts_with('9') {
                status(BUSY)
            } else {
                status("2000")
            }
        }
        "endCall" => match field("Ref") {
            r if r.is_empty() => status(INVALID),
            r if r.starts_with('9') => status(NO_CALL),
            _ => status("2000"),
        },
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
