//! What the desk-phone stand-ins share: a phone's web server wants its
//! admin credentials on every request, as HTTP Basic, or as HTTP digest
//! where the phone is set to it (a test plays that with
//! [`super::Behaviour::Digest`], which challenges first; the answer to the
//! challenge is checked again here against the phone's own credentials).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::Received;

/// Whether `got` carries `user`/`password`: Basic, or a correct digest
/// answer to the stand-in's challenge.
pub(super) fn authorized(got: &Received, user: &str, password: &str) -> bool {
    let Some(auth) = got.authorization.as_deref() else { return false };
    if let Some(token) = auth.strip_prefix("Basic ") {
        let want = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        return token.trim() == want;
    }
    auth.starts_with("Digest ") && super::digest_answered(got, user, password)
}

/// A phone's 401 for missing or wrong credentials, with a Basic challenge.
pub(super) fn unauthorized(realm: &str) -> Response {
    let challenge = format!("Basic realm=\"{realm}\"");
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], "401 Unauthorized").into_response()
}

/// A phone's web page: what it answers to a key press it took.
pub(super) fn page(title: &str) -> Response {
    let body = format!("<!DOCTYPE html><html><head><title>{title}</title></head><body>OK</body></html>");
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}
