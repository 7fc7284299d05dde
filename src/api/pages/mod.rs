//! The pages webdial serves itself: `/` (admin), `/call` (click to call),
//! `/pop` (screen pop) and `/webdial.js` (for intranet pages on other
//! origins), plus their scripts and style under `/assets/`.
//!
//! Everything is plain HTML, CSS and JavaScript compiled into the binary
//! (`include_str!`): no build step, no framework, nothing loaded from
//! elsewhere. The HTML holds no request value at all — each page's script
//! reads its query and the API's answers and places every value with
//! `textContent` — so a hostile branch name, number or caller id from a
//! PBX cannot become markup. Pages are served with a strict
//! `Content-Security-Policy` (scripts, styles and connections to this
//! origin only; no framing), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` (the event streams carry `?key=`) and
//! `Cache-Control: no-cache` (a new binary's pages are used at once).
//!
//! The JSON the pages need lives with its area: `GET /v1/whoami` and the
//! pop stream `GET /v1/pop` here, `/v1/admin/branches` and
//! `/v1/admin/dial` in `admin`.

pub(super) mod pop;
pub(super) mod whoami;

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{only_get, refused};
use crate::call::Gateway;
use crate::outcome::Refusal;

/// What a page may load and where it may connect: this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                       img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files under `/assets/`, by name, with their content type.
const ASSETS: &[(&str, &str, &str)] = &[
    ("pages.css", CSS, include_str!("assets/pages.css")),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
    ("common.js", JS, include_str!("assets/common.js")),
    ("admin.js", JS, include_str!("assets/admin.js")),
    ("call.js", JS, include_str!("assets/call.js")),
    ("pop.js", JS, include_str!("assets/pop.js")),
];

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/", get(admin_page).fallback(only_get))
        .route("/call", get(call_page).fallback(only_get))
        .route("/pop", get(pop_page).fallback(only_get))
        .route("/webdial.js", get(webdial_js).fallback(only_get))
        .route("/assets/{file}", get(asset).fallback(only_get))
        .merge(whoami::router())
        .merge(pop::router())
}

/// A page: HTML with the pages' security headers.
fn page(body: &'static str) -> Response {
    let mut response = served(HTML, body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Any embedded file: its type, never sniffed, never cached stale, no referrer.
fn served(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

/// The admin page: branches and their load state, a test form per branch,
/// recent dials, live events, the last reload.
#[utoipa::path(get, path = "/", tag = "pages", security(()),
    responses((status = 200, description = "The admin page", content_type = "text/html", body = String)))]
pub(super) async fn admin_page() -> Response {
    page(include_str!("assets/admin.html"))
}

/// Click to call: `?branch=B&ext=E&number=N` (`number` may be a `tel:` URI),
/// one button, then the call's progress live.
#[utoipa::path(get, path = "/call", tag = "pages", security(()),
    params(
        ("branch" = Option<String>, Query, description = "The branch to dial through"),
        ("ext" = Option<String>, Query, description = "The extension that rings first"),
        ("number" = Option<String>, Query, description = "The number to call; a `tel:` URI is read as its number"),
    ),
    responses((status = 200, description = "The click-to-call page", content_type = "text/html", body = String)))]
pub(super) async fn call_page() -> Response {
    page(include_str!("assets/call.html"))
}

/// Screen pop: `?extension=E`, each incoming call to E as it rings, with
/// the link `pop: {link}` in `webdial.yaml` builds.
#[utoipa::path(get, path = "/pop", tag = "pages", security(()),
    params(("extension" = Option<String>, Query, description = "The extension whose incoming calls are shown")),
    responses((status = 200, description = "The screen-pop page", content_type = "text/html", body = String)))]
pub(super) async fn pop_page() -> Response {
    page(include_str!("assets/pop.html"))
}

/// The script intranet pages include to make their `tel:` links dial
/// through this gateway. It runs on other origins (so it may be loaded from
/// anywhere) and calls only this gateway.
#[utoipa::path(get, path = "/webdial.js", tag = "pages", security(()),
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String)))]
pub(super) async fn webdial_js() -> Response {
    let mut response = served(JS, include_str!("assets/webdial.js"));
    response
        .headers_mut()
        .insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin"));
    response
}

/// The pages' scripts and style.
#[utoipa::path(get, path = "/assets/{file}", tag = "pages", security(()),
    params(("file" = String, Path, description = "`pages.css`, `common.js`, `admin.js`, `call.js` or `pop.js`")),
    responses(
        (status = 200, description = "The file", content_type = "text/javascript", body = String),
        (status = 404, description = "No such file", body = crate::outcome::ActionResult),
    ))]
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => served(content_type, body),
        None => refused(Refusal::NoSuchPath { method: "GET".into(), path: format!("/assets/{file}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/assets/NAME` a page or script names is served, so a renamed
    /// file cannot leave a page without its script or style.
    #[test]
    fn every_asset_a_page_names_is_served() {
        let pages =
            [include_str!("assets/admin.html"), include_str!("assets/call.html"), include_str!("assets/pop.html")];
        let named = regex::Regex::new(r#""/assets/([^"]+)""#).unwrap();
        let mut seen = 0;
        for page in pages {
            for c in named.captures_iter(page) {
                assert!(ASSETS.iter().any(|(name, _, _)| *name == &c[1]), "{} is not served", &c[1]);
                seen += 1;
            }
        }
        assert!(seen >= 9, "each page names its style, icon and scripts");
    }
}
