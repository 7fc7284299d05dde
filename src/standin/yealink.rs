//! A Yealink desk phone's Action URI (remote control), as third-party
//! integrations and webdial's phone-vendor notes describe it (no Yealink
//! document was read for this file):
//!
//! - `GET /servlet?key=number=N[&outgoing_uri=URI]` dials N (from the
//!   account URI); `GET /servlet?key=CALLEND` ends the call; other keys
//!   (`CANCEL`, `OK`, `F_HOLD`, …, several joined by `;`) press keys. All
//!   answer 200; the body means nothing.
//! - Credentials: the phone's web admin user and password ([`USER`],
//!   [`PASSWORD`]) as HTTP Basic; without them, 401.
//! - The phone takes Action URIs only from the addresses in its
//!   `features.action_uri_limit_ip` (blank: none; `any`: all). From any
//!   other address it refuses: the stand-in answers 403 (the code is the
//!   stand-in's choice; the notes say only that the phone refuses) with
//!   the words a test can look for. [`RemoteControl::limit_to`] sets the
//!   list (default `any`). The on-screen "Allow remote control?" prompt
//!   (`features.show_action_uri_option`) is not played: the stand-in acts
//!   as if it was accepted.
//!
//! One stand-in plays one phone. Events (Action URLs) are the phone's to
//! send and are not pushed here.

use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Received, desk};

/// The phone's web admin credentials the stand-in accepts.
pub const USER: &str = "demo-yealink";
pub const PASSWORD: &str = "demo-yealink-pass";

/// The phone's `features.action_uri_limit_ip`.
#[derive(Debug, Default)]
pub struct RemoteControl(Mutex<Option<String>>);

impl RemoteControl {
    /// Sets the list as the phone's setting reads it: comma-separated
    /// addresses, `any`, or empty (none).
    pub fn limit_to(&self, list: &str) {
        if let Ok(mut l) = self.0.lock() {
            *l = Some(list.to_string());
        }
    }

    fn allows(&self, peer: std::net::IpAddr) -> bool {
        let list = self.0.lock().ok().and_then(|l| l.clone()).unwrap_or_else(|| "any".into());
        list.split(',').map(str::trim).any(|a| a.eq_ignore_ascii_case("any") || a == peer.to_string())
    }
}

pub(super) fn servlet(remote: &RemoteControl, got: &Received) -> Response {
    if got.method != "GET" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    if !desk::authorized(got, USER, PASSWORD) {
        return desk::unauthorized("yealink");
    }
    if !remote.allows(got.peer.ip()) {
        let words = format!("Action URI is not allowed from {}: add it to features.action_uri_limit_ip", got.peer.ip());
        return (StatusCode::FORBIDDEN, words).into_response();
    }
    (StatusCode::OK, "").into_response()
}
