//! `GET /openapi.json`: an OpenAPI 3.1 description of the API, generated
//! from the handlers' `#[utoipa::path]` annotations and the answer types'
//! `ToSchema` derives, so it changes with the code. A handler added to a
//! router must be listed in [`Doc`]'s `paths(...)` too; `tests/it/openapi.rs`
//! fails on a route the document lacks.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ObjectBuilder, OneOfBuilder, RefOr, Schema, Type};

use super::{actions, admin, calls, events, health, metrics, pages};
use crate::call::Gateway;
use crate::outcome::ActionResult;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/openapi.json", get(openapi))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "webdial",
        description = "A web-dial gateway: one dial endpoint in front of every branch's phone system. \
                       Every action answers with one JSON shape (ActionResult), whatever the PBX said."
    ),
    paths(
        actions::dial_get,
        actions::dial_post,
        actions::action_get,
        actions::action_post,
        calls::list_calls,
        calls::read_call,
        calls::act_on_call,
        events::stream,
        events::notify_get,
        events::notify_post,
        events::notify_get_path,
        events::notify_post_path,
        health::healthz,
        admin::reload,
        admin::last_reload,
        admin::branches,
        admin::test_dial,
        pages::admin_page,
        pages::call_page,
        pages::pop_page,
        pages::webdial_js,
        pages::asset,
        pages::whoami::whoami,
        pages::pop::pop_stream,
        metrics::metrics,
        openapi,
    ),
    modifiers(&Keys),
    tags(
        (name = "actions", description = "Dial, and the other actions of a branch's profile"),
        (name = "calls", description = "The dial log: earlier dials and actions, listed or by the gateway id their answer carried"),
        (name = "events", description = "Call events: in from PBXs (authenticated by the branch's `events:`), out as server-sent events"),
        (name = "admin", description = "Needs a key with `admin: true` (or no keys configured)"),
        (name = "pages", description = "The pages webdial serves (admin, click to call, screen pop, webdial.js) and the JSON only they need"),
        (name = "operations", description = "Health, metrics, this document"),
    )
)]
struct Doc;

/// The three ways to present a key, any one of them; none is needed when
/// the gateway has no keys configured.
struct Keys;

impl utoipa::Modify for Keys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("x_api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
        components.add_security_scheme("key_query", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("key"))));
        doc.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("x_api_key", Vec::<String>::new()),
            SecurityRequirement::new("key_query", Vec::<String>::new()),
            SecurityRequirement::default(),
        ]);
    }
}

/// The answers of every action: one JSON shape, its `status` telling
/// which; the HTTP code follows the status.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(super) enum Answers {
    #[response(status = 200, description = "`accepted`, `open_uri` or `dry_run`")]
    Done(ActionResult),
    #[response(status = 303, description = "`open_uri`, to a browser asking for HTML: redirected to the URI")]
    Redirect(ActionResult),
    #[response(status = 400, description = "`invalid_request`: nothing sent")]
    Invalid(ActionResult),
    #[response(status = 401, description = "`unauthorized`: no API key, or a wrong one; nothing sent")]
    Unauthorized(ActionResult),
    #[response(status = 403, description = "`forbidden`: the key or the number rules do not allow it; nothing sent")]
    Forbidden(ActionResult),
    #[response(status = 404, description = "`unknown_branch`, `unknown_action` or `unknown_call`: nothing sent")]
    Unknown(ActionResult),
    #[response(status = 422, description = "`conflict`: an Idempotency-Key reused for another request; nothing sent")]
    Conflict(ActionResult),
    #[response(status = 429, description = "`rate_limited`: nothing sent")]
    RateLimited(ActionResult),
    #[response(status = 502, description = "`rejected`, `bad_response` or `unreachable`")]
    Pbx(ActionResult),
    #[response(status = 504, description = "`timeout`: no answer within the profile's timeout")]
    Timeout(ActionResult),
}

/// A value written as text, a number or true/false (`Scalar`).
pub(super) fn scalar() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .description(Some("text, a number or true/false, read as text"))
        .into()
}

/// `options`: names to scalar values.
pub(super) fn scalar_map() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).additional_properties(Some(scalar())).into()
}

/// The whole document, as JSON.
pub fn document() -> String {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| Doc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))).clone()
}

/// This document: OpenAPI 3.1, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object))
)]
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
