//! An IQX-style PBX API (`PbxAPI.aspx?func=make_call` with `from`/`to` in
//! the query or the form): `OK`, or HTTP 400 when something is missing.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Received;

pub(super) fn make_call(got: &Received) -> Response {
    match (got.param("func").as_deref(), got.param("from"), got.param("to")) {
        (Some("make_call"), Some(from), Some(to)) if !from.is_empty() && !to.is_empty() => {
            ([(header::CONTENT_TYPE, "text/plain")], "OK").into_response()
        }
        _ => (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain")], "ERROR missing func, from or to")
            .into_response(),
    }
}
