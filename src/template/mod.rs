//! Turns a branch's request template and one dial's values into the exact
//! request that will be sent. Pure: no I/O, no clock except `now`.
//!
//! Two template forms compile to one [`RequestTemplate`]: the IQX one-liner
//! ([`crate::syntax::iqx`]) and the full form (minijinja templates per field).
//! A hook's request is a [`HookTemplate`]: an Integra line or the same full
//! form, seeing the event instead of a caller's request values.
//!
//! The encoding contract: every value inserted into a URL is percent-encoded
//! as a URL component (`+` → `%2B`, `&` → `%26`, `/` → `%2F`), so a value can
//! never add a parameter, a path segment or a fragment. The scheme, host and
//! port (everything before the first `/`, `?` or `#` after `://`) are the
//! admin's: that part may only use profile `vars`, never a request value,
//! and is inserted as written. The one exception is a desk phone's
//! `{{ phones[extension] }}` ([`phones`]): the extension only picks one of
//! the hosts in the admin's map, and one the map lacks is refused. `{{ x | safe }}` opts a trusted value out of
//! encoding. Form and JSON bodies are encoded by their serializers, headers
//! are checked for CR/LF. minijinja's own auto-escaping (picked from the
//! template name's extension) is replaced by this contract.

use std::collections::{BTreeMap, BTreeSet};

use percent_encoding::{AsciiSet, utf8_percent_encode};
use serde::Serialize;

use crate::syntax::iqx::{self, Method, Piece};

mod context;
mod filters;
mod hook;
mod jinja;
mod phones;
mod signing;
mod urls;

use crate::number::NumberRules;
use crate::secrets;
pub use context::{Context, REQUEST_VALUES, RESERVED};
pub use filters::{FROM_JSON_DEPTH, json_depth_exceeds};
pub use hook::{HookTemplate, sample_event};
pub use jinja::{Templates, new_env, template_error};
pub use signing::{JWT_LIFETIME_SECS, ed25519_sign, ed25519_verify, jwt_rs256_claims};
use urls::{COMPONENT, FixedBase, URI_VALUE, build_url};
pub use urls::{encode_component, split_url};

/// What a rendered action is.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Http(Request),
    /// A URI for the caller's own softphone: nothing is sent.
    Uri(String),
}

/// The exact request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Credentials for an HTTP digest challenge (user, password).
    pub digest: Option<(String, String)>,
    /// How the `Authorization` header is shown to people (see [`Request::shown`]).
    pub shown_auth: Option<String>,
}

/// How a request is shown to people (dry run, `render`): secrets as `***`,
/// credentials in `Authorization` always masked.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ShownRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

impl Request {
    /// Secrets are masked wherever they appear. An `Authorization` header is
    /// shown as its scheme plus what is not secret in it: a Bearer token that
    /// came from `${ENV}` shows as `***`, a literal one as written (so an
    /// admin sees a template that did not render); Basic credentials show
    /// the user and never the password.
    pub fn shown(&self) -> ShownRequest {
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    match &self.shown_auth {
                        Some(shown) => shown.clone(),
                        None => match v.split_once(' ') {
                            Some((scheme, _)) => format!("{scheme} {}", secrets::MASK),
                            None => secrets::MASK.to_string(),
                        },
                    }
                } else {
                    secrets::redact(v).into_owned()
                };
                (k.clone(), v)
            })
            .collect();
        ShownRequest {
            method: self.method.as_str(),
            url: secrets::redact(self.url.as_str()).into_owned(),
            headers,
            body: self.body.as_deref().map(|b| secrets::redact(b).into_owned()),
        }
    }
}

/// Why rendering failed for one dial (the template was fine at load).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// The profile field whose template failed (e.g. `dial.form.to`), if one did.
    pub field: Option<String>,
    pub message: String,
}

impl RenderError {
    pub(crate) fn new(message: String) -> Self {
        RenderError { field: None, message }
    }
}

/// A problem found while compiling, with the profile field it belongs to
/// (e.g. `dial.url`), so the loader can point at it in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub field: String,
    pub message: String,
    /// The variable a template uses that nothing defines, so the loader can
    /// tell the branch (not only the preset that wrote the template) to set it.
    pub missing: Option<String>,
}

/// Authentication of the full form, as written: every value is a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// HTTP digest: answered by `dispatch` when the PBX challenges.
    Digest {
        user: String,
        password: String,
    },
}

/// The full form of an action, as read from a profile.
#[derive(Debug, Clone, Default)]
pub struct HttpSpec {
    pub method: Option<Method>,
    pub url: String,
    pub form: Vec<(String, String)>,
    pub json: Option<serde_json::Value>,
    pub headers: Vec<(String, String)>,
    pub auth: Option<Auth>,
}

/// A compiled action template: renders without parsing anything again.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Iqx(iqx::Line, Option<FixedBase>),
    Jinja(Box<jinja::Jinja>),
}

impl RequestTemplate {
    /// Compiles the full form into `env`. `field` prefixes error fields (e.g. `dial`).
    pub fn compile(
        env: &mut Templates,
        field: &str,
        spec: HttpSpec,
        vars: &BTreeMap<String, serde_json::Value>,
        number: &NumberRules,
    ) -> Result<Self, Vec<CompileError>> {
        jinja::compile(env, field, spec, vars, number, jinja::Scope::Action)
            .map(|j| RequestTemplate { kind: Kind::Jinja(Box::new(j)) })
    }

    /// From an IQX line (already parsed).
    pub fn iqx(line: iqx::Line) -> Self {
        let base = match &line {
            iqx::Line::Http { url, .. } => match url.first() {
                Some(Piece::Lit(first)) => FixedBase::new(split_url(first).0),
                _ => None,
            },
            iqx::Line::Uri(_) => None,
        };
        RequestTemplate { kind: Kind::Iqx(line, base) }
    }

    /// The names of the templates it renders with in the shared
    /// environment (none for an IQX line, which renders without one).
    pub fn template_names(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Iqx(..) => Vec::new(),
            Kind::Jinja(j) => j.template_names(),
        }
    }

    /// An IQX one-liner (as opposed to the full form).
    pub fn is_iqx(&self) -> bool {
        matches!(self.kind, Kind::Iqx(..))
    }

    /// The request values ([`REQUEST_VALUES`]) this template reads: what an
    /// action needs from its caller.
    pub fn uses(&self) -> BTreeSet<&'static str> {
        match &self.kind {
            Kind::Iqx(line, _) => {
                let pieces: Vec<&Piece> = match line {
                    iqx::Line::Http { url, post, .. } => url.iter().chain(post.iter().flat_map(|(_, v)| v)).collect(),
                    iqx::Line::Uri(pieces) => pieces.iter().collect(),
                };
                pieces
                    .into_iter()
                    .filter_map(|p| match p {
                        Piece::Extension => Some("extension"),
                        Piece::Number => Some("number"),
                        Piece::Lit(_) => None,
                    })
                    .collect()
            }
            Kind::Jinja(j) => j.uses.clone(),
        }
    }

    /// The `session.NAME`s this template reads, by NAME: each must be saved
    /// by a login step (checked by `profile`, which knows the steps).
    pub fn session_uses(&self) -> BTreeSet<String> {
        match &self.kind {
            Kind::Iqx(..) => BTreeSet::new(),
            Kind::Jinja(j) => j.session.clone(),
        }
    }

    /// Renders one request. Values must already be validated (see [`crate::number`]).
    pub fn render(&self, env: &Templates, v: &Context) -> Result<Rendered, RenderError> {
        match &self.kind {
            Kind::Iqx(line, base) => render_iqx(line, base.as_ref(), v),
            Kind::Jinja(j) => j.render_any(env, v),
        }
    }
}

fn render_iqx(line: &iqx::Line, base: Option<&FixedBase>, v: &Context) -> Result<Rendered, RenderError> {
    let fill = |pieces: &[Piece], set: Option<&'static AsciiSet>| fill_pieces(pieces, set, v);
    match line {
        iqx::Line::Uri(pieces) => Ok(Rendered::Uri(fill(pieces, Some(URI_VALUE)))),
        iqx::Line::Http { method, url, post } => {
            let url = build_url(base, &fill(url, Some(COMPONENT)))?;
            let (headers, body) = if *method == Method::Get {
                (Vec::new(), None)
            } else {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (name, value) in post {
                    form.append_pair(name, &fill(value, None));
                }
                (vec![form_content_type()], Some(form.finish()))
            };
            Ok(Rendered::Http(Request { method: *method, url, headers, body, digest: None, shown_auth: None }))
        }
    }
}

fn fill_pieces(pieces: &[Piece], set: Option<&'static AsciiSet>, v: &Context) -> String {
    let mut out = String::new();
    for p in pieces {
        let value = match p {
            Piece::Lit(s) => {
                out.push_str(s);
                continue;
            }
            Piece::Extension => v.get("extension").unwrap_or(""),
            Piece::Number => v.get("number").unwrap_or(""),
        };
        match set {
            Some(set) => out.extend(utf8_percent_encode(value, set)),
            None => out.push_str(value),
        }
    }
    out
}

pub(crate) fn form_content_type() -> (String, String) {
    ("content-type".into(), "application/x-www-form-urlencoded".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn values(ext: &str, number: &str) -> Context {
        Context::new("b").with("extension", ext).with("number", number).with("raw_number", number)
    }

    fn jinja(url: &str) -> Result<(RequestTemplate, Templates), Vec<CompileError>> {
        let mut env = new_env();
        let vars = BTreeMap::from([
            ("host".to_string(), serde_json::json!("pbx.example:8080")),
            ("token".into(), serde_json::json!("a&b")),
        ]);
        RequestTemplate::compile(
            &mut env,
            "dial",
            HttpSpec { url: url.into(), ..Default::default() },
            &vars,
            &NumberRules::default(),
        )
        .map(|t| (t, env))
    }

    fn url_of(r: Rendered) -> String {
        match r {
            Rendered::Http(req) => req.url.to_string(),
            Rendered::Uri(u) => u,
        }
    }

    #[test]
    fn url_values_are_encoded_for_their_place() {
        let (t, env) = jinja("http://{{ host }}/call/{{ extension }}?to={{ number }}&t={{ token }}").unwrap();
        let got = url_of(t.render(&env, &values("2/01", "+44 20&x=1#f")).unwrap());
        assert_eq!(got, "http://pbx.example:8080/call/2%2F01?to=%2B44%2020%26x%3D1%23f&t=a%26b");
    }

    #[test]
    fn a_target_from_vars_only_is_parsed_once_at_load() {
        let (t, _) = jinja("http://{{ host }}/call/{{ extension }}").unwrap();
        assert!(
            matches!(&t.kind, Kind::Jinja(j) if j.fixed_base.as_ref().is_some_and(|b| b.prefix == "http://pbx.example:8080"))
        );
    }

    #[test]
    fn a_file_extension_in_the_url_does_not_pick_html_escaping() {
        let mut env = new_env();
        let spec = HttpSpec {
            url: "http://h/dial.html?ref={{ external_id }}".into(),
            form: vec![("note.html".into(), "{{ external_id }}".into())],
            ..Default::default()
        };
        let t =
            RequestTemplate::compile(&mut env, "dial.json", spec, &BTreeMap::new(), &NumberRules::default()).unwrap();
        let v = values("1", "2").with("external_id", "a<b>&\"c");
        let Rendered::Http(req) = t.render(&env, &v).unwrap() else { panic!() };
        assert_eq!(req.url.as_str(), "http://h/dial.html?ref=a%3Cb%3E%26%22c");
        assert_eq!(req.body.as_deref(), Some("note.html=a%3Cb%3E%26%22c"));
    }

    #[test]
    fn safe_and_urlencode_are_not_encoded_twice() {
        let (t, env) = jinja("http://h/?a={{ number | urlencode }}&b={{ 'x=1&y=2' | safe }}").unwrap();
        assert_eq!(url_of(t.render(&env, &values("1", "+1")).unwrap()), "http://h/?a=%2B1&b=x=1&y=2");
    }

    #[test]
    fn options_render_encoded_and_any_name_not_filled_in_renders_empty() {
        let (t, env) =
            jinja("http://h/?at={{ options.at }}&x={{ options.nope }}{% if options.nope %}&y=1{% endif %}").unwrap();
        let mut v = values("1", "2");
        v.options.insert("at".into(), "a&b=c".into());
        assert_eq!(url_of(t.render(&env, &v).unwrap()), "http://h/?at=a%26b%3Dc&x=");
        assert!(jinja("http://{{ options.host }}/").is_err(), "options are request values: never the target");
    }

    #[test]
    fn request_values_cannot_choose_the_target() {
        let errs = jinja("http://{{ number }}.example.com/").unwrap_err();
        assert!(errs[0].message.contains("never choose"), "{errs:?}");
        assert!(jinja("{{ extension }}/x").is_err());
    }

    #[test]
    fn undefined_variables_fail_at_load_and_are_named() {
        let errs = jinja("http://h/?x={{ hots }}").unwrap_err();
        assert!(errs[0].message.contains("`hots`"), "{errs:?}");
        assert_eq!(errs[0].missing.as_deref(), Some("hots"));
    }

    #[test]
    fn auth_values_are_templates_and_only_secrets_are_masked() {
        let spec = HttpSpec {
            url: "https://h/api".into(),
            auth: Some(Auth::Basic { user: "{{ branch }}-user".into(), password: "{{ number }}".into() }),
            ..Default::default()
        };
        let mut env = new_env();
        let t = RequestTemplate::compile(&mut env, "dial", spec, &BTreeMap::new(), &NumberRules::default()).unwrap();
        let Rendered::Http(req) = t.render(&env, &values("201", "555")).unwrap() else { panic!() };
        let sent = req.headers.iter().find(|(k, _)| k == "authorization").unwrap();
        assert_eq!(sent.1, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("b-user:555")));
        assert_eq!(req.shown().headers["authorization"], "Basic *** (user \"b-user\")");
    }

    #[test]
    fn iqx_post_renders_url_params_and_form_body() {
        let line = iqx::parse("{POST}http://h/api?func=make_call<&>from=^<&>to=#").unwrap();
        let Rendered::Http(req) =
            RequestTemplate::iqx(line).render(&new_env(), &values("201", "+442079460000")).unwrap()
        else {
            panic!()
        };
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url.as_str(), "http://h/api?func=make_call");
        assert_eq!(req.body.as_deref(), Some("from=201&to=%2B442079460000"));
    }

    #[test]
    fn iqx_get_encodes_values_in_the_url() {
        let line = iqx::parse("http://h/api?from=^&to=#").unwrap();
        let got = url_of(RequestTemplate::iqx(line).render(&new_env(), &values("201", "+44*1#")).unwrap());
        assert_eq!(got, "http://h/api?from=201&to=%2B44*1%23");
    }

    #[test]
    fn uri_keeps_plus_and_encodes_hash() {
        let line = iqx::parse("tel:#").unwrap();
        assert_eq!(
            url_of(RequestTemplate::iqx(line).render(&new_env(), &values("1", "+4420#")).unwrap()),
            "tel:+4420%23"
        );
    }

    #[test]
    fn form_json_headers_and_auth() {
        let spec = HttpSpec {
            method: None,
            url: "https://h/api".into(),
            json: Some(serde_json::json!({"from": "{{ extension }}", "to": "{{ number }}", "n": 3})),
            headers: vec![("X-Branch".into(), "{{ branch }}".into())],
            auth: Some(Auth::Bearer("tok-{{ branch }}".into())),
            ..Default::default()
        };
        let mut env = new_env();
        let t = RequestTemplate::compile(&mut env, "dial", spec, &BTreeMap::new(), &NumberRules::default()).unwrap();
        let Rendered::Http(req) = t.render(&env, &values("201", "+1\"2")).unwrap() else { panic!() };
        assert_eq!(req.method, Method::Post);
        let body: serde_json::Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"from": "201", "to": "+1\"2", "n": 3}));
        assert!(req.headers.contains(&("x-branch".into(), "b".into())));
        assert!(req.headers.contains(&("authorization".into(), "Bearer tok-b".into())));
        assert_eq!(req.shown().headers["authorization"], "Bearer tok-b", "a literal token is not a secret");
        assert_eq!(t.uses(), BTreeSet::from(["extension", "number"]));
    }

    #[test]
    fn get_with_a_body_is_a_load_error() {
        let spec = HttpSpec {
            method: Some(Method::Get),
            url: "http://h/".into(),
            form: vec![("a".into(), "1".into())],
            ..Default::default()
        };
        let mut env = new_env();
        assert!(RequestTemplate::compile(&mut env, "dial", spec, &BTreeMap::new(), &NumberRules::default()).is_err());
    }

    #[test]
    fn templates_see_the_session_and_say_which_names_they_read() {
        let spec = HttpSpec {
            url: "https://h/callcontrol/{{ extension }}/makecall".into(),
            headers: vec![("Cookie".into(), "{{ session.cookie }}".into())],
            auth: Some(Auth::Bearer("{{ session.token }}".into())),
            ..Default::default()
        };
        let mut env = new_env();
        let t = RequestTemplate::compile(&mut env, "dial", spec, &BTreeMap::new(), &NumberRules::default()).unwrap();
        assert_eq!(t.session_uses(), BTreeSet::from(["cookie".to_string(), "token".to_string()]));
        assert_eq!(t.uses(), BTreeSet::from(["extension"]), "the session is not the caller's to send");
        let session = BTreeMap::from([("token".to_string(), "t0k".to_string()), ("cookie".into(), "s=1".into())]);
        let v = values("201", "2").with_session(std::sync::Arc::new(session));
        let Rendered::Http(req) = t.render(&env, &v).unwrap() else { panic!() };
        assert!(req.headers.contains(&("authorization".into(), "Bearer t0k".into())));
        assert!(req.headers.contains(&("cookie".into(), "s=1".into())));
        let e = jinja("https://{{ session.host }}/x").unwrap_err();
        assert!(e[0].message.contains("`session` is used in the scheme/host/port part"), "{e:?}");
    }
}
