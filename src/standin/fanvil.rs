//! A Fanvil desk phone's Active URI, as webdial's phone-vendor notes
//! describe it (from a Fanvil OEM's manual and OpenVox's HTTP API guide;
//! no Fanvil document itself was read):
//!
//! - `GET /cgi-bin/ConfigManApp.com?key=K1;K2;…` presses the keys in
//!   order: `SPEAKER;NUMBER;ENTER` dials NUMBER hands-free, `RELEASE`
//!   ends the call; other keys: `OK`, `ENTER`, `F_TRANSFER`, `F_HOLD`,
//!   `0`–`9`, `*`, `POUND`. The phone answers 200.
//! - Credentials: the phone's web admin user and password ([`USER`],
//!   [`PASSWORD`]) as HTTP Basic; without them, 401.
//!
//! The stand-in's own choices: a request without `key`, or with an empty
//! key between `;`, answers 400 (the notes do not say what the phone
//! does). Not played: the "Active URI Limit IP" allowlist (a phone
//! refuses other addresses), and `POST /xmlService`. One stand-in plays
//! one phone; events are the phone's to send.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Received, desk};

/// The phone's web admin credentials the stand-in accepts.
pub const USER: &str = "demo-fanvil";
pub const PASSWORD: &str = "demo-fanvil-pass";

pub(super) fn config_man_app(got: &Received) -> Response {
    if got.method != "GET" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if !desk::authorized(got, USER, PASSWORD) {
        return desk::unauthorized("fanvil");
    }
    match got.param("key") {
        Some(keys) if !keys.is_empty() && keys.split(';').all(|k| !k.is_empty()) => {
            (StatusCode::OK, "").into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "bad key").into_response(),
    }
}
