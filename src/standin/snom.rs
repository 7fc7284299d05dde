//! A Snom desk phone's HTTP command interface, as third-party integrations
//! of it describe it (webdial's phone-vendor notes; no Snom document was
//! read for this file):
//!
//! - `GET /command.htm?number=N[&outgoing_uri=U]` dials N (from the
//!   identity U): the phone answers **302** to `/index.htm`, its web
//!   page, with an empty body. That redirect is the success answer.
//! - `GET /command.htm?key=K` presses a key (`CANCEL` ends the call,
//!   `ENTER`, `ONHOOK`, `TRANSFER`, `p1`…); `GET /command.htm?key_dtmf=D`
//!   sends the digits D in-band on the active call. Both answer 200 with
//!   a page.
//! - Every request wants the phone's web admin credentials ([`USER`],
//!   [`PASSWORD`]) as HTTP Basic, or as digest when the phone is set to
//!   the digest scheme (a test sets [`super::Behaviour::Digest`], which
//!   challenges first); without them, 401 with a Basic challenge.
//!
//! The stand-in's own choices: a request with none of `number`, `key`,
//! `key_dtmf` answers the phone's page (200), as the phone shows its page
//! for an unknown command; an empty `number` or an unknown key is the same
//! page. One stand-in plays one phone. Events (Action URLs) are the
//! phone's to send and are not pushed here.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Received, desk};

/// The phone's web admin credentials the stand-in accepts.
pub const USER: &str = "demo-snom";
pub const PASSWORD: &str = "demo-snom-pass";

pub(super) fn command(got: &Received) -> Response {
    if got.method != "GET" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if !desk::authorized(got, USER, PASSWORD) {
        return desk::unauthorized("snom");
    }
    match got.param("number") {
        Some(n) if !n.is_empty() => (StatusCode::FOUND, [(header::LOCATION, "/index.htm")], "").into_response(),
        _ => desk::page("snom"),
    }
}
