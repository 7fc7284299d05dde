//! `GET|POST /v1/actions/{action}` and `GET|POST /v1/dial` (the same as
//! `/v1/actions/dial`): one request for one action of one branch.
//!
//! `POST` takes JSON; `GET` takes the same fields as query parameters, for
//! software that can only open a URL (and often does not encode `+`: see
//! [`restore_plus`]). `HEAD` never runs an action: link checkers and
//! `curl -I` must not ring phones.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{MAX_BODY, credential, refused, respond, wants_html};
use crate::call::Gateway;
use crate::call::input::ActionInput;
use crate::number::restore_plus;
use crate::outcome::Refusal;
pub(super) use crate::settings::Scalar;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/dial", get(dial_get).post(dial_post).head(head).fallback(wrong_method))
        .route("/v1/actions/{action}", get(action_get).post(action_post).head(head).fallback(wrong_method))
}

/// `POST` body. An unknown field is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionBody {
    /// The branch: its profile's file name without `.yaml`.
    branch: Option<String>,
    /// The extension (for a dial, the one that rings first); also `ext` or `from`.
    #[serde(alias = "ext", alias = "from")]
    extension: Option<String>,
    /// The number (for a dial, the one to connect to; for transfer/divert, the target); also `to`.
    #[serde(alias = "to")]
    number: Option<String>,
    /// Caller id to present, where the PBX supports it.
    caller_id: Option<String>,
    /// Your own id for this request, passed to the PBX where it supports one.
    external_id: Option<String>,
    /// The PBX's id of the call an action applies to (hangup, transfer…).
    call_id: Option<String>,
    /// DTMF digits for `dtmf`.
    digits: Option<String>,
    /// Options the action declares, by name.
    #[serde(default)]
    #[schema(schema_with = super::openapi::scalar_map)]
    options: BTreeMap<String, Scalar>,
    /// Render and answer what would be sent, sending nothing.
    #[serde(default)]
    #[schema(schema_with = super::openapi::scalar)]
    dry_run: Option<Scalar>,
}

/// The query of the `GET` forms, for the API description only: the
/// handler reads the query itself ([`query_input`]), refusing a name given
/// twice and any name not listed here.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct QueryDoc {
    /// The branch: its profile's file name without `.yaml`.
    branch: String,
    /// The extension; also `extension` or `from`.
    ext: Option<String>,
    /// The number; also `to`. A leading space before a digit (an unencoded `+`) is read as `+`.
    number: Option<String>,
    /// Caller id to present, where the PBX supports it.
    caller_id: Option<String>,
    /// Your own id for this request.
    external_id: Option<String>,
    /// The PBX's id of the call an action applies to.
    call_id: Option<String>,
    /// DTMF digits for `dtmf`.
    digits: Option<String>,
    /// `true`/`1`/`yes` or no value: a dry run; `false`/`0`/`no`: a real request.
    dry_run: Option<String>,
    /// The API key, for software that cannot send a header.
    key: Option<String>,
    /// An option the action declares, as `opt.NAME=VALUE` (any number of them).
    #[param(rename = "opt.NAME")]
    opt: Option<String>,
}

/// `dry_run`: absent, `0`, `false`, `no` → a real request; present with no
/// value, empty, `1`, `true`, `yes` → a dry run; anything else is refused.
pub(super) fn dry_run_flag(value: Option<&str>) -> Result<bool, Refusal> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("" | "1" | "true" | "yes") => Ok(true),
        Some(other) => Err(Refusal::InvalidRequest(format!(
            "dry_run={other:?}: use true or false (or 1/0, yes/no; no value means true)"
        ))),
    }
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Option<Vec<u8>> {
    headers.get("idempotency-key").map(|v| v.as_bytes().to_vec())
}

/// Dial: ring an extension, then connect it to a number.
#[utoipa::path(
    post,
    path = "/v1/dial",
    tag = "actions",
    request_body = ActionBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key again within 24 h gets the first answer")),
    responses(super::openapi::Answers)
)]
pub(super) async fn dial_post(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Response {
    post(gw, "dial".into(), headers, uri, body).await
}

/// Run one action of a branch's profile (`dial`, `hangup`, `transfer`, …).
#[utoipa::path(
    post,
    path = "/v1/actions/{action}",
    tag = "actions",
    request_body = ActionBody,
    params(
        ("action" = String, Path, description = "An action the branch's profile has"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key again within 24 h gets the first answer"),
    ),
    responses(super::openapi::Answers)
)]
pub(super) async fn action_post(
    State(gw): State<Arc<Gateway>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Response {
    post(gw, action, headers, uri, body).await
}

/// Dial, for software that can only open a URL (an IQX dialling URL).
/// A browser asking for HTML is redirected (303) to a client-side URI.
#[utoipa::path(get, path = "/v1/dial", tag = "actions", params(QueryDoc), responses(super::openapi::Answers))]
pub(super) async fn dial_get(State(gw): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    get_(gw, "dial".into(), headers, uri).await
}

/// Run one action of a branch's profile, from a URL.
#[utoipa::path(
    get,
    path = "/v1/actions/{action}",
    tag = "actions",
    params(("action" = String, Path, description = "An action the branch's profile has"), QueryDoc),
    responses(super::openapi::Answers)
)]
pub(super) async fn action_get(
    State(gw): State<Arc<Gateway>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    get_(gw, action, headers, uri).await
}

/// A `POST` of `action`: the body read, then the gateway's answer.
pub(super) async fn post(
    gw: Arc<Gateway>,
    action: String,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return refused(Refusal::InvalidRequest(json_problem(&rejection))),
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let query_value = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let dry_run = match dry_run_flag(body.dry_run.as_ref().map(|s| s.0.as_str()).or(query_value("dry_run"))) {
        Ok(d) => d,
        Err(r) => return refused(r),
    };
    let input = ActionInput {
        branch: body.branch,
        action: Some(action),
        extension: body.extension,
        number: body.number,
        caller_id: body.caller_id,
        external_id: body.external_id,
        call_id: body.call_id,
        digits: body.digits,
        options: body.options.into_iter().map(|(k, v)| (k, v.0)).collect(),
        idempotency_key: idempotency_key(&headers),
        dry_run,
    };
    let credential = credential(&headers, query_value("key").map(str::to_string));
    respond(gw.run(credential, input).await, false)
}

async fn get_(gw: Arc<Gateway>, action: String, headers: HeaderMap, uri: Uri) -> Response {
    let (input, key) = match query_input(uri.query().unwrap_or(""), action) {
        Ok(v) => v,
        Err(r) => return refused(r),
    };
    let credential = credential(&headers, key);
    let input = ActionInput { idempotency_key: idempotency_key(&headers), ..input };
    respond(gw.run(credential, input).await, wants_html(&headers))
}

/// Reads a query string into an input and the `key=` it carried. Each name
/// may appear once: a second `number=` is refused rather than guessed at.
/// `token=` is ignored (Dolibarr adds its own); any other unknown name is
/// refused.
fn query_input(query: &str, action: String) -> Result<(ActionInput, Option<String>), Refusal> {
    let mut input = ActionInput { action: Some(action), ..Default::default() };
    let mut key = None;
    let mut dry_run = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "branch" => &mut input.branch,
            "extension" | "ext" | "from" => &mut input.extension,
            "number" | "to" => &mut input.number,
            "caller_id" => &mut input.caller_id,
            "external_id" => &mut input.external_id,
            "call_id" => &mut input.call_id,
            "digits" => &mut input.digits,
            "key" => &mut key,
            "dry_run" => &mut dry_run,
            // Dolibarr's click-to-dial adds its page's anti-CSRF token to
            // the URL it opens: not ours to read, and never a key.
            "token" => continue,
            other => match other.strip_prefix("opt.") {
                Some(opt) if !opt.is_empty() => {
                    if input.options.insert(opt.to_string(), value.into_owned()).is_some() {
                        return Err(Refusal::InvalidRequest(format!("`{other}` is given twice")));
                    }
                    continue;
                }
                _ => return Err(Refusal::InvalidRequest(format!("unknown parameter `{other}`"))),
            },
        };
        if slot.is_some() {
            return Err(Refusal::InvalidRequest(format!("`{name}` is given twice")));
        }
        *slot = Some(value.into_owned());
    }
    for s in [&mut input.extension, &mut input.number, &mut input.caller_id].into_iter().flatten() {
        *s = restore_plus(s).into_owned();
    }
    input.dry_run = dry_run_flag(dry_run.as_deref())?;
    Ok((input, key))
}

async fn head() -> Response {
    refused(Refusal::InvalidRequest("HEAD never runs an action: use GET or POST".into()))
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    refused(Refusal::WrongMethod { method: method.to_string(), path: uri.path().to_string() })
}

fn json_problem(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the request as JSON with Content-Type: application/json".into()
        }
        JsonRejection::BytesRejection(_) => {
            format!("the request body is too large (over {MAX_BODY} bytes) or could not be read")
        }
        other => other.body_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_values() {
        for (v, want) in
            [(None, Some(false)), (Some(""), Some(true)), (Some("1"), Some(true)), (Some("TRUE"), Some(true))]
        {
            assert_eq!(dry_run_flag(v).ok(), want, "{v:?}");
        }
        for (v, want) in
            [(Some("yes"), Some(true)), (Some("0"), Some(false)), (Some("no"), Some(false)), (Some("x"), None)]
        {
            assert_eq!(dry_run_flag(v).ok(), want, "{v:?}");
        }
    }

    #[test]
    fn queries_read_aliases_options_and_refuse_repeats() {
        let (input, key) = query_input("branch=b&ext=201&to=%2044&opt.at=1&key=k&dry_run", "dial".into()).unwrap();
        assert_eq!(input.extension.as_deref(), Some("201"));
        assert_eq!(input.number.as_deref(), Some("+44"), "a space before a digit was an unencoded +");
        assert_eq!(input.options.get("at").map(String::as_str), Some("1"));
        assert_eq!((key.as_deref(), input.dry_run), (Some("k"), true));
        assert!(query_input("number=1&number=2", "dial".into()).is_err());
        assert!(query_input("nmber=1", "dial".into()).is_err());
    }
}
