//! The full form of an action: minijinja templates per field, compiled into
//! one environment shared by all branches. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::phones::{self, PhoneMap};
use super::urls::{FixedBase, build_url, encode_component, encode_uri_value, split_url};
use super::{Auth, CompileError, Context, HttpSpec, REQUEST_VALUES, RESERVED, RenderError, Request, form_content_type};
use crate::number::{NumberFormat, NumberRules};
use crate::syntax::iqx::Method;

/// A full-form action. Its templates live in the [`Templates`] shared by
/// every branch (1,000 branches on one preset compile its templates once);
/// what is the branch's own is its variables.
#[derive(Debug, Clone)]
pub(super) struct Jinja {
    vars: BTreeMap<String, Value>,
    method: Method,
    /// Set after compiling, when the target part depends on `vars` only.
    pub(super) fixed_base: Option<FixedBase>,
    url_base: Tpl,
    url_rest: Option<Tpl>,
    form: Vec<(String, Tpl)>,
    json: Option<JsonTemplate>,
    headers: Vec<(String, Tpl)>,
    auth: Option<AuthTpl>,
    /// The request values these templates read.
    pub(super) uses: BTreeSet<&'static str>,
    /// The url is a client-side URI (`voispeed:D {{ call_id }}`): rendered,
    /// never sent.
    pub(super) client_uri: bool,
    scope: Scope,
    /// The `session.NAME`s these templates read, by NAME.
    pub(super) session: BTreeSet<String>,
    /// Desk phones: the maps the target part picks a host from by the
    /// request's extension (`{{ phones[extension] }}`), checked before rendering.
    phone_maps: Vec<PhoneMap>,
}

/// `auth:` with each value compiled like any other field.
#[derive(Debug, Clone)]
enum AuthTpl {
    Basic { user: Tpl, password: Tpl },
    Bearer(Tpl),
    Digest { user: Tpl, password: Tpl },
}

/// A template: where it is in the profile (for errors) and its name in the environment.
#[derive(Debug, Clone)]
pub(super) struct Tpl {
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

impl Templates {
    /// Copies the template `name` from `from` unless this environment has
    /// it, so a branch kept from an earlier load (its file now fails)
    /// renders with a newer environment. A template's name is its escaping
    /// and its source, so the same name in both is the same template.
    pub fn carry(&mut self, from: &Templates, name: &str) -> Result<(), String> {
        if self.env.get_template(name).is_ok() {
            return Ok(());
        }
        let source = from.env.get_template(name).map_err(|e| template_error(&e))?.source().to_string();
        self.env.add_template_owned(name.to_string(), source).map_err(|e| template_error(&e))
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

/// `options` as templates see it: every declared option (its value, its
/// default, or empty), and empty for any other name. The environment's
/// undefined values are strict (a typo in a variable stops a profile from
/// loading), but an option is per request: a template written for
/// `options.at` must still render for a caller who sends none, and for a
/// branch that does not declare it.
#[derive(Debug)]
struct OptionValues(BTreeMap<String, String>);

impl minijinja::value::Object for OptionValues {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = key.as_str().and_then(|k| self.0.get(k)).map(String::as_str).unwrap_or("");
        Some(Value::from(value))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.0.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

/// The variable under which a branch's number rules reach the filters.
const RULES_VAR: &str = "__number_rules";

/// What a template is written for, which decides what it sees: an action's
/// templates see the caller's request values ([`REQUEST_VALUES`]); a hook's
/// see the event that triggered it (`event`) and no request values, since
/// no caller is there. Either way, what comes from outside (a request
/// value, the event) never chooses the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Action,
    Hook,
}

/// The name under which a hook's templates see the event.
pub(super) const EVENT: &str = "event";

impl Scope {
    /// Names whose values come from outside, never allowed in the target.
    fn outside_values(self) -> &'static [&'static str] {
        match self {
            Scope::Action => REQUEST_VALUES,
            Scope::Hook => &[EVENT],
        }
    }
}

/// Compiles the full form into `env`; see [`RequestTemplate::compile`].
pub(super) fn compile(
    env: &mut Templates,
    field: &str,
    spec: HttpSpec,
    vars: &BTreeMap<String, serde_json::Value>,
    number: &NumberRules,
    scope: Scope,
) -> Result<Jinja, Vec<CompileError>> {
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<CompileError>, f: &str, m: String| {
        errors.push(CompileError { field: format!("{field}.{f}"), message: m, missing: None })
    };

    for name in vars.keys() {
        if RESERVED.contains(&name.as_str()) || name == RULES_VAR {
            errors.push(CompileError {
                field: format!("vars.{name}"),
                message: format!("`{name}` is a value the gateway provides; choose another name"),
                missing: None,
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

    let url_field = format!("{field}.url");
    let client_uri = crate::syntax::iqx::is_client_uri(&spec.url);
    if client_uri && scope == Scope::Hook {
        err(&mut errors, "url", "a hook is sent by webdial: its url must start with http:// or https://".into());
    } else if client_uri
        && (spec.method.is_some()
            || !spec.form.is_empty()
            || spec.json.is_some()
            || !spec.headers.is_empty()
            || spec.auth.is_some())
    {
        err(
            &mut errors,
            "url",
            "a client-side URI is opened by the caller's softphone: method, form, json, headers and auth do not apply"
                .into(),
        );
    }
    let (base, rest) = if client_uri { ("", spec.url.as_str()) } else { split_url(&spec.url) };
    // Desk phones: `{{ phones[extension] }}` picks one of the admin's hosts;
    // what is left of the target part is checked like any other.
    let found = if scope == Scope::Action && !client_uri { phones::lookups(base) } else { Vec::new() };
    let mut phone_maps: Vec<PhoneMap> = Vec::new();
    for (_, _, name) in &found {
        if phone_maps.iter().any(|m| &m.name == name) {
            continue;
        }
        match PhoneMap::read(name, vars) {
            Ok(Some(map)) => phone_maps.push(map),
            Ok(None) => {}
            Err(message) => errors.push(CompileError { field: format!("vars.{name}"), message, missing: None }),
        }
    }
    let url_base = add(env, &url_field, base, Escape::None, &mut errors);
    let checked_base = phones::without_lookups(base, &found);
    let checker = Environment::new();
    if let Ok(t) = checker.template_from_str(&checked_base) {
        let used = t.undeclared_variables(false);
        // A login's answer does not choose the target either.
        let session: &[&str] = if matches!(scope, Scope::Action) { &["session"] } else { &[] };
        if let Some(v) = scope.outside_values().iter().chain(session).find(|v| used.contains(**v)) {
            let what = match scope {
                Scope::Action => "request values never choose where a dial is sent",
                Scope::Hook => "event values never choose where a hook is sent",
            };
            err(&mut errors, "url", format!("`{v}` is used in the scheme/host/port part of the url: {what}"));
        }
    }
    let rest_escape = if client_uri { Escape::Uri } else { Escape::Url };
    let url_rest = (!rest.is_empty()).then(|| add(env, &url_field, rest, rest_escape, &mut errors));
    let form = spec
        .form
        .iter()
        .map(|(k, v)| (k.clone(), add(env, &format!("{field}.form.{k}"), v, Escape::None, &mut errors)))
        .collect();
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                errors.push(CompileError {
                    field: format!("{field}.headers.{k}"),
                    message: format!("{k:?} is not a valid header name"),
                    missing: None,
                });
            }
            (k.clone(), add(env, &format!("{field}.headers.{k}"), v, Escape::None, &mut errors))
        })
        .collect();
    let json = spec.json.as_ref().map(|j| json_template(env, &format!("{field}.json"), j, &mut errors));
    let auth = spec.auth.as_ref().map(|a| {
        let mut t = |f: &str, src: &str| add(env, &format!("{field}.auth.{f}"), src, Escape::None, &mut errors);
        match a {
            Auth::Basic { user, password } => {
                AuthTpl::Basic { user: t("basic.user", user), password: t("basic.password", password) }
            }
            Auth::Bearer(token) => AuthTpl::Bearer(t("bearer", token)),
            Auth::Digest { user, password } => {
                AuthTpl::Digest { user: t("digest.user", user), password: t("digest.password", password) }
            }
        }
    });

    // Every name a template uses must be defined: by `vars`, or by the
    // gateway. Checked here so the error names the variable.
    let mut j = Jinja {
        vars: BTreeMap::new(),
        method,
        fixed_base: None,
        url_base,
        url_rest,
        form,
        json,
        headers,
        auth,
        uses: BTreeSet::new(),
        client_uri,
        scope,
        session: BTreeSet::new(),
        phone_maps,
    };
    let mut used: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut session = BTreeSet::new();
    for t in j.templates() {
        if let Ok(tmpl) = env.get_template(&t.name) {
            for name in tmpl.undeclared_variables(false) {
                used.entry(name).or_insert_with(|| t.field.clone());
            }
            let paths = tmpl.undeclared_variables(true);
            session.extend(
                paths
                    .iter()
                    .filter_map(|p| p.strip_prefix("session."))
                    .map(|p| p.split('.').next().unwrap_or_default().to_string()),
            );
        }
    }
    j.session = session;
    for (name, at) in &used {
        let request_value = REQUEST_VALUES.iter().find(|v| **v == name.as_str());
        let misplaced = match (scope, request_value) {
            (Scope::Action, _) if name == EVENT => {
                Some(format!("`{EVENT}` is what a hook's templates see; an action has no event"))
            }
            (Scope::Hook, Some(v)) => Some(format!(
                "`{v}` is a caller's request value and a hook has no caller: use the event's fields (`event.extension`, `event.remote`, …)"
            )),
            _ => None,
        };
        if let Some(message) = misplaced {
            errors.push(CompileError { field: at.to_string(), message, missing: None });
        } else if let (Scope::Action, Some(v)) = (scope, request_value) {
            j.uses.insert(v);
        } else if name == EVENT {
            // A hook's event, always there.
        } else if !vars.contains_key(name) && !RESERVED.contains(&name.as_str()) && name != RULES_VAR {
            errors.push(CompileError {
                field: at.to_string(),
                message: format!("`{name}` is not defined: set it under `vars:` (or fix its spelling)"),
                missing: Some(name.clone()),
            });
        }
    }

    j.vars = vars.iter().map(|(k, v)| (k.clone(), Value::from(minijinja::value::Serde(v)))).collect();
    j.vars.insert(RULES_VAR.into(), Value::from_object(RulesObject(number.clone())));
    if errors.is_empty() {
        // A profile that loads can render: try it once with sample values.
        let tried = super::signing::trying(|| match scope {
            Scope::Action => j.render_any(env, &j.sample()).map(|_| ()),
            Scope::Hook => j.render_ctx(env, &j.sample_context()).map(|_| ()),
        });
        // A `pick` from an admin's map cannot be tried with the sample
        // extension, which the map need not hold: that refusal is the
        // request's, not the profile's.
        let tried = tried.or_else(|e| if e.message.contains(super::filters::NOT_IN_MAP) { Ok(()) } else { Err(e) });
        if let Err(e) = tried {
            errors.push(CompileError {
                field: e.field.unwrap_or_else(|| field.to_string()),
                message: e.message,
                missing: None,
            });
        }
    }
    // Safe whatever the base uses: `build_url` only takes this path when a
    // rendered URL starts with exactly this prefix.
    if errors.is_empty() && !client_uri && j.phone_maps.is_empty() {
        let ctx = j.sample_context();
        j.fixed_base =
            env.get_template(&j.url_base.name).ok().and_then(|t| t.render(&ctx).ok()).and_then(|b| FixedBase::new(&b));
    }
    if errors.is_empty() { Ok(j) } else { Err(errors) }
}

/// Adds `src` to the shared environment (once per distinct source and escaping).
fn add(env: &mut Templates, field: &str, src: &str, escape: Escape, errors: &mut Vec<CompileError>) -> Tpl {
    let prefix = match escape {
        Escape::None => RAW,
        Escape::Url => ENCODED,
        Escape::Uri => URI_ENCODED,
    };
    let name = env.intern(&format!("{prefix}{src}"));
    if env.get_template(&name).is_err() {
        if let Err(e) = env.add_template_owned(name.to_string(), src.to_string()) {
            errors.push(CompileError { field: field.to_string(), message: template_error(&e), missing: None });
        }
    }
    Tpl { field: env.intern(field), name }
}

/// How values placed by a template are encoded.
#[derive(Debug, Clone, Copy)]
enum Escape {
    /// As they are (bodies and headers have their own encoders).
    None,
    /// As a URL component (`+` → `%2B`).
    Url,
    /// In a client-side URI: as a component, but `+` stays (`tel:+44…`).
    Uri,
}

/// Name prefixes that pick the escaping (see [`new_env`]).
const ENCODED: &str = "url-encoded#";
const URI_ENCODED: &str = "uri-encoded#";
const RAW: &str = "raw#";

impl Jinja {
    /// Every template of this action, for checks over all of them.
    fn templates(&self) -> Vec<&Tpl> {
        let mut all = vec![&self.url_base];
        all.extend(&self.url_rest);
        all.extend(self.form.iter().map(|(_, t)| t));
        all.extend(self.headers.iter().map(|(_, t)| t));
        if let Some(j) = &self.json {
            j.templates(&mut all);
        }
        match &self.auth {
            Some(AuthTpl::Basic { user, password } | AuthTpl::Digest { user, password }) => {
                all.push(user);
                all.push(password);
            }
            Some(AuthTpl::Bearer(t)) => all.push(t),
            None => {}
        }
        all
    }

    /// The names of every template it renders with.
    pub(super) fn template_names(&self) -> Vec<&str> {
        self.templates().into_iter().map(|t| &*t.name).collect()
    }

    /// Renders a request to send, or the client-side URI to open.
    pub(super) fn render_any(&self, env: &Templates, v: &Context) -> Result<super::Rendered, RenderError> {
        if !self.client_uri {
            return self.render(env, v).map(super::Rendered::Http);
        }
        let ctx = self.context(v);
        let mut uri = String::new();
        for t in [Some(&self.url_base), self.url_rest.as_ref()].into_iter().flatten() {
            let tmpl = env.get_template(&t.name).map_err(|e| RenderError::new(template_error(&e)))?;
            let part = tmpl
                .render(&ctx)
                .map_err(|e| RenderError { field: Some(t.field.to_string()), message: template_error(&e) })?;
            uri.push_str(&part);
        }
        Ok(super::Rendered::Uri(uri))
    }

    pub(super) fn render(&self, env: &Templates, v: &Context) -> Result<Request, RenderError> {
        self.render_ctx(env, &self.context(v))
    }

    /// Renders a hook's request for one event (the event as a JSON map).
    pub(super) fn render_event(
        &self,
        env: &Templates,
        branch: &str,
        event: &serde_json::Value,
    ) -> Result<Request, RenderError> {
        self.render_ctx(env, &self.hook_context(branch, event))
    }

    /// What the load-time try sees: sample values in place of the real ones.
    /// Sample request values, and a sample of every `session.NAME` the
    /// templates read (what login steps will have saved).
    fn sample(&self) -> Context {
        let session = self.session.iter().map(|n| (n.clone(), format!("sample-session-{n}"))).collect();
        let mut sample = Context::sample("sample");
        if let Some(ext) = self.phone_maps.first().and_then(PhoneMap::sample_extension) {
            sample.set("extension", ext);
        }
        sample.with_session(Arc::new(session))
    }

    fn sample_context(&self) -> BTreeMap<String, Value> {
        match self.scope {
            Scope::Action => self.context(&self.sample()),
            Scope::Hook => self.hook_context("sample", &super::hook::sample_event()),
        }
    }

    fn render_ctx(&self, env: &Templates, ctx: &BTreeMap<String, Value>) -> Result<Request, RenderError> {
        let one = |t: &Tpl| -> Result<String, RenderError> {
            let tmpl = env.get_template(&t.name).map_err(|e| RenderError::new(template_error(&e)))?;
            tmpl.render(ctx).map_err(|e| RenderError { field: Some(t.field.to_string()), message: template_error(&e) })
        };
        // Before anything is rendered: an extension the admin's map does
        // not list picks nothing.
        let extension = ctx.get("extension").and_then(Value::as_str);
        for map in &self.phone_maps {
            map.pick(extension).map_err(|e| RenderError { field: Some(self.url_base.field.to_string()), ..e })?;
        }
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
        let (digest, shown_auth) = match &self.auth {
            Some(AuthTpl::Basic { user, password }) => {
                let (user, password) = (one(user)?, one(password)?);
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.retain(|(h, _)| h != "authorization");
                headers.push(("authorization".into(), format!("Basic {token}")));
                let shown = format!("Basic {} (user {:?})", crate::secrets::MASK, crate::secrets::redact(&user));
                (None, Some(shown))
            }
            Some(AuthTpl::Bearer(token)) => {
                let token = one(token)?;
                let value = format!("Bearer {token}");
                if reqwest::header::HeaderValue::from_str(&value).is_err() {
                    return Err(RenderError::new(
                        "the bearer token would contain a line break or control character".into(),
                    ));
                }
                headers.retain(|(h, _)| h != "authorization");
                headers.push(("authorization".into(), value));
                let shown = if super::signing::is_jwt(&token) {
                    std::borrow::Cow::Borrowed(crate::secrets::MASK)
                } else {
                    crate::secrets::redact(&token)
                };
                (None, Some(format!("Bearer {shown}")))
            }
            Some(AuthTpl::Digest { user, password }) => (Some((one(user)?, one(password)?)), None),
            None => (None, None),
        };
        Ok(Request { method: self.method, url, headers, body, digest, shown_auth })
    }

    fn context(&self, v: &Context) -> BTreeMap<String, Value> {
        let mut ctx = self.vars.clone();
        for name in REQUEST_VALUES {
            let value = match (*name, v.get(name)) {
                ("options", _) => Value::from_object(OptionValues(v.options.clone())),
                (_, Some(s)) => Value::from(s),
                (_, None) => Value::from(()),
            };
            ctx.insert((*name).to_string(), value);
        }
        ctx.insert("branch".into(), Value::from(v.branch.as_str()));
        ctx.insert("session".into(), Value::from((*v.session).clone()));
        ctx.insert("now".into(), now());
        ctx
    }

    /// A hook's context: the branch's vars, `branch`, `now` and `event`.
    fn hook_context(&self, branch: &str, event: &serde_json::Value) -> BTreeMap<String, Value> {
        let mut ctx = self.vars.clone();
        ctx.insert(EVENT.into(), super::hook::event_value(event));
        ctx.insert("branch".into(), Value::from(branch));
        ctx.insert("now".into(), now());
        ctx
    }
}

fn now() -> Value {
    Value::from(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string())
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

impl JsonTemplate {
    fn templates<'a>(&'a self, out: &mut Vec<&'a Tpl>) {
        match self {
            JsonTemplate::Template(t) => out.push(t),
            JsonTemplate::Literal(_) => {}
            JsonTemplate::Array(items) => items.iter().for_each(|i| i.templates(out)),
            JsonTemplate::Object(fields) => fields.iter().for_each(|(_, v)| v.templates(out)),
        }
    }
}

fn json_template(env: &mut Templates, at: &str, v: &serde_json::Value, errors: &mut Vec<CompileError>) -> JsonTemplate {
    match v {
        serde_json::Value::String(s) if s.contains("{{") || s.contains("{%") => {
            JsonTemplate::Template(add(env, at, s, Escape::None, errors))
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

/// A new shared template environment: strict undefined values, our URL
/// escaping, `urlencode` that is never applied twice, the number filters,
/// and the digests and encodings of [`super::filters`].
pub fn new_env() -> Templates {
    let mut env = Environment::new();
    super::filters::add(&mut env);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Our names are not file names: decide escaping by our own prefix only.
    env.set_auto_escape_callback(|name| {
        if name.starts_with(ENCODED) {
            AutoEscape::Custom("url".into())
        } else if name.starts_with(URI_ENCODED) {
            AutoEscape::Custom("uri".into())
        } else {
            AutoEscape::None
        }
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
        let written = match state.auto_escape() {
            AutoEscape::Custom(n) if n == "url" && !value.is_safe() => out.write_str(&encode_component(&text)),
            AutoEscape::Custom(n) if n == "uri" && !value.is_safe() => out.write_str(&encode_uri_value(&text)),
            _ => out.write_str(&text),
        };
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
