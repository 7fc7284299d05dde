//! CORS: pages on the origins `cors: {origins: [...]}` lists may call the
//! API from a browser (a CRM's click-to-call button, an intranet page).
//!
//! Each listed origin is echoed exactly, never `*`, and credentials
//! (cookies) are never allowed: the API's credential is a key the page
//! sends itself (`Authorization`, `X-Api-Key`). Preflights for `POST` with
//! JSON, those headers and `Idempotency-Key` are answered. A request from
//! any other origin gets no CORS header at all (the browser then refuses to
//! hand the answer to the page); with no origins listed there is no CORS.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::settings::Cors;

/// How long a browser may reuse a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// `router` with CORS for `cors`'s origins (unchanged when none are listed).
pub(super) fn layer(router: Router, cors: &Cors) -> Router {
    let origins: Vec<HeaderValue> = cors.origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return router;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.clone()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(MAX_AGE);
    router.layer(layer).layer(axum::middleware::from_fn_with_state(Arc::<[HeaderValue]>::from(origins), only_listed))
}

/// Removes every CORS header from the answer to an unlisted origin:
/// nothing there suggests to its page what the API would allow.
async fn only_listed(State(origins): State<Arc<[HeaderValue]>>, request: Request, next: Next) -> Response {
    let listed = request.headers().get(header::ORIGIN).is_none_or(|o| origins.contains(o));
    let mut response = next.run(request).await;
    if !listed {
        let headers = response.headers_mut();
        let cors: Vec<HeaderName> =
            headers.keys().filter(|k| k.as_str().starts_with("access-control-")).cloned().collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}
