//! Turns a branch's request template and one dial's values into the exact
//! request that will be sent. Pure: no I/O, no clock except `now`.
//!
//! Two template forms compile to one [`RequestTemplate`]: the IQX one-liner
//! ([`crate::iqx`]) and the full form (minijinja templates per field).
//!
//! The encoding contract: every value inserted into a URL is percent-encoded
//! as a URL component (`+` → `%2B`, `&` → `%26`, `/` → `%2F`), so a value can
//! never add a parameter, a path segment or a fragment. The scheme, host and
//! port (everything before the first `/`, `?` or `#` after `://`) are the
//! admin's: that part may only use profile `vars`, never a request value,
//! and is inserted as written. `{{ x | safe }}` opts a trusted value out of
//! encoding. Form and JSON bodies are encoded by their serializers, headers
//! are checked for CR/LF. minijinja's own auto-escaping (picked from the
//! template name's extension) is replaced by this contract.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::iqx::{self, Method, Piece};
use crate::number::{NumberFormat, NumberRules};
use crate::secrets;

/// Characters left as they are in a URL component: those of JavaScript's
/// `encodeURIComponent` (`A-Z a-z 0-9 - _ . ! ~ * ' ( )`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// In a client-side URI (`tel:+44…`) a `+` is meaningful and stays.
const URI_VALUE: &AsciiSet = &COMPONENT.remove(b'+');

/// Percent-encodes `s` as one URL component.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Names a template may use that come from the caller's request. They may
/// never appear in the scheme/host/port part of a URL.
pub const REQUEST_VALUES: &[&str] = &["extension", "number", "raw_number", "caller_id", "external_id"];

/// Names the gateway provides; `vars` may not reuse them.
pub const RESERVED: &[&str] = &["extension", "number", "raw_number", "caller_id", "external_id", "branch", "now"];

/// One dial's values, already validated by the caller.
#[derive(Debug, Clone, Default)]
pub struct DialValues {
    pub branch: String,
    pub extension: String,
    /// After the branch's number rules.
    pub number: String,
    /// As received.
    pub raw_number: String,
    pub caller_id: Option<String>,
    pub external_id: Option<String>,
}

impl DialValues {
    /// Plausible values used to try every template once at load time.
    pub fn sample(branch: &str) -> Self {
        DialValues {
            branch: branch.to_string(),
            extension: "201".into(),
            number: "+442079460000".into(),
            raw_number: "+44 20 7946 0000".into(),
            caller_id: Some("+442079460001".into()),
            external_id: Some("sample-1".into()),
        }
    }
}

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
}

/// How a request is shown to people (dry run, `render`): secrets as `***`,
/// credentials in `Authorization` always masked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShownRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

impl Request {
    pub fn shown(&self) -> ShownRequest {
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    match v.split_once(' ') {
                        Some((scheme, _)) => format!("{scheme} {}", secrets::MASK),
                        None => secrets::MASK.to_string(),
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
    fn new(message: String) -> Self {
        RenderError { field: None, message }
    }
}

/// A problem found while compiling, with the profile field it belongs to
/// (e.g. `dial.url`), so the loader can point at it in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub field: String,
    pub message: String,
}

/// Authentication of the full form.
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
    Jinja(Box<Jinja>),
}

/// The scheme, host and port of a branch's URL, parsed once. Parsing a
/// host (IDNA rules) is the costliest part of building a URL; a rendered URL
/// that starts with this prefix only has its path, query and fragment parsed.
#[derive(Debug, Clone)]
struct FixedBase {
    prefix: String,
    url: url::Url,
}

impl FixedBase {
    fn new(prefix: &str) -> Option<Self> {
        let url = url::Url::parse(prefix).ok()?;
        let bare = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !prefix.ends_with('/');
        bare.then(|| FixedBase { prefix: prefix.to_string(), url })
    }
}

/// Parses a rendered URL, reusing the branch's parsed base when it applies.
fn build_url(base: Option<&FixedBase>, full: &str) -> Result<url::Url, RenderError> {
    let rest = base.and_then(|b| full.strip_prefix(b.prefix.as_str()).map(|rest| (b, rest)));
    match rest {
        Some((b, rest)) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
            let mut url = b.url.clone();
            let (before, fragment) = match rest.split_once('#') {
                Some((a, f)) => (a, Some(f)),
                None => (rest, None),
            };
            let (path, query) = match before.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (before, None),
            };
            if !path.is_empty() {
                url.set_path(path);
            }
            url.set_query(query);
            url.set_fragment(fragment);
            Ok(url)
        }
        _ => parse_url(full),
    }
}

/// A full-form action. Its templates live in the [`Templates`] shared by
/// every branch (1,000 branches on one preset compile its templates once);
/// what is the branch's own is its variables.
#[derive(Debug, Clone)]
struct Jinja {
    vars: BTreeMap<String, Value>,
    method: Method,
    /// Set after compiling, when the target part depends on `vars` only.
    fixed_base: Option<FixedBase>,
    url_base: Tpl,
    url_rest: Option<Tpl>,
    form: Vec<(String, Tpl)>,
    json: Option<JsonTemplate>,
    headers: Vec<(String, Tpl)>,
    auth: Option<Auth>,
}

/// A template: where it is in the profile (for errors) and its name in the environment.
#[derive(Debug, Clone)]
struct Tpl {
    field: Arc<str>,
    name: Arc<str>,
}

/// The template environment shared by all branches: templates are named
/// by how they escape and their source, so identical ones are compiled once.
/// Names and fields are interned: 1,000 branches on one preset hold one copy.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    interned: HashMap<String, Arc<str>>,
}

impl Templates {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.interned.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.interned.insert(s.to_string(), a.clone());
        a
    }
}

impl std::ops::Deref for Templates {
    type Target = Environment<'static>;
    fn deref(&self) -> &Self::Target {
        &self.env
    }
}

impl std::ops::DerefMut for Templates {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.env
    }
}

#[derive(Debug, Clone)]
enum JsonTemplate {
    Template(Tpl),
    Literal(serde_json::Value),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

/// The branch's number rules, for the `e164`/`national`/… filters.
#[derive(Debug)]
struct RulesObject(NumberRules);

impl minijinja::value::Object for RulesObject {}

/// The variable under which a branch's number rules reach the filters.
const RULES_VAR: &str = "__number_rules";

impl RequestTemplate {
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

    /// Compiles the full form into `env`. `field` prefixes error fields (e.g. `dial`).
    pub fn compile(
        env: &mut Templates,
        field: &str,
        spec: HttpSpec,
        vars: &BTreeMap<String, serde_json::Value>,
        number: &NumberRules,
    ) -> Result<Self, Vec<CompileError>> {
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<CompileError>, f: &str, m: String| {
            errors.push(CompileError { field: format!("{field}.{f}"), message: m })
        };

        for name in vars.keys() {
            if RESERVED.contains(&name.as_str()) || name == RULES_VAR {
                errors.push(CompileError {
                    field: format!("vars.{name}"),
                    message: format!("`{name}` is a value the gateway provides; choose another name"),
                });
            }
        }

        let method = match (spec.method, spec.form.is_empty() && spec.json.is_none()) {
            (Some(Method::Get), false) => {
                err(&mut errors, "method", "a GET request has no body: remove `form`/`json` or use POST".into());
                Method::Get
            }
            (Some(m), _) => m,
            (None, true) => Method::Get,
            (None, false) => Method::Post,
        };
        if !spec.form.is_empty() && spec.json.is_some() {
            err(&mut errors, "json", "`form` and `json` are both given: a request has one body".into());
        }

        let (base, rest) = split_url(&spec.url);
        let url_field = format!("{field}.url");
        let url_base = add(env, &url_field, base, false, &mut errors);
        let mut base_is_fixed = false;
        if let Ok(t) = env.get_template(&url_base.name) {
            let used = t.undeclared_variables(false);
            base_is_fixed = !used.contains("now") && !used.contains("branch");
            if let Some(v) = REQUEST_VALUES.iter().find(|v| used.contains(**v)) {
                err(
                    &mut errors,
                    "url",
                    format!(
                        "`{v}` is used in the scheme/host/port part of the url: request values never choose where a dial is sent"
                    ),
                );
            }
        }
        let url_rest = (!rest.is_empty()).then(|| add(env, &url_field, rest, true, &mut errors));
        let form = spec
            .form
            .iter()
            .map(|(k, v)| (k.clone(), add(env, &format!("{field}.form.{k}"), v, false, &mut errors)))
            .collect();
        let headers = spec
            .headers
            .iter()
            .map(|(k, v)| {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    errors.push(CompileError {
                        field: format!("{field}.headers.{k}"),
                        message: format!("{k:?} is not a valid header name"),
                    });
                }
                (k.clone(), add(env, &format!("{field}.headers.{k}"), v, false, &mut errors))
            })
            .collect();
        let json = spec.json.as_ref().map(|j| json_template(env, &format!("{field}.json"), j, &mut errors));

        let mut vars: BTreeMap<String, Value> =
            vars.iter().map(|(k, v)| (k.clone(), Value::from(minijinja::value::Serde(v)))).collect();
        vars.insert(RULES_VAR.into(), Value::from_object(RulesObject(number.clone())));
        let template = RequestTemplate {
            kind: Kind::Jinja(Box::new(Jinja {
                vars,
                method,
                fixed_base: None,
                url_base,
                url_rest,
                form,
                json,
                headers,
                auth: spec.auth,
            })),
        };
        let mut template = template;
        if errors.is_empty() {
            // A profile that loads can render: try it once with sample values.
            if let Err(e) = template.render(env, &DialValues::sample("sample")) {
                errors.push(CompileError { field: e.field.unwrap_or_else(|| field.to_string()), message: e.message });
            }
        }
        if let (true, true, Kind::Jinja(j)) = (errors.is_empty(), base_is_fixed, &mut template.kind) {
            let ctx = j.context(&DialValues::sample("sample"));
            j.fixed_base = env
                .get_template(&j.url_base.name)
                .ok()
                .and_then(|t| t.render(&ctx).ok())
                .and_then(|b| FixedBase::new(&b));
        }
        if errors.is_empty() { Ok(template) } else { Err(errors) }
    }

    /// Renders one dial. Values must already be validated (see [`crate::number`]).
    pub fn render(&self, env: &Templates, v: &DialValues) -> Result<Rendered, RenderError> {
        match &self.kind {
            Kind::Iqx(line, base) => render_iqx(line, base.as_ref(), v),
            Kind::Jinja(j) => j.render(env, v).map(Rendered::Http),
        }
    }

    /// True for client-side URI templates, which never send anything.
    pub fn is_uri(&self) -> bool {
        matches!(self.kind, Kind::Iqx(iqx::Line::Uri(_), _))
    }
}

fn render_iqx(line: &iqx::Line, base: Option<&FixedBase>, v: &DialValues) -> Result<Rendered, RenderError> {
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
            Ok(Rendered::Http(Request { method: *method, url, headers, body, digest: None }))
        }
    }
}

fn fill_pieces(pieces: &[Piece], set: Option<&'static AsciiSet>, v: &DialValues) -> String {
    let mut out = String::new();
    for p in pieces {
        let value = match p {
            Piece::Lit(s) => {
                out.push_str(s);
                continue;
            }
            Piece::Extension => &v.extension,
            Piece::Number => &v.number,
        };
        match set {
            Some(set) => out.extend(utf8_percent_encode(value, set)),
            None => out.push_str(value),
        }
    }
    out
}

/// Adds `src` to the shared environment (once per distinct source and escaping).
fn add(env: &mut Templates, field: &str, src: &str, encoded: bool, errors: &mut Vec<CompileError>) -> Tpl {
    let name = env.intern(&format!("{}{src}", if encoded { ENCODED } else { RAW }));
    if env.get_template(&name).is_err() {
        if let Err(e) = env.add_template_owned(name.to_string(), src.to_string()) {
            errors.push(CompileError { field: field.to_string(), message: template_error(&e) });
        }
    }
    Tpl { field: env.intern(field), name }
}

/// Name prefixes that pick the escaping (see [`new_env`]).
const ENCODED: &str = "url-encoded#";
const RAW: &str = "raw#";

impl Jinja {
    fn render(&self, env: &Templates, v: &DialValues) -> Result<Request, RenderError> {
        let ctx = self.context(v);
        let one = |t: &Tpl| -> Result<String, RenderError> {
            let tmpl = env.get_template(&t.name).map_err(|e| RenderError::new(template_error(&e)))?;
            tmpl.render(&ctx).map_err(|e| RenderError { field: Some(t.field.to_string()), message: template_error(&e) })
        };
        let mut url = one(&self.url_base)?;
        if let Some(rest) = &self.url_rest {
            url.push_str(&one(rest)?);
        }
        let url = build_url(self.fixed_base.as_ref(), &url)?;

        let mut headers = Vec::with_capacity(self.headers.len() + 2);
        let mut body = None;
        if !self.form.is_empty() {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, t) in &self.form {
                // A field that renders empty is left out (optional fields such as SetCID).
                let value = one(t)?;
                if !value.is_empty() {
                    form.append_pair(k, &value);
                }
            }
            body = Some(form.finish());
            headers.push(form_content_type());
        } else if let Some(json) = &self.json {
            let value = render_json(json, &one)?;
            body = Some(value.to_string());
            headers.push(("content-type".into(), "application/json".into()));
        }
        for (k, t) in &self.headers {
            let value = one(t)?;
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                return Err(RenderError::new(format!("header {k} would contain a line break or control character")));
            }
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
            headers.push((k.to_ascii_lowercase(), value));
        }
        match &self.auth {
            Some(Auth::Basic { user, password }) => {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.push(("authorization".into(), format!("Basic {token}")));
            }
            Some(Auth::Bearer(token)) => headers.push(("authorization".into(), format!("Bearer {token}"))),
            Some(Auth::Digest { .. }) | None => {}
        }
        let digest = match &self.auth {
            Some(Auth::Digest { user, password }) => Some((user.clone(), password.clone())),
            _ => None,
        };
        Ok(Request { method: self.method, url, headers, body, digest })
    }

    fn context(&self, v: &DialValues) -> BTreeMap<String, Value> {
        let mut ctx = self.vars.clone();
        let opt = |o: &Option<String>| o.as_deref().map(Value::from).unwrap_or(Value::from(()));
        ctx.insert("extension".into(), Value::from(v.extension.as_str()));
        ctx.insert("number".into(), Value::from(v.number.as_str()));
        ctx.insert("raw_number".into(), Value::from(v.raw_number.as_str()));
        ctx.insert("branch".into(), Value::from(v.branch.as_str()));
        ctx.insert("caller_id".into(), opt(&v.caller_id));
        ctx.insert("external_id".into(), opt(&v.external_id));
        ctx.insert(
            "now".into(),
            Value::from(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()),
        );
        ctx
    }
}

fn render_json(
    t: &JsonTemplate,
    one: &dyn Fn(&Tpl) -> Result<String, RenderError>,
) -> Result<serde_json::Value, RenderError> {
    Ok(match t {
        JsonTemplate::Template(name) => serde_json::Value::String(one(name)?),
        JsonTemplate::Literal(v) => v.clone(),
        JsonTemplate::Array(items) => {
            serde_json::Value::Array(items.iter().map(|i| render_json(i, one)).collect::<Result<_, _>>()?)
        }
        JsonTemplate::Object(fields) => {
            let mut map = serde_json::Map::new();
            for (k, v) in fields {
                map.insert(k.clone(), render_json(v, one)?);
            }
            serde_json::Value::Object(map)
        }
    })
}

fn json_template(env: &mut Templates, at: &str, v: &serde_json::Value, errors: &mut Vec<CompileError>) -> JsonTemplate {
    match v {
        serde_json::Value::String(s) if s.contains("{{") || s.contains("{%") => {
            JsonTemplate::Template(add(env, at, s, false, errors))
        }
        serde_json::Value::Array(items) => JsonTemplate::Array(
            items.iter().enumerate().map(|(i, item)| json_template(env, &format!("{at}[{i}]"), item, errors)).collect(),
        ),
        serde_json::Value::Object(map) => JsonTemplate::Object(
            map.iter().map(|(k, item)| (k.clone(), json_template(env, &format!("{at}.{k}"), item, errors))).collect(),
        ),
        other => JsonTemplate::Literal(other.clone()),
    }
}

fn form_content_type() -> (String, String) {
    ("content-type".into(), "application/x-www-form-urlencoded".into())
}

fn parse_url(s: &str) -> Result<url::Url, RenderError> {
    let url = url::Url::parse(s)
        .map_err(|e| RenderError::new(format!("the url {:?} is not valid: {e}", secrets::redact(s))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(RenderError::new(format!(
            "the url {:?} must be http:// or https:// with a host",
            secrets::redact(s)
        )));
    }
    Ok(url)
}

/// Splits a url template into the target part (scheme, host, port) and the
/// rest. The split is at the first literal `/`, `?` or `#` after `://`,
/// outside `{{ }}`, `{% %}` and `{# #}`.
pub fn split_url(src: &str) -> (&str, &str) {
    let literal = literal_positions(src);
    let is_lit = |i: usize| literal.binary_search(&i).is_ok();
    // Where the target part may end: after the first literal `://`, if any.
    let start =
        (0..src.len()).find(|&i| src[i..].starts_with("://") && (i..i + 3).all(is_lit)).map(|i| i + 3).unwrap_or(0);
    match literal.iter().copied().filter(|&i| i >= start).find(|&i| matches!(src.as_bytes()[i], b'/' | b'?' | b'#')) {
        Some(i) => (&src[..i], &src[i..]),
        None => (src, ""),
    }
}

/// Byte offsets of the characters outside `{{ }}`, `{% %}` and `{# #}`.
fn literal_positions(src: &str) -> Vec<usize> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && i + 1 < bytes.len() && matches!(bytes[i + 1], b'{' | b'%' | b'#') {
            let close = match bytes[i + 1] {
                b'{' => "}}",
                b'%' => "%}",
                _ => "#}",
            };
            match src[i + 2..].find(close) {
                Some(j) => i = i + 2 + j + 2,
                None => break,
            }
            continue;
        }
        out.push(i);
        i += 1;
    }
    out
}

/// A new shared template environment: strict undefined values, our URL
/// escaping, `urlencode` that is never applied twice, and the number filters.
pub fn new_env() -> Templates {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Our names are not file names: decide escaping by our own prefix only.
    env.set_auto_escape_callback(|name| {
        if name.starts_with(ENCODED) { AutoEscape::Custom("url".into()) } else { AutoEscape::None }
    });
    for (name, format) in [
        ("e164", NumberFormat::E164),
        ("national", NumberFormat::National),
        ("international", NumberFormat::International),
        ("digits", NumberFormat::Digits),
    ] {
        env.add_filter(name, move |state: &minijinja::State, v: String| {
            let rules = state.lookup(RULES_VAR);
            let rules = rules.as_ref().and_then(|r| r.downcast_object_ref::<RulesObject>()).map(|r| &r.0);
            let fallback = NumberRules::default();
            rules
                .unwrap_or(&fallback)
                .filter(&v, format)
                .map_err(|m| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m))
        });
    }
    env.set_formatter(|out, state, value| {
        if value.is_none() || value.is_undefined() {
            return Ok(());
        }
        let text = match value.as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(value.to_string()),
        };
        let encode = matches!(state.auto_escape(), AutoEscape::Custom(n) if n == "url") && !value.is_safe();
        let written = if encode { out.write_str(&encode_component(&text)) } else { out.write_str(&text) };
        written.map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed"))
    });
    // Already encoded: mark safe so the url formatter does not encode twice.
    env.add_filter("urlencode", |v: String| Value::from_safe_string(encode_component(&v)));
    Templates { env, interned: HashMap::new() }
}

/// A minijinja error as one line, without our internal template names.
pub fn template_error(e: &minijinja::Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line().filter(|l| *l > 1) {
        msg.push_str(&format!(" (template line {line})"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(ext: &str, number: &str) -> DialValues {
        DialValues {
            branch: "b".into(),
            extension: ext.into(),
            number: number.into(),
            raw_number: number.into(),
            ..Default::default()
        }
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
    fn a_parsed_base_builds_the_same_url_as_a_full_parse() {
        let base = FixedBase::new("http://PBX.example:8080").unwrap();
        for rest in ["", "/", "/a/b?x=1&y=%2B2#f", "?only=query", "#frag", "/p/../q/./r?", "/sp ace?q=a b|c"] {
            let full = format!("http://PBX.example:8080{rest}");
            assert_eq!(build_url(Some(&base), &full).unwrap(), url::Url::parse(&full).unwrap(), "{rest:?}");
        }
        // Another prefix falls back to the full parse.
        assert_eq!(build_url(Some(&base), "http://other/x").unwrap().as_str(), "http://other/x");
        assert!(FixedBase::new("http://h/path").is_none());
    }

    #[test]
    fn split_url_table() {
        let cases = [
            ("http://{{ host }}/p?x={{ number }}", ("http://{{ host }}", "/p?x={{ number }}")),
            ("https://h:1?x=1", ("https://h:1", "?x=1")),
            ("{{ base }}/api", ("{{ base }}", "/api")),
            ("http://{{ '/' }}x/y", ("http://{{ '/' }}x", "/y")),
            ("http://h", ("http://h", "")),
            ("{{ scheme }}://{{ host }}/p", ("{{ scheme }}://{{ host }}", "/p")),
        ];
        for (src, want) in cases {
            assert_eq!(split_url(src), want, "{src}");
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
        let v = DialValues { external_id: Some("a<b>&\"c".into()), ..values("1", "2") };
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
    fn request_values_cannot_choose_the_target() {
        let errs = jinja("http://{{ number }}.example.com/").unwrap_err();
        assert!(errs[0].message.contains("never choose"), "{errs:?}");
        assert!(jinja("{{ extension }}/x").is_err());
    }

    #[test]
    fn undefined_variables_fail_at_load() {
        let errs = jinja("http://h/?x={{ hots }}").unwrap_err();
        assert!(errs[0].message.contains("undefined"), "{errs:?}");
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
            auth: Some(Auth::Bearer("tok".into())),
            ..Default::default()
        };
        let mut env = new_env();
        let t = RequestTemplate::compile(&mut env, "dial", spec, &BTreeMap::new(), &NumberRules::default()).unwrap();
        let Rendered::Http(req) = t.render(&env, &values("201", "+1\"2")).unwrap() else { panic!() };
        assert_eq!(req.method, Method::Post);
        let body: serde_json::Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"from": "201", "to": "+1\"2", "n": 3}));
        assert!(req.headers.contains(&("x-branch".into(), "b".into())));
        assert!(req.headers.contains(&("authorization".into(), "Bearer tok".into())));
        assert_eq!(req.shown().headers["authorization"], "Bearer ***");
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
}
